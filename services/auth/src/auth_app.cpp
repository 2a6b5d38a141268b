#include "auth_app.hpp"

#include <ctime>

#include "credentials.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::auth {

namespace {

using http::Request;
using http::Response;

std::string rfc3339(std::chrono::system_clock::time_point t) {
    auto seconds = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buffer;
}

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
      schema_(std::make_unique<mysql::SchemaGuard>(pool_, UserStore::migrations())),
      users_(pool_),
      signer_(config_.jwt_secret),
      hasher_(config_.password_cost),
      dummy_hash_(hasher_.hash(crypto::random_hex(16))),
      throttle_(config_.throttle),
      logins_(registry_->counter("auth_logins_total", "Login attempts by outcome.", {"result"})) {
    registry_->callback_gauge("auth_database_connections", "Open connections to MariaDB.",
                              [this] { return static_cast<double>(pool_.open_connections()); });
    registry_->callback_gauge("auth_schema_ready", "1 when the database schema is migrated and usable.",
                              [this] { return schema_->ready() ? 1.0 : 0.0; });
}

http::Router AuthApp::router() {
    http::Router router;
    router.add("POST", "/login", [this](Request& r) { return login(r); });
    router.add("POST", "/validate", [this](Request& r) { return validate(r); });
    router.add("POST", "/register", [this](Request& r) { return register_user(r); }, {.max_body_bytes = 16 * 1024});
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
    if (auto wait = throttle_.retry_after(email, request.client_address)) {
        logins_.with({"throttled"}).inc();
        log::warn("login throttled", {{"request_id", request.request_id}, {"client", request.client_address}});
        Response r = Response::error(429, "too_many_attempts",
                                     "too many failed logins, try again in " + std::to_string(wait->count()) + " s");
        r.headers.set("Retry-After", std::to_string(wait->count()));
        return r;
    }
    if (!schema_->ready()) return database_unavailable();

    auto user = users_.find_by_email(email);
    bool valid = hasher_.verify(user ? user->password_hash : dummy_hash_, credentials->password) && user.has_value();
    if (!valid) {
        throttle_.record_failure(email, request.client_address);
        logins_.with({"invalid"}).inc();
        return invalid_credentials(request);
    }
    throttle_.record_success(email);
    if (hasher_.needs_rehash(user->password_hash)) {
        users_.set_password_hash(user->email,
                                 hasher_.hash(credentials->password));  // the cost settings changed since it was stored
    }
    users_.record_login(user->id);
    logins_.with({"success"}).inc();

    auto now = std::chrono::system_clock::now();
    auto expires_at = now + config_.token_ttl;
    messages::AccessClaims claims{user->email, static_cast<uint64_t>(user->id), user->role == Role::admin};
    std::string jwt = signer_.issue(claims.to_json(), expires_at, now);
    if (wants_json(request)) {
        return Response::json(200, {{"token", jwt},
                                    {"token_type", "Bearer"},
                                    {"expires_at", rfc3339(expires_at)},
                                    {"expires_in", config_.token_ttl.count()}});
    }
    return Response::text(200, jwt);
}

Response AuthApp::validate(Request& request) {
    auto header = request.headers.get("Authorization");
    if (!header) return missing_credentials(request, "Bearer");
    auto token = parse_bearer_authorization(*header);
    if (!token) return Response::error(403, "not_authorized", "not authorized");
    auto claims = signer_.verify(*token);
    if (!claims.ok()) {
        Response r = Response::json(
            403,
            {{"error", "not_authorized"}, {"message", "not authorized"}, {"reason", token::to_string(claims.error())}});
        return r;
    }
    return Response::json(200, claims.value());
}

Response AuthApp::register_user(Request& request) {
    if (!config_.allow_registration) return Response::error(404, "not_found", "registration is disabled");
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        return Response::error(400, "invalid_json", "the body must be a JSON object {\"email\", \"password\"}");
    }
    if (!body.contains("email") || !body["email"].is_string()) {
        return Response::error(400, "invalid_email", "\"email\" is required and must be a string");
    }
    if (!body.contains("password") || !body["password"].is_string()) {
        return Response::error(400, "invalid_password", "\"password\" is required and must be a string");
    }
    std::string email = normalize_email(body["email"].get<std::string>());
    std::string password = body["password"];
    if (auto email_ok = check_email(email); !email_ok) return Response::error(400, "invalid_email", email_ok.error());
    if (auto password_ok = check_password(password); !password_ok) {
        return Response::error(400, "invalid_password", password_ok.error());
    }
    if (!schema_->ready()) return database_unavailable();

    auto created = users_.create(email, hasher_.hash(password), Role::user);
    if (!created.ok()) return Response::error(409, "email_taken", "an account with this e-mail address already exists");
    const User& user = created.value();
    log::info("user registered", {{"request_id", request.request_id}, {"user_id", user.id}});
    Response r = Response::json(201, {{"id", user.id}, {"email", user.email}, {"role", to_string(user.role)}});
    return r;
}

}  // namespace mp3c::auth
