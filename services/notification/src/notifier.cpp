#include "notifier.hpp"

#include <nlohmann/json.hpp>

#include "mail.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/http_config.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::notification {

namespace {

using Outcome = amqp::Consumer::Outcome;
using namespace std::chrono_literals;

std::optional<std::string> text(const nlohmann::json& j, const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return std::nullopt;
    return j[key].get<std::string>();
}

int attempt_of(const nlohmann::json& j) {
    if (j.is_object() && j.contains("attempt") && j["attempt"].is_number_integer()) {
        return std::max(1, j["attempt"].get<int>());
    }
    return 1;
}

}  // namespace

// What one message asks for: a mail about a finished or failed job, and perhaps a webhook.
struct Notifier::Notice {
    bool done = false;
    std::string job_id;
    std::string recipient;  // the job's username, which is its owner's e-mail address (as in the original)
    std::string filename;
    std::string error;
    std::string callback_url;
    std::string trace_id;
    uint64_t mp3_size = 0;
    double duration_seconds = 0;
    int attempt = 1;
};

NotifierConfig load_notifier_config(config::Env& env) {
    NotifierConfig c;
    c.amqp = amqp::options_from_env(env, "notification");
    c.topology = amqp::topology_from_env(env);
    c.mysql = mysql::options_from_env(env, "notification");
    c.smtp = smtp_options_from_env(env);
    c.public_base_url = env.string("PUBLIC_BASE_URL", c.public_base_url);
    while (c.public_base_url.size() > 1 && c.public_base_url.back() == '/') c.public_base_url.pop_back();
    if (!c.public_base_url.starts_with("http://") && !c.public_base_url.starts_with("https://")) {
        env.problem("PUBLIC_BASE_URL", "must start with http:// or https:// (it prefixes the download links)");
    }
    c.max_attempts = static_cast<int>(env.integer("MAX_ATTEMPTS", c.max_attempts, 1, 1000));
    c.webhook.secret = env.secret("WEBHOOK_SECRET", "");
    c.webhook.allow_private = env.boolean("WEBHOOK_ALLOW_PRIVATE", false);
    c.webhook.timeout = env.duration("WEBHOOK_TIMEOUT", 10s, 1s);
    c.webhook_max_attempts = static_cast<int>(env.integer("WEBHOOK_MAX_ATTEMPTS", c.webhook_max_attempts, 1, 1000));
    auto longest_call = std::max(c.smtp.connect_timeout + c.smtp.timeout, c.webhook.timeout);
    c.sending_lease = env.duration("SENDING_LEASE", longest_call + 30s, 1s);
    if (c.sending_lease <= longest_call) {
        env.problem("SENDING_LEASE", "must be longer than SMTP_CONNECT_TIMEOUT + SMTP_TIMEOUT and WEBHOOK_TIMEOUT (" +
                                         std::to_string(longest_call.count() / 1000) +
                                         " s), or a slow send would be taken for a dead one and repeated");
    }
    c.admin = http::server_options_from_env(env, "notification", 8082);
    c.admin.port = env.port("ADMIN_PORT", c.admin.port);
    c.log_level = log::level_from_env(env);
    return c;
}

Notifier::Notifier(NotifierConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<metrics::Registry>()),
      pool_(config_.mysql),
      schema_(pool_, NotificationStore::migrations()),
      store_(pool_),
      smtp_(config_.smtp),
      publisher_(config_.amqp, config_.topology),
      emails_(registry_->counter("notification_emails_total", "E-mails by outcome.", {"result"})),
      webhooks_(registry_->counter("notification_webhooks_total", "Webhook calls by outcome.", {"result"})),
      smtp_seconds_(registry_->histogram("notification_smtp_seconds", "Time to hand one mail to the SMTP server.", {},
                                         {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60})) {}

Notifier::~Notifier() { stop(); }

