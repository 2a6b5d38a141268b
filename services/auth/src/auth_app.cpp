#include "auth_app.hpp"

#include <ctime>

#include "credentials.hpp"
#include "mp3c/enum_names.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::auth {

namespace {

using http::Request;
using http::Response;

bool wants_json(const Request& request) {
    auto accept = request.headers.get("Accept");
    return accept && accept->find("application/json") != std::string_view::npos;
}

// 401 answers name the scheme to use. A Basic challenge makes browsers open their own login dialog, so a client that
// asks for JSON (the web page) gets none.
Response unauthorized(const Request& request, std::string_view code, std::string_view message, const char* scheme) {
    Response r = Response::error(401, code, message);
    if (std::string_view(scheme) == "Bearer" || !wants_json(request)) {
        r.headers.set("WWW-Authenticate", std::string(scheme) + " realm=\"mp3converter\", charset=\"UTF-8\"");
    }
    return r;
}

Response missing_credentials(const Request& request, const char* scheme = "Basic") {
    return unauthorized(request, "missing_credentials", "missing credentials", scheme);
}

Response invalid_credentials(const Request& request) {
    return unauthorized(request, "invalid_credentials", "invalid credentials", "Basic");
}

}  // namespace

AuthApp::AuthApp(AuthConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<metrics::Registry>()),
      pool_(config_.mysql),
      schema_(std::make_unique<mysql::SchemaGuard>(pool_, migrations())),
      signer_(config_.jwt_secret),
      hasher_(config_.password_cost),
      users_(pool_),
      sessions_(pool_),
      remembered_(pool_),
      dummy_hash_(hasher_.hash(crypto::random_hex(16))),
      throttle_(pool_, config_.throttle),
      links_(pool_),
      webhook_secrets_(pool_),
      mail_preferences_(pool_),
      unsubscribe_tokens_(config_.jwt_secret),
      logins_(registry_->counter("auth_logins_total", "Login attempts by outcome.", {"result"})),
      account_mails_(registry_->counter("auth_account_mails_total",
                                        "Account mails (verification, reset, notices) by outcome: sent, limited (the "
                                        "address had its mails this hour), retried, lost, refused (backlog full).",
                                        {"result"})),
      mailer_(std::make_unique<AccountMailer>(config_.amqp, config_.topology, account_mails_)) {
    registry_->callback_gauge("auth_database_connections", "Open connections to MariaDB.",
                              [this] { return static_cast<double>(pool_.open_connections()); });
    registry_->callback_gauge("auth_account_mail_backlog", "Account-mail work waiting to run.",
                              [this] { return static_cast<double>(mailer_->backlog()); });
    registry_->callback_gauge("auth_schema_ready", "1 when the database schema is migrated and usable.",
                              [this] { return schema_->ready() ? 1.0 : 0.0; });
}

