#include "auth_config.hpp"

#include <sodium.h>

#include "mp3c/http_config.hpp"
#include "mp3c/settings.hpp"
#include "mp3c/token.hpp"

namespace mp3c::auth {

// The declared defaults and limits are libsodium's (its interactive level and its minimums).
static_assert(crypto_pwhash_OPSLIMIT_INTERACTIVE == 2 && crypto_pwhash_OPSLIMIT_MIN == 1);
static_assert(crypto_pwhash_MEMLIMIT_INTERACTIVE == 64u << 20 && crypto_pwhash_MEMLIMIT_MIN == 8192);

crypto::PasswordHasher::Cost password_cost_from_env(config::Env& env) {
    crypto::PasswordHasher::Cost cost;
    cost.ops = static_cast<uint64_t>(env.integer(settings::kHashOps));
    cost.memory_bytes = env.bytes(settings::kHashMemory);
    return cost;
}

AuthConfig load_auth_config(config::Env& env) {
    AuthConfig c;
    c.server = http::server_options_from_env(env, "auth", 5000);
    c.server.admin_port = env.port(settings::kAdminPort);
    c.mysql = mysql::options_from_env(env, "auth");
    c.jwt_secret = env.secret(token::settings::kJwtSecret, token::Signer::kMinimumSecretLength);
    c.token_ttl = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kTokenTtl));
    c.remember_ttl = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kRememberTtl));
    c.allow_registration = env.boolean(settings::kAllowRegistration);
    c.amqp = amqp::options_from_env(env, "auth");
    c.topology = amqp::topology_from_env(env);
    using std::chrono::duration_cast, std::chrono::seconds;
    c.verification_ttl = duration_cast<seconds>(env.duration(settings::kEmailVerificationTtl));
    c.reset_ttl = duration_cast<seconds>(env.duration(settings::kPasswordResetTtl));
    c.account_mails_per_hour = static_cast<unsigned>(env.integer(settings::kAccountMailsPerHour));
    c.webhook_secret_overlap = duration_cast<seconds>(env.duration(settings::kWebhookSecretOverlap));
    c.throttle.max_failures_per_account = static_cast<unsigned>(env.integer(settings::kMaxFailuresPerAccount));
    c.throttle.max_failures_per_client = static_cast<unsigned>(env.integer(settings::kMaxFailuresPerClient));
    c.throttle.window = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kFailureWindow));
    c.throttle.account_slowdown_after = c.throttle.max_failures_per_account;
    c.throttle.max_account_delay =
        std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kAccountMaxDelay));
    c.password_cost = password_cost_from_env(env);
    c.log_level = log::level_from_env(env);
    return c;
}

}  // namespace mp3c::auth
