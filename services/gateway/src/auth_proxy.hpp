#pragma once

#include <chrono>
#include <string>

#include "mp3c/http.hpp"

namespace mp3c::gateway {

// Passes the account requests (POST /login, /register, /password-reset...) on to the auth service (libcurl,
// blocking: called on a worker thread), with timeouts: when auth is down or slow the answer is 503, never a hang.
class AuthProxy {
  public:
    AuthProxy(std::string base_url, std::chrono::milliseconds timeout);
    // The same method, body and credentials, to auth's path.
    http::Response forward(const http::Request& request, const std::string& path) const;
    // GET /verify?token=: the link of a verification mail. Redeems it at auth, then sends a browser to the web page
    // (303 to /#verified, or /#verify-failed=<error>); a client that asks for JSON gets auth's answer.
    http::Response follow_verification_link(const http::Request& request) const;

  private:
    std::string base_url_;
    std::chrono::milliseconds timeout_;
};

}  // namespace mp3c::gateway
