#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mp3c/messages.hpp"
#include "mp3c/mysql.hpp"

namespace mp3c::auth {

// Each user's choice of job e-mails (each, summary, off), a column of `users`.
class MailPreferenceStore {
  public:
    explicit MailPreferenceStore(mysql::Pool& pool) : pool_(pool) {}
    static const mysql::Migration kMigration;

    // nullopt: no such user.
    std::optional<messages::JobMails> get(uint64_t user_id);
    // false: no such user.
    bool set(uint64_t user_id, messages::JobMails mails);

  private:
    mysql::Pool& pool_;
};

// The one-click unsubscribe link's token: "<user id>.<base64url HMAC>", made with a key derived from auth's JWT secret
// under its own label. It has no date: the link in a mail keeps working, and all it can do is turn job e-mails off
// (RFC 8058), so a leaked one harms nobody more than a forwarded mail would.
class UnsubscribeTokens {
  public:
    explicit UnsubscribeTokens(std::string_view secret);
    std::string make(uint64_t user_id) const;
    // The user the token was made for; nullopt for anything else.
    std::optional<uint64_t> user_of(std::string_view token) const;

  private:
    std::string key_;
};

}  // namespace mp3c::auth
