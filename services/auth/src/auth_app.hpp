#pragma once

#include <memory>

#include "auth_config.hpp"
#include "login_throttle.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/http.hpp"
#include "mp3c/metrics.hpp"
#include "mp3c/mysql.hpp"
#include "mp3c/token.hpp"
#include "sessions.hpp"
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
    // The auth database's schema: users, then the login throttle's failures (the admin tool applies it too).
    static std::vector<mysql::Migration> migrations();

  private:
    http::Response login(http::Request& request);
    http::Response validate(http::Request& request);
    http::Response register_user(http::Request& request);
    http::Response logout(http::Request& request);
    http::Response change_password(http::Request& request);
    http::Response revocations(http::Request& request);
    // A signed token for the user: jti, username, sub, admin, iat = not_before (default now), exp.
    http::Response token_response(const http::Request& request, const User& user,
                                  std::optional<int64_t> not_before = std::nullopt);
    // The verified claims of the request's bearer token, as signed, or the 401/403 to answer.
    Result<nlohmann::json, http::Response> verified_token(const http::Request& request) const;
    // The same as access claims.
    Result<messages::AccessClaims, http::Response> bearer_claims(const http::Request& request);
    http::Response throttled(const http::Request& request, const Wait& wait);
    http::Response database_unavailable() const;

    AuthConfig config_;
    std::shared_ptr<metrics::Registry> registry_;
    mysql::Pool pool_;
    std::unique_ptr<mysql::SchemaGuard> schema_;
    token::Signer signer_;
    crypto::PasswordHasher hasher_;
    UserStore users_;
    Sessions sessions_;
    std::string dummy_hash_;  // verified against when the user does not exist, so both cases take as long
    LoginThrottle throttle_;
    metrics::Family<metrics::Counter>& logins_;
};

}  // namespace mp3c::auth
