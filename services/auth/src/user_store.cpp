#include "user_store.hpp"

#include "sessions.hpp"

namespace mp3c::auth {

namespace {

constexpr const char* kColumns =
    "id, email, password_hash, role, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%sZ'),"
    " DATE_FORMAT(last_login_at, '%Y-%m-%dT%H:%i:%sZ'), email_verified_at IS NOT NULL";

User from_row(const mysql::Row& row) {
    User u;
    u.id = row.integer(0);
    u.email = row.text(1);
    u.password_hash = row.text(2);
    u.role = parse_role(row.text(3)).value_or(Role::user);
    u.created_at = row.text(4);
    u.last_login_at = row.optional_text(5);
    u.verified = row.integer(6) != 0;
    return u;
}

}  // namespace

std::string to_string(Role role) { return role == Role::admin ? "admin" : "user"; }

std::optional<Role> parse_role(std::string_view text) {
    if (text == "admin") return Role::admin;
    if (text == "user") return Role::user;
    return std::nullopt;
}

std::vector<mysql::Migration> UserStore::migrations() {
    return {
        {1,
         "create users",
         {"CREATE TABLE users ("
          " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
          " email VARCHAR(254) NOT NULL,"
          " password_hash VARCHAR(255) NOT NULL,"
          " role ENUM('user', 'admin') NOT NULL DEFAULT 'user',"
          " created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
          " updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,"
          " last_login_at TIMESTAMP NULL DEFAULT NULL,"
          " UNIQUE KEY users_email (email)"
          ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
    };
}

std::optional<User> UserStore::find_by_email(const std::string& email) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<User> {
        auto rows = c.query(std::string("SELECT ") + kColumns + " FROM users WHERE email = ?", {email});
        if (rows.empty()) return std::nullopt;
        return from_row(rows[0]);
    });
}

std::optional<User> UserStore::find_by_id(uint64_t id) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<User> {
        auto rows = c.query(std::string("SELECT ") + kColumns + " FROM users WHERE id = ?", {id});
        if (rows.empty()) return std::nullopt;
        return from_row(rows[0]);
    });
}

Result<User, UserStore::CreateError> UserStore::create(const std::string& email, const std::string& password_hash,
                                                       Role role, Verified verified) {
    return pool_.with([&](mysql::Connection& c) -> Result<User, CreateError> {
        try {
            c.execute(
                std::string("INSERT INTO users (email, password_hash, role, email_verified_at) VALUES (?, ?, ?, ") +
                    (verified == Verified::yes ? "CURRENT_TIMESTAMP)" : "NULL)"),
                {email, password_hash, to_string(role)});
        } catch (const mysql::Error& e) {
            if (e.duplicate_key()) return CreateError::email_taken;
            throw;
        }
        auto rows = c.query(std::string("SELECT ") + kColumns + " FROM users WHERE id = ?", {c.last_insert_id()});
        return from_row(rows.at(0));
    });
}

std::vector<User> UserStore::list() {
    return pool_.with([&](mysql::Connection& c) {
        std::vector<User> users;
        for (const auto& row : c.query(std::string("SELECT ") + kColumns + " FROM users ORDER BY id")) {
            users.push_back(from_row(row));
        }
        return users;
    });
}

namespace {

std::optional<uint64_t> id_of(mysql::Connection& c, const std::string& email) {
    auto rows = c.query("SELECT id FROM users WHERE email = ?", {email});
    if (rows.empty()) return std::nullopt;
    return rows[0].unsigned_integer(0);
}

}  // namespace

bool UserStore::remove(const std::string& email) {
    return pool_.with([&](mysql::Connection& c) {
        auto id = id_of(c, email);
        if (!id) return false;
        end_all_sessions(c, *id);  // first: a token must not outlive its user for a moment
        c.execute("DELETE FROM account_links WHERE user_id = ?", {*id});
        c.execute("DELETE FROM webhook_secrets WHERE user_id = ?", {*id});
        return c.execute("DELETE FROM users WHERE id = ?", {*id}) > 0;
    });
}

bool UserStore::set_password_hash(const std::string& email, const std::string& password_hash, Tokens tokens) {
    return pool_.with([&](mysql::Connection& c) {
        auto id = id_of(c, email);
        if (!id) return false;
        c.execute("UPDATE users SET password_hash = ? WHERE id = ?", {password_hash, *id});
        if (tokens == Tokens::end) end_all_sessions(c, *id);
        return true;
    });
}

bool UserStore::set_role(const std::string& email, Role role) {
    return pool_.with([&](mysql::Connection& c) {
        auto id = id_of(c, email);
        if (!id) return false;
        c.execute("UPDATE users SET role = ? WHERE id = ?", {to_string(role), *id});
        end_all_sessions(c, *id);  // the role is in the token: old tokens would keep the old one
        return true;
    });
}

void UserStore::mark_verified(uint64_t id, const std::optional<std::string>& password_hash) {
    pool_.with([&](mysql::Connection& c) {
        c.execute("UPDATE users SET email_verified_at = COALESCE(email_verified_at, CURRENT_TIMESTAMP) WHERE id = ?",
                  {id});
        if (!password_hash) return;
        c.execute("UPDATE users SET password_hash = ? WHERE id = ?", {*password_hash, id});
        end_all_sessions(c, id);
    });
}

void UserStore::record_login(int64_t id) {
    pool_.with([&](mysql::Connection& c) {
        c.execute("UPDATE users SET last_login_at = CURRENT_TIMESTAMP WHERE id = ?", {id});
    });
}

}  // namespace mp3c::auth
