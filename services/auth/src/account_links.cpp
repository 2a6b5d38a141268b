#include "account_links.hpp"

#include "mp3c/crypto.hpp"
#include "mp3c/enum_names.hpp"

namespace mp3c::auth {

namespace {

constexpr std::array<std::string_view, 3> kPurposes = {"verify_email", "reset_password", "notice"};
static_assert(names_all(kPurposes, AccountLinks::Purpose::notice));

std::string purpose_name(AccountLinks::Purpose p) { return std::string(name_of(p, kPurposes, "notice")); }

int64_t unix_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string digest(const std::string& token) { return crypto::to_hex(crypto::sha256(token)); }

}  // namespace

// Times in Unix ms. Accounts that existed before verification are taken as verified.
const mysql::Migration AccountLinks::kMigration{
    4,
    "email verification and account links",
    {"ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMP NULL DEFAULT NULL",
     "UPDATE users SET email_verified_at = created_at",
     "CREATE TABLE account_links (token_hash CHAR(64) NOT NULL PRIMARY KEY, user_id BIGINT UNSIGNED NOT NULL,"
     " purpose ENUM('verify_email', 'reset_password', 'notice') NOT NULL, password_hash VARCHAR(255) NULL,"
     " created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT NULL,"
     " KEY account_links_user (user_id, created_at), KEY account_links_expiry (expires_at))"
     " ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin"}};

AccountLinks::Issued AccountLinks::issue(uint64_t user_id, Purpose purpose, std::chrono::seconds ttl,
                                         std::optional<std::string> password_hash) {
    auto now = std::chrono::system_clock::now();
    Issued issued{crypto::base64_encode(crypto::random_bytes(32), crypto::Base64::url_no_padding),
                  std::chrono::duration_cast<std::chrono::seconds>((now + ttl).time_since_epoch()).count()};
    pool_.with([&](mysql::Connection& c) {
        // Links long expired are of no use to anyone: each new one clears some of them.
        c.execute("DELETE FROM account_links WHERE expires_at < ? LIMIT 100", {unix_ms(now - std::chrono::hours(48))});
        mysql::Value hash = password_hash ? mysql::Value(*password_hash) : mysql::Value(nullptr);
        c.execute(
            "INSERT INTO account_links (token_hash, user_id, purpose, password_hash, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            {digest(issued.token), user_id, purpose_name(purpose), hash, unix_ms(now), issued.expires_at * 1000});
    });
    return issued;
}

Result<AccountLinks::Redeemed, AccountLinks::Refusal> AccountLinks::redeem(const std::string& token, Purpose purpose) {
    if (token.empty() || token.size() > 100) return Refusal::unknown;
    const std::string hash = digest(token);
    const int64_t now = unix_ms(std::chrono::system_clock::now());
    return pool_.with([&](mysql::Connection& c) -> Result<Redeemed, Refusal> {
        // The conditional update is the single use: only one of two concurrent requests changes the row.
        uint64_t taken = c.execute(
            "UPDATE account_links SET used_at = ? WHERE token_hash = ? AND purpose = ? AND used_at IS NULL"
            " AND expires_at > ?",
            {now, hash, purpose_name(purpose), now});
        auto rows = c.query(
            "SELECT user_id, password_hash, used_at, expires_at FROM account_links"
            " WHERE token_hash = ? AND purpose = ?",
            {hash, purpose_name(purpose)});
        if (rows.empty()) return Refusal::unknown;
        if (taken == 0) return rows[0].integer(3) <= now ? Refusal::expired : Refusal::used;
        Redeemed r{rows[0].unsigned_integer(0), rows[0].optional_text(1)};
        c.execute("UPDATE account_links SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
                  {now, r.user_id, purpose_name(purpose)});
        return r;
    });
}

int64_t AccountLinks::mails_since(uint64_t user_id, std::chrono::system_clock::time_point since) {
    return pool_.with([&](mysql::Connection& c) {
        return c
            .query("SELECT COUNT(*) FROM account_links WHERE user_id = ? AND created_at >= ?",
                   {user_id, unix_ms(since)})
            .at(0)
            .integer(0);
    });
}

}  // namespace mp3c::auth
