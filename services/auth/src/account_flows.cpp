// The account flows of AuthApp: sign-up with a verified address, new verification links, password reset, and the
// webhook secrets. Whatever would tell an address with an account from one without (which mail goes, whether an
// account is made) happens after the answer, on the mailer's thread: the answers are the same, in the same time.
#include "auth_app.hpp"
#include "credentials.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/strings.hpp"
#include "request_body.hpp"

namespace mp3c::auth {

namespace {

using http::Request;
using http::Response;

std::string rfc3339_seconds(int64_t unix_seconds) {
    return format_utc(std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds)), "%Y-%m-%dT%H:%M:%SZ");
}

std::string hours_or_minutes(std::chrono::seconds ttl) {
    if (ttl.count() % 3600 == 0) return std::to_string(ttl.count() / 3600) + " h";
    return std::to_string((ttl.count() + 59) / 60) + " min";
}

// The e-mail address of a body {"email"}, normalized, or the 400 to answer.
Result<std::string, Response> email_field(const Request& request) {
    auto fields = string_fields(request, {"email"});
    if (!fields) return fields.error();
    std::string email = normalize_email(fields.value()[0]);
    if (auto ok = check_email(email); !ok) return Response::error(400, "invalid_email", ok.error());
    return email;
}

Response link_refused(AccountLinks::Refusal refusal, std::string_view what) {
    switch (refusal) {
        case AccountLinks::Refusal::used:
            return Response::error(410, "link_used",
                                   std::string("this ") + std::string(what) + " link was used already");
        case AccountLinks::Refusal::expired:
            return Response::error(410, "link_expired",
                                   std::string("this ") + std::string(what) + " link has expired: ask for a new one");
        case AccountLinks::Refusal::unknown:
            break;
    }
    return Response::error(400, "invalid_link", std::string("this is not a valid ") + std::string(what) + " link");
}

}  // namespace

Response AuthApp::accepted_later(std::string what, std::function<void()> work, std::string_view message) {
    if (!mailer_->defer(std::move(what), std::move(work))) {
        Response r = Response::error(503, "busy", "too many account requests are waiting, try again shortly");
        r.headers.set("Retry-After", "10");
        return r;
    }
    return Response::json(202, {{"status", "check_email"}, {"message", message}});
}

void AuthApp::mail_account(const User& user, AccountLinks::Purpose purpose, const std::string& trace_id,
                           std::optional<std::string> password_hash) {
    using Purpose = AccountLinks::Purpose;
    using Kind = messages::AccountMail::Kind;
    const Kind kind = purpose == Purpose::verify_email     ? Kind::verify_email
                      : purpose == Purpose::reset_password ? Kind::reset_password
                                                           : Kind::registration_attempt;
    const auto hour_ago = std::chrono::system_clock::now() - std::chrono::hours(1);
    if (links_.mails_since(static_cast<uint64_t>(user.id), hour_ago) >= config_.account_mails_per_hour) {
        account_mails_.with({"limited"}).inc();
        log::warn("account mail not sent: the address had its mails this hour",
                  {{"request_id", trace_id}, {"user_id", user.id}, {"kind", messages::to_string(kind)}});
        return;
    }
    const std::chrono::seconds ttl = purpose == Purpose::verify_email     ? config_.verification_ttl
                                     : purpose == Purpose::reset_password ? config_.reset_ttl
                                                                          : std::chrono::hours(1);
    auto issued = links_.issue(static_cast<uint64_t>(user.id), purpose, ttl, std::move(password_hash));
    messages::AccountMail mail{.mail_id = crypto::random_hex(12),
                               .kind = kind,
                               .email = user.email,
                               .token = purpose == Purpose::notice ? "" : issued.token,
                               .expires_at = purpose == Purpose::notice ? 0 : issued.expires_at,
                               .trace_id = trace_id};
    mailer_->send(mail);
    account_mails_.with({"sent"}).inc();
    log::info("account mail queued",
              {{"request_id", trace_id}, {"user_id", user.id}, {"kind", messages::to_string(kind)}});
}