http::Router AuthApp::router() {
    http::Router router;
    router.add("POST", "/login", [this](Request& r) { return login(r); });
    router.add("POST", "/validate", [this](Request& r) { return validate(r); });
    constexpr http::RouteOptions kSmallBody{.max_body_bytes = 16 * 1024};
    router.add(
        "POST", "/register", [this](Request& r) { return register_user(r); }, kSmallBody);
    router.add(
        "POST", "/verify", [this](Request& r) { return verify_email(r); }, kSmallBody);
    router.add(
        "POST", "/verify/resend", [this](Request& r) { return resend_verification(r); }, kSmallBody);
    router.add(
        "POST", "/password-reset", [this](Request& r) { return request_password_reset(r); }, kSmallBody);
    router.add(
        "POST", "/password-reset/confirm", [this](Request& r) { return confirm_password_reset(r); }, kSmallBody);
    router.add("GET", "/account/webhook-secret", [this](Request& r) { return webhook_secret(r, false); });
    router.add("POST", "/account/webhook-secret/rotate", [this](Request& r) { return webhook_secret(r, true); });
    router.add("GET", "/account/preferences", [this](Request& r) { return account_preferences(r, false); });
    router.add(
        "PATCH", "/account/preferences", [this](Request& r) { return account_preferences(r, true); }, kSmallBody);
    router.add(
        "POST", "/unsubscribe", [this](Request& r) { return unsubscribe(r); }, kSmallBody);
    router.add("POST", "/logout", [this](Request& r) { return logout(r); });
    router.add("POST", "/session/remember", [this](Request& r) { return remember(r); });
    router.add("POST", "/session", [this](Request& r) { return resume_session(r); });
    router.add("DELETE", "/session", [this](Request& r) { return end_session(r); });
    router.add(
        "POST", "/account/password", [this](Request& r) { return change_password(r); }, kSmallBody);
    // Internal (the gateway polls it; the gateway does not route it): what tokens have been ended.
    router.add("GET", "/revocations", [this](Request& r) { return revocations(r); });
    // Internal (the notification service asks it): the secrets that sign a user's webhooks.
    router.add("GET", "/webhook-secrets", [this](Request& r) { return internal_webhook_secrets(r); });
    // Internal (the notification service asks it): whether and how to mail a user about their jobs.
    router.add("GET", "/mail-preferences", [this](Request& r) { return internal_mail_preferences(r); });
    router.on_exception([this](const std::exception& e) -> std::optional<Response> {
        auto* db = dynamic_cast<const mysql::Error*>(&e);
        if (db == nullptr || !db->unavailable()) return std::nullopt;
        log::warn("database unavailable", {{"error", e.what()}});
        return database_unavailable();
    });
    return router;
}

http::ReadinessCheck AuthApp::readiness() {
    return [this]() -> Check {
        if (!schema_->ready()) return std::string("database schema not ready (database unreachable?)");
        return pool_.check();
    };
}

std::vector<mysql::Migration> AuthApp::migrations() {
    auto all = UserStore::migrations();
    for (auto& m : LoginThrottle::migrations()) all.push_back(std::move(m));
    for (auto& m : Sessions::migrations()) all.push_back(std::move(m));
    all.push_back(AccountLinks::kMigration);
    all.push_back(WebhookSecretStore::kMigration);
    all.push_back(RememberedSessions::kMigration);
    all.push_back(MailPreferenceStore::kMigration);
    return all;
}

Response AuthApp::throttled(const Request& request, const Wait& wait) {
    static constexpr std::array<std::string_view, 3> kWhy = {
        "too many failed logins from your address",
        "too many failed logins for this account from your address",
        "this account had many failed logins: wait between attempts",
    };
    static_assert(names_all(kWhy, Wait::Reason::account_slowed));
    const std::string why(name_of(wait.reason, kWhy, "too many failed logins"));
    logins_.with({"throttled"}).inc();
    log::warn("login throttled", {{"request_id", request.request_id},
                                  {"client", request.client_address},
                                  {"reason", why},
                                  {"seconds", wait.seconds.count()}});
    Response r = Response::error(429, "too_many_attempts",
                                 why + ", try again in " + std::to_string(wait.seconds.count()) + " s");
    r.headers.set("Retry-After", std::to_string(wait.seconds.count()));
    return r;
}

Response AuthApp::database_unavailable() const {
    Response r = Response::error(503, "database_unavailable", "the user database is unavailable, try again shortly");
    r.headers.set("Retry-After", "5");
    return r;
}

