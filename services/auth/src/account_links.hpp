#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/mysql.hpp"
#include "mp3c/result.hpp"

namespace mp3c::auth {

// The single-use links that mails carry (e-mail verification, password reset), in the `account_links` table. Only a
// digest of each link's secret is stored, so the table gives nothing to whoever reads it. Every mail sent about an
// account is recorded here too (a "notice" has no usable secret), which is what limits how many one address gets.
class AccountLinks {
  public:
    enum class Purpose { verify_email, reset_password, notice };
    struct Issued {
        std::string token;   // the secret the link carries: 43 base64url characters (32 random bytes)
        int64_t expires_at;  // Unix seconds
    };
    struct Redeemed {
        uint64_t user_id = 0;
        std::optional<std::string> password_hash;  // a verification's password: the one given when that link was asked
    };
    enum class Refusal { unknown, used, expired };

    explicit AccountLinks(mysql::Pool& pool) : pool_(pool) {}
    static const mysql::Migration kMigration;

    // A new link for the user (a notice: a record only), valid for ttl.
    Issued issue(uint64_t user_id, Purpose purpose, std::chrono::seconds ttl,
                 std::optional<std::string> password_hash = std::nullopt);
    // Uses the link up, once: of two concurrent requests with the same link only one gets it. Redeeming a link also
    // ends the user's other links of the same purpose (a reset link mailed earlier no longer works).
    Result<Redeemed, Refusal> redeem(const std::string& token, Purpose purpose);
    // Mails recorded for the user since `since` (every purpose): the limit of mails per address counts these.
    int64_t mails_since(uint64_t user_id, std::chrono::system_clock::time_point since);

  private:
    mysql::Pool& pool_;
};

}  // namespace mp3c::auth