Response AuthApp::register_user(Request& request) {
    if (!config_.allow_registration) return Response::error(404, "not_found", "registration is disabled");
    auto fields = string_fields(request, {"email", "password"});
    if (!fields) return fields.error();
    std::string email = normalize_email(fields.value()[0]);
    const std::string& password = fields.value()[1];
    if (auto email_ok = check_email(email); !email_ok) return Response::error(400, "invalid_email", email_ok.error());
    if (auto password_ok = check_password(password); !password_ok) {
        return Response::error(400, "invalid_password", password_ok.error());
    }
    if (!schema_->ready()) return database_unavailable();
    // Hashed whether or not it is used, and the user looked up either way (a database outage answers 503 in both
    // cases): a taken address costs the same as a new one.
    std::string hash = hasher_.hash(password);
    users_.find_by_email(email);
    auto work = [this, email, hash, trace = request.request_id] {
        auto user = users_.find_by_email(email);
        if (!user) {
            auto created = users_.create(email, hash, Role::user, UserStore::Verified::no);
            if (created.ok()) {
                log::info("user registered, not yet verified",
                          {{"request_id", trace}, {"user_id", created.value().id}});
                mail_account(created.value(), AccountLinks::Purpose::verify_email, trace, hash);
                return;
            }
            user = users_.find_by_email(email);  // made meanwhile by a concurrent sign-up
            if (!user) return;
        }
        if (user->verified) {
            mail_account(*user, AccountLinks::Purpose::notice, trace);
        } else {
            // Whoever follows this link proves the address: the account gets the password given with this sign-up,
            // so a stranger who registered the address first does not keep it.
            mail_account(*user, AccountLinks::Purpose::verify_email, trace, hash);
        }
    };
    return accepted_later("registration", std::move(work),
                          "if this address can be used, a mail with a link to activate the account is on its way to "
                          "it; the link works once, within " +
                              hours_or_minutes(config_.verification_ttl));
}

Response AuthApp::resend_verification(Request& request) {
    if (!config_.allow_registration) return Response::error(404, "not_found", "registration is disabled");
    auto email = email_field(request);
    if (!email) return email.error();
    if (!schema_->ready()) return database_unavailable();
    auto work = [this, email = email.value(), trace = request.request_id] {
        auto user = users_.find_by_email(email);
        if (user && !user->verified) mail_account(*user, AccountLinks::Purpose::verify_email, trace);
    };
    return accepted_later("verification", std::move(work),
                          "if this address has an account that is not yet active, a new link to activate it is on "
                          "its way to it");
}

Response AuthApp::verify_email(Request& request) {
    auto fields = string_fields(request, {"token"});
    if (!fields) return fields.error();
    if (!schema_->ready()) return database_unavailable();
    auto redeemed = links_.redeem(fields.value()[0], AccountLinks::Purpose::verify_email);
    if (!redeemed) return link_refused(redeemed.error(), "verification");
    users_.mark_verified(redeemed.value().user_id, redeemed.value().password_hash);
    auto user = users_.find_by_id(redeemed.value().user_id);
    if (!user) return link_refused(AccountLinks::Refusal::unknown, "verification");  // deleted meanwhile
    log::info("e-mail address verified", {{"request_id", request.request_id}, {"user_id", user->id}});
    return Response::json(200, {{"status", "verified"}, {"email", user->email}});
}

Response AuthApp::request_password_reset(Request& request) {
    auto email = email_field(request);
    if (!email) return email.error();
    if (!schema_->ready()) return database_unavailable();
    auto work = [this, email = email.value(), trace = request.request_id] {
        if (auto user = users_.find_by_email(email)) mail_account(*user, AccountLinks::Purpose::reset_password, trace);
    };
    return accepted_later("password reset", std::move(work),
                          "if this address has an account, a mail with a link to set a new password is on its way "
                          "to it; the link works once, within " +
                              hours_or_minutes(config_.reset_ttl));
}

Response AuthApp::confirm_password_reset(Request& request) {
    auto fields = string_fields(request, {"token", "new_password"});
    if (!fields) return fields.error();
    const std::string& fresh = fields.value()[1];
    // Checked before the link is used up, so that a refused password does not cost the link.
    if (auto ok = check_password(fresh); !ok) return Response::error(400, "invalid_password", ok.error());
    if (!schema_->ready()) return database_unavailable();
    auto redeemed = links_.redeem(fields.value()[0], AccountLinks::Purpose::reset_password);
    if (!redeemed) return link_refused(redeemed.error(), "password reset");
    const uint64_t id = redeemed.value().user_id;
    auto user = users_.find_by_id(id);
    if (!user) return link_refused(AccountLinks::Refusal::unknown, "password reset");
    // The link came through the address's mailbox: that proves the address as a verification link would.
    users_.mark_verified(id, hasher_.hash(fresh));
    log::info("password reset", {{"request_id", request.request_id}, {"user_id", id}});
    return Response::json(200, {{"status", "password_changed"}, {"email", user->email}});
}