Response AuthApp::login(Request& request) {
    auto header = request.headers.get("Authorization");
    if (!header) {
        logins_.with({"missing"}).inc();
        return missing_credentials(request);
    }
    auto credentials = parse_basic_authorization(*header);
    if (!credentials) {
        logins_.with({"missing"}).inc();
        return missing_credentials(request);
    }
    std::string email = normalize_email(credentials->username);
    if (!schema_->ready()) return database_unavailable();
    // The throttle keys an account by a digest of the name given: any length, never stored as typed.
    const std::string account = crypto::to_hex(crypto::sha256(email));
    if (auto wait = throttle_.check(account, request.client_address)) return throttled(request, *wait);

    auto user = users_.find_by_email(email);
    bool valid = hasher_.verify(user ? user->password_hash : dummy_hash_, credentials->password) && user.has_value();
    if (!valid) {
        throttle_.record_failure(account, request.client_address);
        logins_.with({"invalid"}).inc();
        return invalid_credentials(request);
    }
    throttle_.record_success(account, request.client_address);
    if (!user->verified) {
        // Only someone with the right password learns this.
        logins_.with({"unverified"}).inc();
        return Response::error(403, "email_not_verified",
                               "confirm your e-mail address first: follow the link in the mail sent to it, or ask for "
                               "a new one (POST /verify/resend {\"email\"})");
    }
    if (hasher_.needs_rehash(user->password_hash)) {
        users_.set_password_hash(user->email,
                                 hasher_.hash(credentials->password));  // the cost settings changed since it was stored
    }
    users_.record_login(user->id);
    logins_.with({"success"}).inc();
    return token_response(request, *user, sessions_.valid_after(static_cast<uint64_t>(user->id)));
}

Response AuthApp::token_response(const Request& request, const User& user, std::optional<int64_t> not_before) {
    auto now = std::chrono::system_clock::now();
    if (not_before) now = std::max(now, std::chrono::system_clock::time_point(std::chrono::seconds(*not_before)));
    auto expires_at = now + config_.token_ttl;
    messages::AccessClaims claims{.username = user.email,
                                  .user_id = static_cast<uint64_t>(user.id),
                                  .admin = user.role == Role::admin,
                                  .jti = crypto::random_hex(16)};
    std::string jwt = signer_.issue(claims.to_json(), expires_at, now);
    if (wants_json(request)) {
        return Response::json(200, {{"token", jwt},
                                    {"token_type", "Bearer"},
                                    {"expires_at", format_utc(expires_at, "%Y-%m-%dT%H:%M:%SZ")},
                                    {"expires_in", config_.token_ttl.count()}});
    }
    return Response::text(200, jwt);
}

Result<messages::AccessClaims, Response> AuthApp::bearer_claims(const Request& request) {
    auto claims = verified_token(request);
    if (!claims) return claims.error();
    auto access = messages::AccessClaims::from_json(claims.value());
    if (!access) return Response::error(403, "not_authorized", "not authorized: " + access.error().describe());
    return std::move(access).value();
}

Response AuthApp::logout(Request& request) {
    auto claims = bearer_claims(request);
    if (!claims) return claims.error();
    if (!schema_->ready()) return database_unavailable();
    const auto& c = claims.value();
    if (!c.jti.empty()) sessions_.end_token(c.jti, c.user_id, c.expires_at);
    // A token from before tokens had ids cannot be ended alone; it expires as before (at most TOKEN_TTL).
    log::info("signed out", {{"request_id", request.request_id}, {"user_id", c.user_id}, {"ended", !c.jti.empty()}});
    Response r;
    r.status = 204;
    return r;
}

Response AuthApp::remember(Request& request) {
    auto claims = bearer_claims(request);
    if (!claims) return claims.error();
    if (!schema_->ready()) return database_unavailable();
    std::string cookie = remembered_.create(claims.value().user_id, config_.remember_ttl);
    log::info("session remembered", {{"request_id", request.request_id}, {"user_id", claims.value().user_id}});
    Response r;
    r.status = 204;
    r.headers.set("Set-Cookie", RememberedSessions::set_cookie(cookie, config_.remember_ttl));
    return r;
}

