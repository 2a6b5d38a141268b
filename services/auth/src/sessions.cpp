#include "sessions.hpp"

#include "remembered_sessions.hpp"

namespace mp3c::auth {

namespace {
constexpr int64_t kOverlapMs = 5000;
}

// valid_after and expires_at in Unix seconds, as a token's iat and exp.
const mysql::Migration kCreateSessionTables{
    3,
    "create token_cutoffs and revoked_tokens",
    {"CREATE TABLE token_cutoffs (user_id BIGINT UNSIGNED NOT NULL PRIMARY KEY, valid_after BIGINT NOT NULL, changed_at"
     " TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), KEY token_cutoffs_changed"
     " (changed_at)) ENGINE=InnoDB",
     "CREATE TABLE revoked_tokens (jti VARCHAR(64) NOT NULL PRIMARY KEY, user_id BIGINT UNSIGNED NOT NULL, expires_at"
     " BIGINT NOT NULL, revoked_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), KEY revoked_tokens_revoked"
     " (revoked_at), KEY revoked_tokens_expiry (expires_at)) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin"}};

std::vector<mysql::Migration> Sessions::migrations() { return {kCreateSessionTables}; }

int64_t end_all_sessions(mysql::Connection& c, uint64_t user_id) {
    end_remembered_sessions(c, user_id);  // "keep me signed in" ends with the tokens
    c.execute(
        "INSERT INTO token_cutoffs (user_id, valid_after) VALUES (?, FLOOR(UNIX_TIMESTAMP(NOW(3))) + 1)"
        // Strictly later than the last cutoff: a token handed out at that cutoff (a sign-in just after a reset, in
        // the same second) is ended too by the next change.
        " ON DUPLICATE KEY UPDATE valid_after = GREATEST(VALUES(valid_after), valid_after + 1)",
        {user_id});
    return c.query("SELECT valid_after FROM token_cutoffs WHERE user_id = ?", {user_id}).at(0).integer(0);
}

std::optional<int64_t> Sessions::valid_after(uint64_t user_id) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<int64_t> {
        auto rows = c.query("SELECT valid_after FROM token_cutoffs WHERE user_id = ?", {user_id});
        if (rows.empty()) return std::nullopt;
        return rows[0].integer(0);
    });
}

int64_t Sessions::end_all(uint64_t user_id) {
    return pool_.with([&](mysql::Connection& c) { return end_all_sessions(c, user_id); });
}

void Sessions::end_token(const std::string& jti, uint64_t user_id, int64_t expires_at) {
    pool_.with([&](mysql::Connection& c) {
        c.execute("INSERT IGNORE INTO revoked_tokens (jti, user_id, expires_at) VALUES (?, ?, ?)",
                  {jti, user_id, expires_at});
        // Tokens past their expiry are dead anyway: their records go a few at a time.
        c.execute("DELETE FROM revoked_tokens WHERE expires_at < UNIX_TIMESTAMP() LIMIT 100", {});
    });
}

messages::Revocations Sessions::changed_since(int64_t since_ms, std::chrono::seconds token_ttl) {
    return pool_.with([&](mysql::Connection& c) {
        messages::Revocations r;
        r.cursor_ms = c.query("SELECT FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000)").at(0).integer(0);
        const int64_t from_ms = std::max<int64_t>(since_ms - kOverlapMs, 0);
        for (const auto& row :
             c.query("SELECT user_id, valid_after FROM token_cutoffs"
                     " WHERE changed_at >= FROM_UNIXTIME(? / 1000) AND valid_after > UNIX_TIMESTAMP() - ?",
                     {from_ms, static_cast<int64_t>(token_ttl.count())})) {
            r.cutoffs.push_back({row.unsigned_integer(0), row.integer(1)});
        }
        for (const auto& row :
             c.query("SELECT jti, expires_at FROM revoked_tokens"
                     " WHERE revoked_at >= FROM_UNIXTIME(? / 1000) AND expires_at >= UNIX_TIMESTAMP()",
                     {from_ms})) {
            r.tokens.push_back({row.text(0), row.integer(1)});
        }
        return r;
    });
}

}  // namespace mp3c::auth
