#pragma once

#include <memory>

#include "account_links.hpp"
#include "account_mailer.hpp"
#include "auth_config.hpp"
#include "login_throttle.hpp"
#include "mail_preferences.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/http.hpp"
#include "mp3c/metrics.hpp"
#include "mp3c/mysql.hpp"
#include "mp3c/token.hpp"
#include "remembered_sessions.hpp"
#include "sessions.hpp"
#include "user_store.hpp"
#include "webhook_secrets.hpp"

namespace mp3c::auth {

// The auth service: sign-in (POST /login, /validate, /logout), accounts (sign-up with a verified address, password
// change and reset, webhook secrets), on top of the auth database. The account flows are in account_flows.cpp.
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
    // account_flows.cpp: what mails a link, and what the link does.
    http::Response register_user(http::Request& request);
    http::Response resend_verification(http::Request& request);
    http::Response verify_email(http::Request& request);
    http::Response request_password_reset(http::Request& request);
    http::Response confirm_password_reset(http::Request& request);
    http::Response webhook_secret(http::Request& request, bool rotate);
    // The user an internal question names (?username=), or the 400/404/503 to answer.
    Result<User, http::Response> internal_user(const http::Request& request);
    http::Response internal_webhook_secrets(http::Request& request);
    // GET and PATCH /account/preferences: {"job_mails": "each" | "summary" | "off"}.
    http::Response account_preferences(http::Request& request, bool update);
    // POST /unsubscribe?token= (RFC 8058 one-click, from a job mail's List-Unsubscribe header): job e-mails off.
    http::Response unsubscribe(http::Request& request);
    // Internal (the notification service asks before mailing a job's owner): GET /mail-preferences?username=.
    http::Response internal_mail_preferences(http::Request& request);
    // Mails the account a link of the purpose (or, for a notice, a registration_attempt mail) unless it has had
    // ACCOUNT_MAILS_PER_HOUR mails this hour. Runs on the mailer's thread; throws when the database or RabbitMQ fails.
    void mail_account(const User& user, AccountLinks::Purpose purpose, const std::string& trace_id,
                      std::optional<std::string> password_hash = std::nullopt);
    // Queues work for after the answer; the 202 to give, or 503 when too much waits already.
    http::Response accepted_later(std::string what, std::function<void()> work, std::string_view message);
    http::Response logout(http::Request& request);
    // "Keep me signed in" (remembered_sessions.hpp): POST /session/remember (with a token) sets the cookie, POST
    // /session (with the cookie) trades it for a token and a new cookie, DELETE /session ends it.
    http::Response remember(http::Request& request);
    http::Response resume_session(http::Request& request);
    http::Response end_session(http::Request& request);
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
    RememberedSessions remembered_;
    std::string dummy_hash_;  // verified against when the user does not exist, so both cases take as long
    LoginThrottle throttle_;
    AccountLinks links_;
    WebhookSecretStore webhook_secrets_;
    MailPreferenceStore mail_preferences_;
    UnsubscribeTokens unsubscribe_tokens_;
    metrics::Family<metrics::Counter>& logins_;
    metrics::Family<metrics::Counter>& account_mails_;
    std::unique_ptr<AccountMailer> mailer_;  // last: its thread uses the members above until it is joined
};

}  // namespace mp3c::auth