Response AuthApp::resume_session(Request& request) {
    auto refuse = [] {
        Response r = Response::error(401, "no_session", "no remembered session: sign in");
        r.headers.set("Set-Cookie", RememberedSessions::set_cookie("", std::chrono::seconds(0)));
        return r;
    };
    auto cookie = RememberedSessions::from_header(request.headers.get("Cookie").value_or(""));
    if (!cookie) return refuse();
    if (!schema_->ready()) return database_unavailable();
    auto redeemed = remembered_.redeem(*cookie, config_.remember_ttl);
    if (!redeemed) return refuse();
    auto user = users_.find_by_id(redeemed->user_id);
    if (!user || !user->verified) return refuse();
    Response r = token_response(request, *user, sessions_.valid_after(redeemed->user_id));
    r.headers.set("Set-Cookie", RememberedSessions::set_cookie(redeemed->cookie, config_.remember_ttl));
    return r;
}

Response AuthApp::end_session(Request& request) {
    if (auto cookie = RememberedSessions::from_header(request.headers.get("Cookie").value_or(""))) {
        if (!schema_->ready()) return database_unavailable();
        remembered_.end(*cookie);
    }
    Response r;
    r.status = 204;
    r.headers.set("Set-Cookie", RememberedSessions::set_cookie("", std::chrono::seconds(0)));
    return r;
}

Response AuthApp::change_password(Request& request) {
    auto claims = bearer_claims(request);
    if (!claims) return claims.error();
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() || !body.value("current_password", nlohmann::json()).is_string() ||
        !body.value("new_password", nlohmann::json()).is_string()) {
        return Response::error(400, "invalid_json",
                               "the body must be a JSON object {\"current_password\", \"new_password\"}");
    }
    std::string current = body["current_password"], fresh = body["new_password"];
    if (auto ok = check_password(fresh); !ok) return Response::error(400, "invalid_password", ok.error());
    if (!schema_->ready()) return database_unavailable();
    // The current password is a login: throttled as one, so that a stolen token cannot be used to guess it.
    const std::string account = crypto::to_hex(crypto::sha256(normalize_email(claims.value().username)));
    if (auto wait = throttle_.check(account, request.client_address)) return throttled(request, *wait);
    auto user = users_.find_by_email(claims.value().username);
    if (!user || static_cast<uint64_t>(user->id) != claims.value().user_id ||
        !hasher_.verify(user->password_hash, current)) {
        if (user) throttle_.record_failure(account, request.client_address);
        return Response::error(403, "wrong_password", "the current password is not right");
    }
    users_.set_password_hash(user->email, hasher_.hash(fresh), UserStore::Tokens::keep);
    int64_t cutoff = sessions_.end_all(static_cast<uint64_t>(user->id));
    log::info("password changed", {{"request_id", request.request_id}, {"user_id", user->id}});
    // Every older token is ended, this one included; the caller goes on with the new one.
    return token_response(request, *user, cutoff);
}

Response AuthApp::revocations(Request& request) {
    if (!schema_->ready()) return database_unavailable();
    int64_t since = 0;
    if (auto text = request.query_param("since_ms")) {
        try {
            since = std::stoll(*text);
        } catch (const std::exception&) {
            return Response::error(400, "invalid_since", "since_ms must be a whole number of milliseconds");
        }
    }
    return Response::text(200, sessions_.changed_since(since, config_.token_ttl).to_body(), "application/json");
}

Response AuthApp::validate(Request& request) {
    auto claims = verified_token(request);
    if (!claims) return claims.error();
    return Response::json(200, claims.value());
}

Result<nlohmann::json, Response> AuthApp::verified_token(const Request& request) const {
    auto header = request.headers.get("Authorization");
    if (!header) return missing_credentials(request, "Bearer");
    auto token = parse_bearer_authorization(*header);
    if (!token) return Response::error(403, "not_authorized", "not authorized");
    auto claims = signer_.verify(*token);
    if (!claims.ok()) {
        return Response::json(
            403,
            {{"error", "not_authorized"}, {"message", "not authorized"}, {"reason", token::to_string(claims.error())}});
    }
    return std::move(claims).value();
}

}  // namespace mp3c::auth
