#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/mysql.hpp"
#include "mp3c/result.hpp"

namespace mp3c::auth {

enum class Role { user, admin };
std::string to_string(Role role);
std::optional<Role> parse_role(std::string_view text);

struct User {
    int64_t id = 0;
    std::string email;
    std::string password_hash;  // argon2id, PHC string format
    Role role = Role::user;
    std::string created_at;  // RFC 3339, UTC
    std::optional<std::string> last_login_at;
    bool verified = true;  // the owner has proved the address (a link mailed to it); admin-made accounts are
};

// The `users` table of the auth database. Infrastructure failures throw mysql::Error; domain outcomes are results.
class UserStore {
  public:
    explicit UserStore(mysql::Pool& pool) : pool_(pool) {}
    static std::vector<mysql::Migration> migrations();

    std::optional<User> find_by_email(const std::string& email);
    std::optional<User> find_by_id(uint64_t id);
    enum class CreateError { email_taken };
    enum class Verified { yes, no };
    Result<User, CreateError> create(const std::string& email, const std::string& password_hash, Role role,
                                     Verified verified = Verified::yes);
    // The address is proved (a verification or reset link was followed); with a password hash, it becomes the
    // password, ending the user's tokens.
    void mark_verified(uint64_t id, const std::optional<std::string>& password_hash = std::nullopt);
    std::vector<User> list();
    // Deleting a user, changing their role or password ends every token they hold (sessions.hpp).
    bool remove(const std::string& email);
    // A new password ends the user's tokens; a rehash of the same password (new cost settings) keeps them.
    enum class Tokens { end, keep };
    bool set_password_hash(const std::string& email, const std::string& password_hash, Tokens tokens = Tokens::end);
    bool set_role(const std::string& email, Role role);
    void record_login(int64_t id);

  private:
    mysql::Pool& pool_;
};

}  // namespace mp3c::auth
