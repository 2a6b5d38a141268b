#pragma once

#include <memory>

#include "auth_config.hpp"
#include "login_throttle.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/http.hpp"
#include "mp3c/metrics.hpp"
#include "mp3c/mysql.hpp"
#include "mp3c/token.hpp"
#include "user_store.hpp"

namespace mp3c::auth {

// The auth service: POST /login, POST /validate, POST /register, on top of the users table.
class AuthApp {
  public:
    explicit AuthApp(AuthConfig config);

    http::Router router();
    http::ReadinessCheck readiness();
    std::shared_ptr<metrics::Registry> registry() const { return registry_; }
    mysql::SchemaGuard& schema() { return *schema_; }

  private:
    http::Response login(http::Request& request);
    http::Response validate(http::Request& request);
    http::Response register_user(http::Request& request);
    http::Response database_unavailable() const;

    AuthConfig config_;
    std::shared_ptr<metrics::Registry> registry_;
    mysql::Pool pool_;
    std::unique_ptr<mysql::SchemaGuard> schema_;
    UserStore users_;
    token::Signer signer_;
    crypto::PasswordHasher hasher_;
    std::string dummy_hash_;  // verified against when the user does not exist, so both cases take as long
    LoginThrottle throttle_;
    metrics::Family<metrics::Counter>& logins_;
};

}  // namespace mp3c::auth
