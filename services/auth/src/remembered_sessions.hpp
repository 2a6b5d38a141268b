#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mp3c/mysql.hpp"

namespace mp3c::auth {

// "Keep me signed in": a long-lived session a browser holds as an HttpOnly cookie (`mp3c_session`, path /session),
// traded for a fresh access token at POST /session. Only a hash of its secret is stored; each use replaces the secret
// (a copied cookie works once at most, until the owner's next use); signing out, a password change or reset, a role
// change or the account's deletion end it. The access tokens stay short-lived and in the page's memory only.
class RememberedSessions {
  public:
    static constexpr const char* kCookie = "mp3c_session";
    static const mysql::Migration kMigration;

    explicit RememberedSessions(mysql::Pool& pool) : pool_(pool) {}

    // A new session for the user: the cookie's value ("<id>.<secret>").
    std::string create(uint64_t user_id, std::chrono::seconds ttl);
    struct Redeemed {
        uint64_t user_id = 0;
        std::string cookie;  // the replacement value
    };
    // The session's user and its new value, or nullopt for an unknown, tampered or expired value.
    std::optional<Redeemed> redeem(std::string_view cookie, std::chrono::seconds ttl);
    void end(std::string_view cookie);

    // The value of the session cookie in a Cookie header, if there is one.
    static std::optional<std::string> from_header(std::string_view cookie_header);
    // Set-Cookie for a value (max_age 0: removes it). Secure: browsers keep it over https, and on http://localhost.
    static std::string set_cookie(const std::string& value, std::chrono::seconds max_age);

  private:
    mysql::Pool& pool_;
};

// Ends every remembered session of the user, on a connection already in use (with end_all_sessions).
void end_remembered_sessions(mysql::Connection& c, uint64_t user_id);

}  // namespace mp3c::auth
