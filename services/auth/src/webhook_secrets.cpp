#include "webhook_secrets.hpp"

#include "mp3c/crypto.hpp"

namespace mp3c::auth {

namespace {

int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string new_secret() { return "whsec_" + crypto::base64_encode(crypto::random_bytes(24)); }

}  // namespace

// Times in Unix seconds.
const mysql::Migration WebhookSecretStore::kMigration{
    5,
    "create webhook_secrets",
    {"CREATE TABLE webhook_secrets (user_id BIGINT UNSIGNED NOT NULL PRIMARY KEY, secret VARCHAR(100) NOT NULL,"
     " previous_secret VARCHAR(100) NULL, previous_valid_until BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)"
     " ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin"}};

WebhookSecretStore::Secrets WebhookSecretStore::get(uint64_t user_id) {
    return pool_.with([&](mysql::Connection& c) {
        // INSERT IGNORE: of two first requests at once, one secret is made and both see it.
        c.execute("INSERT IGNORE INTO webhook_secrets (user_id, secret, created_at) VALUES (?, ?, ?)",
                  {user_id, new_secret(), unix_seconds()});
        auto row = c.query(
                        "SELECT secret, previous_secret, previous_valid_until, created_at FROM webhook_secrets"
                        " WHERE user_id = ?",
                        {user_id})
                       .at(0);
        Secrets s{row.text(0), std::nullopt, 0, row.integer(3)};
        if (row.optional_text(1) && row.integer(2) > unix_seconds()) {
            s.previous = row.text(1);
            s.previous_valid_until = row.integer(2);
        }
        return s;
    });
}

WebhookSecretStore::Secrets WebhookSecretStore::rotate(uint64_t user_id, std::chrono::seconds overlap) {
    get(user_id);  // a first rotation rotates the secret made now: nothing can have been signed with it
    pool_.with([&](mysql::Connection& c) {
        c.execute(
            "UPDATE webhook_secrets SET previous_secret = secret, previous_valid_until = ?, secret = ?, created_at = ?"
            " WHERE user_id = ?",
            {unix_seconds() + overlap.count(), new_secret(), unix_seconds(), user_id});
    });
    return get(user_id);
}

std::vector<std::string> WebhookSecretStore::signing(uint64_t user_id) {
    Secrets s = get(user_id);
    std::vector<std::string> all{s.current};
    if (s.previous) all.push_back(*s.previous);
    return all;
}

}  // namespace mp3c::auth
