#pragma once

// Auth as the integration tests run it: on a test database, the fastest password hashing, any free port on
// 127.0.0.1, and 127.0.0.1 trusted as a proxy (the tests name their client in X-Forwarded-For, and the gateway's
// tests go through a gateway on 127.0.0.1).
#include <string>

#include "auth_config.hpp"
#include "mp3c/crypto.hpp"

namespace mp3c::auth::test {

inline AuthConfig auth_test_config(const mysql::Options& database, const std::string& jwt_secret) {
    AuthConfig config;
    config.mysql = database;
    config.jwt_secret = jwt_secret;
    config.password_cost = crypto::PasswordHasher::minimum();
    config.server.bind_address = "127.0.0.1";
    config.server.port = 0;
    config.server.trusted_proxies = {"127.0.0.1"};
    return config;
}

}  // namespace mp3c::auth::test
