#pragma once

#include <chrono>
#include <string>

#include "mp3c/http.hpp"

namespace mp3c::gateway {

// Passes POST /login and POST /register on to the auth service (libcurl, blocking: called on a worker thread),
// with timeouts: when auth is down or slow the answer is 503, never a hang.
class AuthProxy {
  public:
    AuthProxy(std::string base_url, std::chrono::milliseconds timeout);
    http::Response forward(const http::Request& request, const std::string& path) const;

  private:
    std::string base_url_;
    std::chrono::milliseconds timeout_;
};

}  // namespace mp3c::gateway
