#include "mail_preferences.hpp"

#include <charconv>

#include "mp3c/crypto.hpp"

namespace mp3c::auth {

const mysql::Migration MailPreferenceStore::kMigration{
    7,
    "job mail preferences",
    {"ALTER TABLE users ADD COLUMN job_mails ENUM('each', 'summary', 'off') NOT NULL DEFAULT 'each'"}};

std::optional<messages::JobMails> MailPreferenceStore::get(uint64_t user_id) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<messages::JobMails> {
        auto rows = c.query("SELECT job_mails FROM users WHERE id = ?", {user_id});
        if (rows.empty()) return std::nullopt;
        return messages::parse_job_mails(rows[0].text(0)).value_or(messages::JobMails::each);
    });
}

bool MailPreferenceStore::set(uint64_t user_id, messages::JobMails mails) {
    return pool_.with([&](mysql::Connection& c) {
        // updated_at would move with any change of the row: keep it for what it means (the credentials).
        c.execute("UPDATE users SET job_mails = ?, updated_at = updated_at WHERE id = ?",
                  {std::string(messages::to_string(mails)), user_id});
        return !c.query("SELECT 1 FROM users WHERE id = ?", {user_id}).empty();
    });
}

UnsubscribeTokens::UnsubscribeTokens(std::string_view secret)
    : key_(crypto::hmac_sha256(secret, "mp3converter unsubscribe link key")) {}

std::string UnsubscribeTokens::make(uint64_t user_id) const {
    std::string id = std::to_string(user_id);
    return id + "." + crypto::base64_encode(crypto::hmac_sha256(key_, id), crypto::Base64::url_no_padding);
}

std::optional<uint64_t> UnsubscribeTokens::user_of(std::string_view token) const {
    auto dot = token.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot > 20 || token.size() > 100) return std::nullopt;
    uint64_t id = 0;
    auto [end, error] = std::from_chars(token.data(), token.data() + dot, id);
    if (error != std::errc() || end != token.data() + dot) return std::nullopt;
    // Canonical form only: "007.…" is not "7.…".
    if (!crypto::constant_time_equal(make(id), token)) return std::nullopt;
    return id;
}

}  // namespace mp3c::auth
