#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/messages.hpp"
#include "mp3c/mysql.hpp"

namespace mp3c::auth {

// Ended tokens, in the auth database: per user a cutoff (every token issued before it is ended: a password change, a
// deletion, a change of role; table token_cutoffs) and single tokens ended by sign-out (revoked_tokens). The gateway
// verifies tokens itself and learns of both by polling GET /revocations.
class Sessions {
  public:
    explicit Sessions(mysql::Pool& pool) : pool_(pool) {}
    static std::vector<mysql::Migration> migrations();  // after LoginThrottle's

    // Ends every token of the user issued until now; returns the cutoff (Unix seconds, the next whole second: a
    // token issued with iat >= it, such as the one a password change hands out, stays valid).
    int64_t end_all(uint64_t user_id);
    void end_token(const std::string& jti, uint64_t user_id, int64_t expires_at);
    // The user's cutoff (Unix seconds), if any: a token issued now must not have an iat before it, or a sign-in in
    // the same second as a password reset would get a token the gateway already counts as ended.
    std::optional<int64_t> valid_after(uint64_t user_id);
    // What changed since since_ms (with a few seconds' overlap against commits that raced the last answer), leaving
    // out what no unexpired token can be affected by.
    messages::Revocations changed_since(int64_t since_ms, std::chrono::seconds token_ttl);

  private:
    mysql::Pool& pool_;
};

// The cutoff as one statement on a connection already in use (UserStore's changes to a user).
int64_t end_all_sessions(mysql::Connection& c, uint64_t user_id);

}  // namespace mp3c::auth