void Notifier::start() {
    if (!consumers_.empty()) return;
    auto topology = config_.topology;
    auto consume = [&](const std::string& queue, Outcome (Notifier::*handler)(const amqp::Delivery&)) {
        consumers_.push_back(std::make_unique<amqp::Consumer>(
            config_.amqp,
            [topology, queue](amqp::Connection& c) {
                amqp::declare_topology(c, topology);
                return queue;
            },
            1, [this, handler](const amqp::Delivery& d) { return (this->*handler)(d); }));
        // An SMTP exchange or a webhook call may take a minute (their timeouts): keep heartbeats going meanwhile.
        consumers_.back()->keep_alive_during_handler();
        consumers_.back()->start();
    };
    consume(topology.mp3_queue, &Notifier::handle_done);
    consume(topology.notification_failed_queue, &Notifier::handle_failed);
    consume(topology.notification_webhook_queue, &Notifier::handle_webhook);
}

void Notifier::stop() {
    for (auto& c : consumers_) c->stop();
    consumers_.clear();
}

http::ReadinessCheck Notifier::readiness() {
    return [this]() -> std::optional<std::string> {
        if (!schema_.ready()) return "database schema not ready";
        if (auto problem = pool_.check()) return "database: " + *problem;
        if (auto problem = publisher_.check()) return problem;
        for (const auto& c : consumers_) {
            if (!c->connected()) return "not consuming from RabbitMQ";
        }
        return std::nullopt;
    };
}

Outcome Notifier::handle_done(const amqp::Delivery& delivery) {
    auto body = nlohmann::json::parse(delivery.body, nullptr, false);
    Notice n;
    n.done = true;
    // The original's message has mp3_fid and username only; here the MP3 is named after its job.
    auto job_id = text(body, "job_id");
    if (!job_id) job_id = text(body, "mp3_fid");
    auto username = text(body, "username");
    if (!job_id || !storage::is_valid_id(*job_id) || !username) {
        log::error("invalid mp3 message dead-lettered", {{"body", delivery.body.substr(0, 500)}});
        emails_.with({"invalid_message"}).inc();
        return Outcome::dead_letter;
    }
    n.job_id = *job_id;
    n.recipient = *username;
    n.filename = text(body, "filename").value_or("");
    n.callback_url = text(body, "callback_url").value_or("");
    n.trace_id = text(body, "trace_id").value_or(delivery.correlation_id);
    if (body.contains("mp3_size") && body["mp3_size"].is_number_unsigned()) n.mp3_size = body["mp3_size"];
    if (body.contains("duration_seconds") && body["duration_seconds"].is_number()) {
        n.duration_seconds = body["duration_seconds"].get<double>();
    }
    n.attempt = attempt_of(body);
    return notify(n, delivery, config_.topology.mp3_queue);
}

Outcome Notifier::handle_failed(const amqp::Delivery& delivery) {
    auto body = nlohmann::json::parse(delivery.body, nullptr, false);
    auto job_id = text(body, "job_id");
    if (!job_id || !storage::is_valid_id(*job_id) || text(body, "status") != "failed") {
        log::error("invalid failed-job event dead-lettered", {{"body", delivery.body.substr(0, 500)}});
        emails_.with({"invalid_message"}).inc();
        return Outcome::dead_letter;
    }
    Notice n;
    n.job_id = *job_id;
    n.recipient = text(body, "username").value_or("");
    n.filename = text(body, "filename").value_or("");
    n.error = text(body, "error").value_or("");
    n.callback_url = text(body, "callback_url").value_or("");
    n.trace_id = text(body, "trace_id").value_or(delivery.correlation_id);
    n.attempt = attempt_of(body);
    return notify(n, delivery, config_.topology.notification_failed_queue);
}

void Notifier::queue_webhook(const Notice& n) {
    if (n.callback_url.empty() || store_.state(n.job_id, Channel::webhook)) return;  // none, or queued before
    nlohmann::json task = {{"job_id", n.job_id},
                           {"status", n.done ? "done" : "failed"},
                           {"mp3_url", n.done ? nlohmann::json(config_.public_base_url + "/jobs/" + n.job_id + "/mp3")
                                              : nlohmann::json(nullptr)},
                           {"error", n.done ? nlohmann::json(nullptr) : nlohmann::json(n.error)},
                           {"callback_url", n.callback_url},
                           {"trace_id", n.trace_id}};
    publisher_.publish("", config_.topology.notification_webhook_queue,
                       {.body = task.dump(), .message_id = n.job_id, .correlation_id = n.trace_id});
    store_.set(n.job_id, Channel::webhook, "queued");
}

