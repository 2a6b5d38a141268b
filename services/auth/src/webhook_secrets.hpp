#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/mysql.hpp"

namespace mp3c::auth {

// Each user's webhook signing secret, in the Standard Webhooks format ("whsec_" and base64 of 24 random bytes), in the
// `webhook_secrets` table. A rotation keeps the previous secret signing too for an overlap, so that a receiver can
// switch without missing a delivery.
class WebhookSecretStore {
  public:
    struct Secrets {
        std::string current;
        std::optional<std::string> previous;  // only while it is still valid
        int64_t previous_valid_until = 0;     // Unix seconds; 0 without a previous secret
        int64_t created_at = 0;               // Unix seconds: when `current` was made
    };

    explicit WebhookSecretStore(mysql::Pool& pool) : pool_(pool) {}
    static const mysql::Migration kMigration;

    // The user's secrets, the first made now if there is none yet.
    Secrets get(uint64_t user_id);
    // A new current secret; the old one signs as well until now + overlap.
    Secrets rotate(uint64_t user_id, std::chrono::seconds overlap);
    // Every secret that signs the user's webhooks now, newest first.
    std::vector<std::string> signing(uint64_t user_id);

  private:
    mysql::Pool& pool_;
};

}  // namespace mp3c::auth
