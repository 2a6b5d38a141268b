#include "remembered_sessions.hpp"

#include "mp3c/crypto.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::auth {

const mysql::Migration RememberedSessions::kMigration{
    6,
    "create remembered_sessions",
    {"CREATE TABLE remembered_sessions (id CHAR(32) NOT NULL PRIMARY KEY, user_id BIGINT UNSIGNED NOT NULL,"
     " secret_sha256 CHAR(64) NOT NULL, expires_at BIGINT NOT NULL, created_at TIMESTAMP(3) NOT NULL DEFAULT"
     " CURRENT_TIMESTAMP(3), KEY remembered_sessions_user (user_id), KEY remembered_sessions_expiry (expires_at))"
     " ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin"}};

namespace {

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct Parts {
    std::string id, secret;
};

std::optional<Parts> split_value(std::string_view cookie) {
    auto dot = cookie.find('.');
    if (dot != 32 || cookie.size() != 65) return std::nullopt;
    for (char c : cookie) {
        if (c != '.' && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    }
    return Parts{std::string(cookie.substr(0, 32)), std::string(cookie.substr(33))};
}

std::string digest(const std::string& secret) { return crypto::to_hex(crypto::sha256(secret)); }

}  // namespace

std::string RememberedSessions::create(uint64_t user_id, std::chrono::seconds ttl) {
    std::string id = crypto::random_hex(16), secret = crypto::random_hex(16);
    pool_.with([&](mysql::Connection& c) {
        c.execute("INSERT INTO remembered_sessions (id, user_id, secret_sha256, expires_at) VALUES (?, ?, ?, ?)",
                  {id, user_id, digest(secret), unix_now() + ttl.count()});
        // Sessions past their expiry are dead anyway: their rows go a few at a time.
        c.execute("DELETE FROM remembered_sessions WHERE expires_at < UNIX_TIMESTAMP() LIMIT 100", {});
    });
    return id + "." + secret;
}

std::optional<RememberedSessions::Redeemed> RememberedSessions::redeem(std::string_view cookie,
                                                                       std::chrono::seconds ttl) {
    auto parts = split_value(cookie);
    if (!parts) return std::nullopt;
    return pool_.with([&](mysql::Connection& c) -> std::optional<Redeemed> {
        auto rows =
            c.query("SELECT user_id, secret_sha256, expires_at FROM remembered_sessions WHERE id = ?", {parts->id});
        if (rows.empty() || rows[0].integer(2) < unix_now() ||
            !crypto::constant_time_equal(rows[0].text(1), digest(parts->secret))) {
            return std::nullopt;
        }
        // Replaced only if nobody replaced it since it was read: two tabs redeeming at once, one of them wins.
        std::string secret = crypto::random_hex(16);
        if (c.execute("UPDATE remembered_sessions SET secret_sha256 = ?, expires_at = ? WHERE id = ? AND "
                      "secret_sha256 = ?",
                      {digest(secret), unix_now() + ttl.count(), parts->id, digest(parts->secret)}) != 1) {
            return std::nullopt;
        }
        return Redeemed{.user_id = rows[0].unsigned_integer(0), .cookie = parts->id + "." + secret};
    });
}

void RememberedSessions::end(std::string_view cookie) {
    auto parts = split_value(cookie);
    if (!parts) return;
    pool_.with([&](mysql::Connection& c) {
        c.execute("DELETE FROM remembered_sessions WHERE id = ? AND secret_sha256 = ?",
                  {parts->id, digest(parts->secret)});
    });
}

std::optional<std::string> RememberedSessions::from_header(std::string_view header) {
    for (auto part : split(header, ';')) {
        auto pair = trim(part);
        auto eq = pair.find('=');
        if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == kCookie) {
            return std::string(trim(pair.substr(eq + 1)));
        }
    }
    return std::nullopt;
}

std::string RememberedSessions::set_cookie(const std::string& value, std::chrono::seconds max_age) {
    return std::string(kCookie) + "=" + value + "; Path=/session; Max-Age=" + std::to_string(max_age.count()) +
           "; HttpOnly; Secure; SameSite=Strict";
}

void end_remembered_sessions(mysql::Connection& c, uint64_t user_id) {
    c.execute("DELETE FROM remembered_sessions WHERE user_id = ?", {user_id});
}

}  // namespace mp3c::auth