Outcome Notifier::notify(const Notice& n, const amqp::Delivery& delivery, const std::string& queue) {
    // The database and the broker being unavailable throw: the message is requeued and tried again later.
    if (!schema_.ready()) throw mysql::Error(mysql::Error::kLockTimeout, "database schema not ready");
    queue_webhook(n);  // first, and on its own queue: a failing webhook never holds back the mail

    switch (store_.claim(n.job_id, Channel::email, config_.sending_lease)) {
        case NotificationStore::Claim::settled:
            log::info("job already notified: nothing sent", {{"job_id", n.job_id}});
            emails_.with({"duplicate"}).inc();
            return Outcome::ack;
        case NotificationStore::Claim::busy:
            log::info("another delivery of this job is sending its e-mail: looking again later",
                      {{"job_id", n.job_id}});
            emails_.with({"busy"}).inc();
            return recheck_later(queue, delivery);
        case NotificationStore::Claim::claimed:
            break;
    }
    if (!is_plausible_address(n.recipient)) {
        std::string why = n.recipient.empty() ? "the job names no user" : "the user name is not an e-mail address";
        log::warn("no e-mail for this job", {{"job_id", n.job_id}, {"reason", why}});
        store_.set(n.job_id, Channel::email, "failed", why);
        emails_.with({"no_address"}).inc();
        return Outcome::ack;
    }
    Mail mail = n.done ? done_mail({.job_id = n.job_id,
                                    .filename = n.filename,
                                    .download_url = config_.public_base_url + "/jobs/" + n.job_id + "/mp3",
                                    .mp3_size = n.mp3_size,
                                    .duration_seconds = n.duration_seconds},
                                   config_.smtp.from, n.recipient)
                       : failed_mail({.job_id = n.job_id, .filename = n.filename, .reason = n.error}, config_.smtp.from,
                                     n.recipient);
    // Claimed ("sending") before sending: a crash between sending and recording it resends (with the same
    // Message-ID) once the lease has run out, rather than loses the mail.
    auto started = std::chrono::steady_clock::now();
    SendResult result = smtp_.send(n.recipient, render(mail, "mp3c-" + crypto::random_hex(12)));
    smtp_seconds_.with({}).observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    switch (result.outcome) {
        case SendResult::Outcome::sent:
            store_.set(n.job_id, Channel::email, "sent");
            emails_.with({"sent"}).inc();
            log::info("e-mail sent",
                      {{"job_id", n.job_id}, {"kind", n.done ? "done" : "failed"}, {"trace_id", n.trace_id}});
            return Outcome::ack;
        case SendResult::Outcome::permanent:
            store_.set(n.job_id, Channel::email, "failed", result.detail);
            emails_.with({"refused"}).inc();
            log::warn("the SMTP server refused the e-mail for good", {{"job_id", n.job_id}, {"error", result.detail}});
            return Outcome::ack;
        case SendResult::Outcome::transient:
            break;
    }
    log::warn("e-mail not sent", {{"job_id", n.job_id}, {"attempt", n.attempt}, {"error", result.detail}});
    store_.set(n.job_id, Channel::email, "queued", result.detail);  // released: the retry claims it again
    auto outcome = retry_or_give_up(queue, delivery.body, n.attempt, config_.max_attempts, delivery);
    if (outcome == Outcome::dead_letter) {
        store_.set(n.job_id, Channel::email, "failed",
                   "gave up after " + std::to_string(n.attempt) + " attempts: " + result.detail);
        emails_.with({"gave_up"}).inc();
    } else {
        emails_.with({"retried"}).inc();
    }
    return outcome;
}

Outcome Notifier::recheck_later(const std::string& queue, const amqp::Delivery& delivery) {
    publisher_.publish(
        "", amqp::names::retry_queue_after(queue, 1),
        {.body = delivery.body, .message_id = delivery.message_id, .correlation_id = delivery.correlation_id});
    return Outcome::ack;
}

