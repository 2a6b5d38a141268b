#pragma once

#include <chrono>
#include <string>

#include "login_throttle.hpp"
#include "mp3c/amqp.hpp"
#include "mp3c/config.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/http.hpp"
#include "mp3c/log.hpp"
#include "mp3c/mysql.hpp"

namespace mp3c::auth {

struct AuthConfig {
    http::ServerOptions server;
    mysql::Options mysql;
    std::string jwt_secret;
    std::chrono::seconds token_ttl{24 * 3600};
    std::chrono::seconds remember_ttl{30 * 24 * 3600};  // REMEMBER_TTL: "keep me signed in", unused this long
    bool allow_registration = false;
    // Account mails (verification, reset) are published to RabbitMQ for the notification service to send.
    amqp::Options amqp;
    amqp::Topology topology;
    std::chrono::seconds verification_ttl{24 * 3600};
    std::chrono::seconds reset_ttl{30 * 60};
    unsigned account_mails_per_hour = 5;
    std::chrono::seconds webhook_secret_overlap{24 * 3600};
    ThrottleConfig throttle;
    crypto::PasswordHasher::Cost password_cost = crypto::PasswordHasher::interactive();
    log::Level log_level = log::Level::info;
};

// Environment as in the original (MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, MYSQL_DB, JWT_SECRET) plus
// PORT (5000), ADMIN_PORT (5001), TOKEN_TTL (24h), ALLOW_REGISTRATION (off), EMAIL_VERIFICATION_TTL (24h),
// PASSWORD_RESET_TTL (30m), ACCOUNT_MAILS_PER_HOUR (5), WEBHOOK_SECRET_OVERLAP (24h), AMQP_URL and the other RabbitMQ
// settings, LOGIN_MAX_FAILURES_PER_ACCOUNT (5), LOGIN_MAX_FAILURES_PER_CLIENT (20), LOGIN_FAILURE_WINDOW (15m),
// PASSWORD_HASH_OPS and PASSWORD_HASH_MEMORY (argon2id cost; libsodium's interactive limits by default), LOG_LEVEL, and
// the shared HTTP settings. Problems are recorded in env; call env.check() afterwards.
AuthConfig load_auth_config(config::Env& env);

// PASSWORD_HASH_OPS and PASSWORD_HASH_MEMORY, shared by the service and the admin tool.
crypto::PasswordHasher::Cost password_cost_from_env(config::Env& env);

}  // namespace mp3c::auth
