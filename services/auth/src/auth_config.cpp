#include "auth_config.hpp"

#include <sodium.h>

#include "mp3c/http_config.hpp"
#include "mp3c/token.hpp"

namespace mp3c::auth {

crypto::PasswordHasher::Cost password_cost_from_env(config::Env& env) {
    crypto::PasswordHasher::Cost cost;
    cost.ops = static_cast<uint64_t>(env.integer(
        "PASSWORD_HASH_OPS", static_cast<int64_t>(crypto_pwhash_OPSLIMIT_INTERACTIVE), crypto_pwhash_OPSLIMIT_MIN, 20));
    cost.memory_bytes = env.bytes("PASSWORD_HASH_MEMORY", crypto_pwhash_MEMLIMIT_INTERACTIVE);
    if (cost.memory_bytes < crypto_pwhash_MEMLIMIT_MIN || cost.memory_bytes > (1ull << 32)) {
        env.problem("PASSWORD_HASH_MEMORY", "must be between 8KiB and 4GiB");
    }
    return cost;
}

AuthConfig load_auth_config(config::Env& env) {
    AuthConfig c;
    c.server = http::server_options_from_env(env, "auth", 5000);
    c.mysql = mysql::options_from_env(env, "auth");
    c.jwt_secret = env.secret("JWT_SECRET", std::nullopt, token::Signer::kMinimumSecretLength);
    c.token_ttl = std::chrono::duration_cast<std::chrono::seconds>(
        env.duration("TOKEN_TTL", std::chrono::hours(24), std::chrono::seconds(60)));
    c.allow_registration = env.boolean("ALLOW_REGISTRATION", false);
    c.throttle.max_failures_per_account =
        static_cast<unsigned>(env.integer("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5, 1, 1'000'000));
    c.throttle.max_failures_per_client =
        static_cast<unsigned>(env.integer("LOGIN_MAX_FAILURES_PER_CLIENT", 20, 1, 1'000'000));
    c.throttle.window = std::chrono::duration_cast<std::chrono::seconds>(
        env.duration("LOGIN_FAILURE_WINDOW", std::chrono::minutes(15), std::chrono::seconds(1)));
    c.password_cost = password_cost_from_env(env);
    c.log_level = log::level_from_env(env);
    return c;
}

}  // namespace mp3c::auth