Outcome Notifier::retry_or_give_up(const std::string& queue, const std::string& body, int attempt, int max_attempts,
                                   const amqp::Delivery& delivery) {
    if (attempt >= max_attempts) {
        log::error("giving up after the last attempt: dead-lettered", {{"queue", queue}, {"attempt", attempt}});
        return Outcome::dead_letter;
    }
    auto next = nlohmann::json::parse(body);
    next["attempt"] = attempt + 1;
    publisher_.publish(
        "", amqp::names::retry_queue_after(queue, attempt),
        {.body = next.dump(), .message_id = delivery.message_id, .correlation_id = delivery.correlation_id});
    return Outcome::ack;
}

Outcome Notifier::handle_webhook(const amqp::Delivery& delivery) {
    auto body = nlohmann::json::parse(delivery.body, nullptr, false);
    auto job_id = text(body, "job_id"), url = text(body, "callback_url"), status = text(body, "status");
    if (!job_id || !storage::is_valid_id(*job_id) || !url || !status) {
        log::error("invalid webhook task dead-lettered", {{"body", delivery.body.substr(0, 500)}});
        webhooks_.with({"invalid_message"}).inc();
        return Outcome::dead_letter;
    }
    if (!schema_.ready()) throw mysql::Error(mysql::Error::kLockTimeout, "database schema not ready");
    switch (store_.claim(*job_id, Channel::webhook, config_.sending_lease)) {
        case NotificationStore::Claim::settled:
            webhooks_.with({"duplicate"}).inc();
            return Outcome::ack;
        case NotificationStore::Claim::busy:
            webhooks_.with({"busy"}).inc();
            return recheck_later(config_.topology.notification_webhook_queue, delivery);
        case NotificationStore::Claim::claimed:
            break;
    }
    if (config_.webhook.secret.empty()) {
        store_.set(*job_id, Channel::webhook, "failed", "webhooks are not configured (no WEBHOOK_SECRET)");
        webhooks_.with({"not_configured"}).inc();
        log::warn("webhook not sent: WEBHOOK_SECRET is not set", {{"job_id", *job_id}});
        return Outcome::ack;
    }
    // The documented payload: exactly these four fields, signed as sent.
    nlohmann::json payload = {{"job_id", *job_id},
                              {"status", *status},
                              {"mp3_url", body.value("mp3_url", nlohmann::json(nullptr))},
                              {"error", body.value("error", nlohmann::json(nullptr))}};
    auto result = deliver_webhook(config_.webhook, *url, payload.dump());
    int attempt = attempt_of(body);
    switch (result.outcome) {
        case WebhookResult::Outcome::delivered:
            store_.set(*job_id, Channel::webhook, "sent");
            webhooks_.with({"delivered"}).inc();
            log::info("webhook delivered", {{"job_id", *job_id}, {"status", result.status}});
            return Outcome::ack;
        case WebhookResult::Outcome::refused:
        case WebhookResult::Outcome::permanent:
            store_.set(*job_id, Channel::webhook, "failed", result.detail);
            webhooks_.with({result.outcome == WebhookResult::Outcome::refused ? "refused" : "rejected"}).inc();
            log::warn("webhook not delivered, for good", {{"job_id", *job_id}, {"error", result.detail}});
            return Outcome::ack;
        case WebhookResult::Outcome::transient:
            break;
    }
    log::warn("webhook not delivered", {{"job_id", *job_id}, {"attempt", attempt}, {"error", result.detail}});
    store_.set(*job_id, Channel::webhook, "queued", result.detail);  // released: the retry claims it again
    auto outcome = retry_or_give_up(config_.topology.notification_webhook_queue, delivery.body, attempt,
                                    config_.webhook_max_attempts, delivery);
    if (outcome == Outcome::dead_letter) {
        store_.set(*job_id, Channel::webhook, "failed", "gave up: " + result.detail);
        webhooks_.with({"gave_up"}).inc();
    } else {
        webhooks_.with({"retried"}).inc();
    }
    return outcome;
}

}  // namespace mp3c::notification