Response AuthApp::webhook_secret(Request& request, bool rotate) {
    auto claims = bearer_claims(request);
    if (!claims) return claims.error();
    if (!schema_->ready()) return database_unavailable();
    const uint64_t id = claims.value().user_id;
    if (!users_.find_by_id(id)) return Response::error(403, "not_authorized", "not authorized: no such user");
    auto secrets = rotate ? webhook_secrets_.rotate(id, config_.webhook_secret_overlap) : webhook_secrets_.get(id);
    if (rotate) log::info("webhook secret rotated", {{"request_id", request.request_id}, {"user_id", id}});
    nlohmann::json body = {{"secret", secrets.current},
                           {"created_at", rfc3339_seconds(secrets.created_at)},
                           {"previous_secret_valid_until", nullptr}};
    if (secrets.previous) body["previous_secret_valid_until"] = rfc3339_seconds(secrets.previous_valid_until);
    return Response::json(200, body);
}

Result<User, Response> AuthApp::internal_user(const Request& request) {
    auto username = request.query_param("username");
    if (!username) return Response::error(400, "invalid_username", "?username= is required");
    if (!schema_->ready()) return database_unavailable();
    auto user = users_.find_by_email(normalize_email(*username));
    if (!user) return Response::error(404, "unknown_user", "no such user");
    return std::move(*user);
}

Response AuthApp::internal_webhook_secrets(Request& request) {
    auto user = internal_user(request);
    if (!user) return user.error();
    messages::WebhookSecrets secrets{webhook_secrets_.signing(static_cast<uint64_t>(user.value().id))};
    return Response::text(200, secrets.to_body(), "application/json");
}

Response AuthApp::account_preferences(Request& request, bool update) {
    auto claims = bearer_claims(request);
    if (!claims) return claims.error();
    if (!schema_->ready()) return database_unavailable();
    const uint64_t id = claims.value().user_id;
    if (update) {
        auto body = nlohmann::json::parse(request.body, nullptr, false);
        if (body.is_discarded() || !body.is_object()) {
            return Response::error(400, "invalid_json", "the body must be a JSON object {\"job_mails\"}");
        }
        for (const auto& [key, value] : body.items()) {
            if (key != "job_mails")
                return Response::error(400, "unknown_preference",
                                       "no preference \"" + key.substr(0, 40) + "\"; there is job_mails");
        }
        auto value = body.value("job_mails", nlohmann::json());
        std::optional<messages::JobMails> mails;
        if (value.is_string()) mails = messages::parse_job_mails(value.get<std::string>());
        if (!mails) {
            return Response::error(400, "invalid_preference",
                                   "job_mails must be one of: " + messages::job_mails_choices());
        }
        if (!mail_preferences_.set(id, *mails))
            return Response::error(403, "not_authorized", "not authorized: no such user");
        log::info("mail preferences changed",
                  {{"request_id", request.request_id}, {"user_id", id}, {"job_mails", messages::to_string(*mails)}});
    }
    auto mails = mail_preferences_.get(id);
    if (!mails) return Response::error(403, "not_authorized", "not authorized: no such user");
    return Response::json(200, {{"job_mails", messages::to_string(*mails)}});
}

Response AuthApp::unsubscribe(Request& request) {
    // The token comes as {"token"} (the gateway moves it there from its link's query) or as ?token=.
    std::string token = request.query_param("token").value_or("");
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_object() && body.value("token", nlohmann::json()).is_string()) token = body["token"];
    auto user_id = unsubscribe_tokens_.user_of(token);
    if (!user_id) return Response::error(403, "invalid_link", "this unsubscribe link is not valid");
    if (!schema_->ready()) return database_unavailable();
    if (!mail_preferences_.set(*user_id, messages::JobMails::off)) {
        return Response::error(404, "unknown_user", "the account of this link no longer exists");
    }
    log::info("job mails turned off by the unsubscribe link",
              {{"request_id", request.request_id}, {"user_id", *user_id}});
    return Response::json(200, {{"job_mails", "off"}});
}

Response AuthApp::internal_mail_preferences(Request& request) {
    auto user = internal_user(request);
    if (!user) return user.error();
    const auto id = static_cast<uint64_t>(user.value().id);
    auto mails = mail_preferences_.get(id);
    if (!mails) return Response::error(404, "unknown_user", "no such user");
    messages::MailPreferences preferences{.job_mails = *mails, .unsubscribe_token = unsubscribe_tokens_.make(id)};
    return Response::text(200, preferences.to_body(), "application/json");
}

}  // namespace mp3c::auth
