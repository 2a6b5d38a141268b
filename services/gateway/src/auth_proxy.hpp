#pragma once

#include <memory>
#include <string>

#include "handler_support.hpp"
#include "mp3c/http.hpp"
#include "rate_limits.hpp"

namespace mp3c::gateway {

// A per-client-address rate on a route, with the name of the setting that sets it (for the 429's body).
struct AddressLimit {
    TokenBuckets* buckets = nullptr;
    std::string code;     // "login_rate_limited"
    std::string setting;  // "LOGIN_RATE_PER_MINUTE"
};

// The account routes auth answers (POST /login, /register, /password-reset...), passed on by the server from its I/O
// threads (http::Forward): a slow or flooded auth holds no handler thread, and at most AUTH_MAX_IN_FLIGHT calls are
// open at once. When auth is down or slow the answer is 503, never a hang.
class AuthProxy {
  public:
    explicit AuthProxy(std::shared_ptr<http::Upstream> auth) : auth_(std::move(auth)) {}
    // The same method, body and credentials, to auth's path; over `limit` (when given) the client gets 429 first.
    http::Forward to(std::string path, const AddressLimit* limit = nullptr) const;
    // GET /verify?token=: the link of a verification mail. Redeems it at auth (POST /verify), then sends a browser to
    // the web page (303 to /#verified, or /#verify-failed=<error>); a client that asks for JSON gets auth's answer.
    http::Forward verification_link() const;
    // POST /unsubscribe?token=: a job mail's one-click unsubscribe (RFC 8058; the body, "List-Unsubscribe=One-Click",
    // says nothing more). Passes the token to auth's POST /unsubscribe {"token"}.
    http::Forward unsubscribe() const;
    // GET /unsubscribe?token=: the same address opened in a browser (or fetched by a link scanner) changes nothing; it
    // sends the browser to the web page, which asks first (303 to /#unsubscribe=<token>).
    static http::Response unsubscribe_page(const http::Request& request);

  private:
    std::shared_ptr<http::Upstream> auth_;
};

}  // namespace mp3c::gateway
