#include "notifier.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "mail.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/http_config.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/outbound.hpp"
#include "mp3c/settings.hpp"
#include "mp3c/storage.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::notification {

namespace {

using Outcome = amqp::Consumer::Outcome;
using namespace std::chrono_literals;

int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

// One mail to send once: its key, its recipient, how to write it, and what to do when it must be tried again.
struct Notifier::Outgoing {
    std::string key;  // a job id, or an account mail's id
    std::string recipient;
    std::function<Mail()> compose;
    std::string kind;  // for logs
    std::string trace_id;
    int attempt = 1;
    std::string next_body;
    // Set for a mail about a job: it follows the owner's choice of job mails (an account mail always goes).
    std::optional<DigestItem> job;
};

// What one message asks for: a mail about a finished or failed job, and perhaps a webhook.
struct Notifier::Notice {
    bool done = false;
    std::string job_id;
    std::string key;  // the job id (its end), or <job id>.failed.<time> (one of its failures: a retry may fail again)
    std::string recipient;  // the job's username, which is its owner's e-mail address (as in the original)
    std::string filename;
    std::string error;
    std::string callback_url;
    std::string trace_id;
    uint64_t mp3_size = 0;
    double duration_seconds = 0;
    int parts = 0;
    int attempt = 1;
    std::string next_body;  // the same message with its attempt count raised, for a retry
};

NotifierConfig load_notifier_config(config::Env& env) {
    NotifierConfig c;
    c.amqp = amqp::options_from_env(env, "notification");
    c.topology = amqp::topology_from_env(env);
    c.mysql = mysql::options_from_env(env, "notification");
    c.smtp = smtp_options_from_env(env);
    c.public_base_url = env.text(settings::kPublicBaseUrl);
    while (c.public_base_url.size() > 1 && c.public_base_url.back() == '/') c.public_base_url.pop_back();
    if (!c.public_base_url.starts_with("http://") && !c.public_base_url.starts_with("https://")) {
        env.problem("PUBLIC_BASE_URL", "must start with http:// or https:// (it prefixes the download links)");
    }
    c.max_attempts = static_cast<int>(env.integer(settings::kMaxAttempts));
    c.auth_url = outbound::service_url(env.text(settings::kAuthAddress));
    c.webhook_workers = static_cast<int>(env.integer(settings::kWebhookWorkers));
    c.job_ticket_secret = env.secret(token::settings::kJobTicketSecret);
    if (!c.job_ticket_secret.empty() && c.job_ticket_secret.size() < 32) {
        env.problem("JOB_TICKET_SECRET", "the secret is too short: at least 32 characters are required");
    }
    c.retention = std::chrono::duration_cast<std::chrono::seconds>(env.duration(retention::settings::kRetention));
    c.source_retention =
        std::chrono::duration_cast<std::chrono::seconds>(env.duration(retention::settings::kSourceRetention));
    c.webhook.secret = env.secret(settings::kWebhookSecret);
    c.webhook.allow_private = env.boolean(settings::kWebhookAllowPrivate);
    c.webhook.timeout = env.duration(settings::kWebhookTimeout);
    c.webhook_max_attempts = static_cast<int>(env.integer(settings::kWebhookMaxAttempts));
    auto longest_call = std::max(c.smtp.connect_timeout + c.smtp.timeout, c.webhook.timeout);
    c.sending_lease = env.duration(settings::kSendingLease, longest_call + 30s);
    if (c.sending_lease <= longest_call) {
        env.problem("SENDING_LEASE", "must be longer than SMTP_CONNECT_TIMEOUT + SMTP_TIMEOUT and WEBHOOK_TIMEOUT (" +
                                         std::to_string(longest_call.count() / 1000) +
                                         " s), or a slow send would be taken for a dead one and repeated");
    }
    c.digest_quiet = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kDigestQuiet));
    c.digest_max_wait = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kDigestMaxWait));
    c.admin = http::server_options_from_env(env, "notification", 8082);
    c.admin.port = env.port(settings::kAdminPort);
    c.log_level = log::level_from_env(env);
    return c;
}

Notifier::Notifier(NotifierConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<metrics::Registry>()),
      pool_(config_.mysql),
      schema_(pool_,
              [] {
                  auto all = NotificationStore::migrations();
                  all.push_back(DigestStore::kMigration);
                  all.push_back(DigestStore::kPartsMigration);
                  return all;
              }()),
      store_(pool_),
      smtp_(config_.smtp),
      publisher_(config_.amqp, config_.topology),
      mp3_retries_(publisher_, config_.topology.mp3_queue, config_.max_attempts),
      failed_retries_(publisher_, config_.topology.notification_failed_queue, config_.max_attempts),
      webhook_retries_(publisher_, config_.topology.notification_webhook_queue, config_.webhook_max_attempts),
      account_retries_(publisher_, config_.topology.notification_account_queue, config_.max_attempts),
      receivers_(config_.receiver_rest),
      digests_(pool_),
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
    consume(topology.notification_account_queue, &Notifier::handle_account);
    // Several deliveries at once, one per receiver (ReceiverGate): a slow or dead receiver holds one worker at most.
    for (int i = 0; i < config_.webhook_workers; ++i)
        consume(topology.notification_webhook_queue, &Notifier::handle_webhook);
    digest_thread_ = std::jthread([this](std::stop_token stop) { run_digests(stop); });
}

void Notifier::stop() {
    for (auto& c : consumers_) c->stop();
    consumers_.clear();
    digest_thread_ = {};  // asks it to stop, and joins it
}

http::ReadinessCheck Notifier::readiness() {
    return [this]() -> Check {
        if (!schema_.ready()) return std::string("database schema not ready");
        if (auto ok = pool_.check(); !ok) return "database: " + ok.error();
        if (auto ok = publisher_.check(); !ok) return ok;
        for (const auto& c : consumers_) {
            if (!c->connected()) return std::string("not consuming from RabbitMQ");
        }
        return Ok{};
    };
}

Outcome Notifier::handle_done(const amqp::Delivery& delivery) {
    auto parsed = messages::Mp3Ready::parse(delivery.body);
    if (!parsed) {
        log::error("invalid mp3 message dead-lettered",
                   {{"body", delivery.body.substr(0, 500)}, {"problem", parsed.error().describe()}});
        emails_.with({"invalid_message"}).inc();
        return Outcome::dead_letter;
    }
    const messages::Mp3Ready& m = parsed.value();
    Notice n;
    n.done = true;
    n.job_id = m.job_id;  // the original's message has mp3_fid and username only: here the MP3 is named after its job
    n.key = m.job_id;
    n.recipient = m.username;
    n.filename = m.filename;
    n.callback_url = m.callback_url.value_or("");
    n.trace_id = m.trace_id.empty() ? delivery.correlation_id : m.trace_id;
    n.mp3_size = m.mp3_size;
    n.duration_seconds = m.duration_seconds;
    n.parts = m.parts;
    n.attempt = m.attempt;
    n.next_body = messages::next_attempt(m);
    if (!ticketed(n, m.ticket, delivery)) return Outcome::dead_letter;
    return notify(n, delivery, mp3_retries_);
}

Outcome Notifier::handle_failed(const amqp::Delivery& delivery) {
    auto parsed = messages::StatusEvent::parse(delivery.body);
    if (!parsed || parsed.value().status != messages::JobState::failed) {
        log::error("invalid failed-job event dead-lettered",
                   {{"body", delivery.body.substr(0, 500)},
                    {"problem", parsed ? "status: must be failed" : parsed.error().describe()}});
        emails_.with({"invalid_message"}).inc();
        return Outcome::dead_letter;
    }
    const messages::StatusEvent& e = parsed.value();
    Notice n;
    n.job_id = e.job_id;
    n.key = e.job_id + ".failed." + std::to_string(e.at);  // the same in a redelivery, another for a new failure
    n.recipient = e.username;
    n.filename = e.filename;
    n.error = e.error.value_or("");
    n.callback_url = e.callback_url.value_or("");
    n.trace_id = e.trace_id.empty() ? delivery.correlation_id : e.trace_id;
    n.attempt = e.attempt;
    n.next_body = messages::next_attempt(e);
    if (!ticketed(n, e.ticket, delivery)) return Outcome::dead_letter;
    return notify(n, delivery, failed_retries_);
}

bool Notifier::ticketed(const Notice& n, const std::optional<std::string>& ticket, const amqp::Delivery& delivery) {
    if (config_.job_ticket_secret.empty()) return true;
    std::optional<std::string> callback;
    if (!n.callback_url.empty()) callback = n.callback_url;
    if (messages::valid_job_ticket(config_.job_ticket_secret, ticket, n.job_id, n.recipient, callback)) return true;
    // Only the gateway can make a ticket: a message without a valid one was not written for a job of that owner
    // (a converter that was taken over, or a publisher from outside). Nobody is mailed or called.
    log::error("job message without a valid ticket dead-lettered: nobody mailed or called",
               {{"job_id", n.job_id},
                {"trace_id", n.trace_id},
                {"ticket", ticket ? "wrong" : "missing"},
                {"body", delivery.body.substr(0, 500)}});
    emails_.with({"unticketed"}).inc();
    return false;
}

void Notifier::queue_webhook(const Notice& n) {
    if (n.callback_url.empty() || store_.state(n.key, Channel::webhook)) return;  // none, or queued before
    messages::WebhookTask task;
    task.job_id = n.job_id;
    task.status = n.done ? messages::JobState::done : messages::JobState::failed;
    if (n.done) {
        task.mp3_url = download_url(n.job_id);
        if (auto until = kept_until(config_.retention)) task.expires_at = format_utc(*until, "%Y-%m-%dT%H:%M:%SZ");
    }
    if (!n.done) task.error = n.error;
    task.callback_url = n.callback_url;
    task.trace_id = n.trace_id;
    task.username = n.recipient;  // whose secrets sign it
    task.key = n.key;
    publisher_.publish(amqp::names::inbox(config_.topology.notification_webhook_queue),
                       config_.topology.notification_webhook_queue,
                       {.body = task.to_body(), .message_id = n.job_id, .correlation_id = n.trace_id});
    store_.set(n.key, Channel::webhook, "queued");
}

std::string Notifier::download_url(const std::string& job_id) const {
    // Signed when it can be: a mail's link is opened by a browser that has no token.
    if (config_.job_ticket_secret.empty()) return config_.public_base_url + "/jobs/" + job_id + "/mp3";
    return config_.public_base_url + messages::mail_link_path(config_.job_ticket_secret, job_id);
}

// When the gateway deletes what was just made (it counts from when it recorded the job's end, a moment later).
std::optional<std::chrono::system_clock::time_point> Notifier::kept_until(std::chrono::seconds retention) {
    if (retention.count() == 0) return std::nullopt;
    return std::chrono::system_clock::now() + retention;
}

Outcome Notifier::notify(const Notice& n, const amqp::Delivery& delivery, amqp::RetryPolicy& retries) {
    // The database and the broker being unavailable throw: the message is requeued and tried again later.
    if (!schema_.ready()) throw mysql::Error(mysql::Error::kLockTimeout, "database schema not ready");
    queue_webhook(n);  // first, and on its own queue: a failing webhook never holds back the mail

    Outgoing mail{.key = n.key,
                  .recipient = n.recipient,
                  .compose =
                      [&] {
                          std::string web_url = config_.public_base_url + "/#job=" + n.job_id;
                          if (n.done) {
                              return done_mail({.job_id = n.job_id,
                                                .filename = n.filename,
                                                .download_url = download_url(n.job_id),
                                                .download_needs_sign_in = config_.job_ticket_secret.empty(),
                                                .web_url = web_url,
                                                .expires_at = kept_until(config_.retention),
                                                .mp3_size = n.mp3_size,
                                                .duration_seconds = n.duration_seconds,
                                                .parts = n.parts},
                                               config_.smtp.from, n.recipient);
                          }
                          return failed_mail({.job_id = n.job_id,
                                              .occurrence = n.key.substr(n.job_id.size()),
                                              .filename = n.filename,
                                              .reason = n.error,
                                              .web_url = web_url,
                                              .upload_kept_until = kept_until(config_.source_retention)},
                                             config_.smtp.from, n.recipient);
                      },
                  .kind = n.done ? "done" : "failed",
                  .trace_id = n.trace_id,
                  .attempt = n.attempt,
                  .next_body = n.next_body,
                  .job = DigestItem{.key = n.key,
                                    .recipient = n.recipient,
                                    .job_id = n.job_id,
                                    .done = n.done,
                                    .filename = n.filename,
                                    .reason = n.error,
                                    .mp3_size = n.mp3_size,
                                    .duration_seconds = n.duration_seconds,
                                    .parts = n.parts}};
    return send_mail(mail, delivery, retries);
}

Outcome Notifier::handle_account(const amqp::Delivery& delivery) {
    auto parsed = messages::AccountMail::parse(delivery.body);
    if (!parsed) {
        log::error("invalid account mail dead-lettered",
                   {{"body", delivery.body.substr(0, 200)}, {"problem", parsed.error().describe()}});
        emails_.with({"invalid_message"}).inc();
        return Outcome::dead_letter;
    }
    if (!schema_.ready()) throw mysql::Error(mysql::Error::kLockTimeout, "database schema not ready");
    const messages::AccountMail& m = parsed.value();
    AccountNotice notice{.kind = m.kind,
                         .mail_id = m.mail_id,
                         .public_base_url = config_.public_base_url,
                         .token = m.token,
                         .expires_at = std::chrono::system_clock::time_point(std::chrono::seconds(m.expires_at))};
    Outgoing mail{.key = m.mail_id,
                  .recipient = m.email,
                  .compose = [&] { return account_mail(notice, config_.smtp.from, m.email); },
                  .kind = std::string(messages::to_string(m.kind)),
                  .trace_id = m.trace_id.empty() ? delivery.correlation_id : m.trace_id,
                  .attempt = m.attempt,
                  .next_body = messages::next_attempt(m)};
    return send_mail(mail, delivery, account_retries_);
}

Outcome Notifier::send_mail(const Outgoing& n, const amqp::Delivery& delivery, amqp::RetryPolicy& retries) {
    switch (store_.claim(n.key, Channel::email, config_.sending_lease)) {
        case NotificationStore::Claim::settled:
            log::info("already mailed: nothing sent", {{"key", n.key}, {"kind", n.kind}});
            emails_.with({"duplicate"}).inc();
            return Outcome::ack;
        case NotificationStore::Claim::busy:
            log::info("another delivery is sending this mail: looking again later", {{"key", n.key}});
            emails_.with({"busy"}).inc();
            return retries.later(delivery);
        case NotificationStore::Claim::claimed:
            break;
    }
    if (!is_plausible_address(n.recipient)) {
        std::string why = n.recipient.empty() ? "no recipient" : "the user name is not an e-mail address";
        log::warn("no e-mail for this", {{"key", n.key}, {"kind", n.kind}, {"reason", why}});
        store_.set(n.key, Channel::email, "failed", why);
        emails_.with({"no_address"}).inc();
        return Outcome::ack;
    }
    std::optional<Unsubscribe> unsubscribe;
    if (n.job) {
        auto preferences = owner_preferences(n.recipient);
        if (!preferences) {
            const Failure& failure = preferences.error();
            if (failure.transient()) return retry_mail(n, delivery, retries, failure.detail);
            store_.set(n.key, Channel::email, "failed", failure.detail);
            emails_.with({"no_owner"}).inc();
            log::warn("no e-mail for this", {{"key", n.key}, {"kind", n.kind}, {"reason", failure.detail}});
            return Outcome::ack;
        }
        switch (preferences.value().job_mails) {
            case messages::JobMails::off:
                store_.set(n.key, Channel::email, "skipped", "the owner turned job e-mails off");
                emails_.with({"opted_out"}).inc();
                log::info("no e-mail: the owner turned job e-mails off", {{"key", n.key}, {"kind", n.kind}});
                return Outcome::ack;
            case messages::JobMails::summary:
                digests_.add(*n.job);  // at most once per key
                store_.set(n.key, Channel::email, "summarized");
                emails_.with({"summarized"}).inc();
                log::info("kept for the owner's summary mail", {{"key", n.key}, {"kind", n.kind}});
                return Outcome::ack;
            case messages::JobMails::each:
                unsubscribe = unsubscribe_links(preferences.value());
                break;
        }
    }
    Mail mail = n.compose();
    if (unsubscribe) add_unsubscribe(mail, *unsubscribe);
    // Claimed ("sending") before sending: a crash between sending and recording it resends (with the same
    // Message-ID) once the lease has run out, rather than loses the mail.
    auto started = std::chrono::steady_clock::now();
    SendResult result = smtp_.send(n.recipient, render(mail, "mp3c-" + crypto::random_hex(12)));
    smtp_seconds_.with({}).observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (result) {
        store_.set(n.key, Channel::email, "sent");
        emails_.with({"sent"}).inc();
        log::info("e-mail sent", {{"key", n.key}, {"kind", n.kind}, {"trace_id", n.trace_id}});
        return Outcome::ack;
    }
    const Failure& failure = result.error();
    if (!failure.transient()) {
        store_.set(n.key, Channel::email, "failed", failure.detail);
        emails_.with({"refused"}).inc();
        log::warn("the SMTP server refused the e-mail for good", {{"key", n.key}, {"error", failure.detail}});
        return Outcome::ack;
    }
    return retry_mail(n, delivery, retries, failure.detail);
}

Outcome Notifier::retry_mail(const Outgoing& n, const amqp::Delivery& delivery, amqp::RetryPolicy& retries,
                             const std::string& detail) {
    log::warn("e-mail not sent", {{"key", n.key}, {"attempt", n.attempt}, {"error", detail}});
    store_.set(n.key, Channel::email, "queued", detail);  // released: the retry claims it again
    if (retries.exhausted(n.attempt)) {
        log::error("giving up after the last attempt: dead-lettered", {{"key", n.key}, {"attempt", n.attempt}});
        store_.set(n.key, Channel::email, "failed",
                   "gave up after " + std::to_string(n.attempt) + " attempts: " + detail);
        emails_.with({"gave_up"}).inc();
        return Outcome::dead_letter;
    }
    emails_.with({"retried"}).inc();
    return retries.retry(delivery, n.attempt, n.next_body);
}

Unsubscribe Notifier::unsubscribe_links(const messages::MailPreferences& preferences) const {
    const std::string token = outbound::query_escape(preferences.unsubscribe_token);
    return {.one_click_url = config_.public_base_url + "/unsubscribe?token=" + token,
            .page_url = config_.public_base_url + "/#unsubscribe=" + token,
            .summary = preferences.job_mails == messages::JobMails::summary};
}

void Notifier::run_digests(std::stop_token stop) {
    const auto poll = std::clamp<std::chrono::seconds>(config_.digest_quiet / 4, 1s, 15s);
    while (!stop.stop_requested()) {
        {
            std::unique_lock lock(digest_mutex_);
            digest_wake_.wait_for(lock, stop, poll, [] { return false; });
        }
        if (stop.stop_requested() || !schema_.ready()) continue;
        try {
            digests_.close_batches(config_.digest_quiet, config_.digest_max_wait);
            for (const auto& id : digests_.due()) {
                if (stop.stop_requested()) break;
                send_digest(id);
            }
        } catch (const std::exception& e) {
            // The database or auth is away: the digests wait in the database for the next round.
            log::warn("summary mails: this round failed", {{"error", e.what()}});
        }
    }
}

void Notifier::send_digest(const std::string& digest_id) {
    switch (store_.claim(digest_id, Channel::email, config_.sending_lease)) {
        case NotificationStore::Claim::settled:
            digests_.remove(digest_id);  // sent before its items could be removed
            return;
        case NotificationStore::Claim::busy:
            return;  // another replica sends it now
        case NotificationStore::Claim::claimed:
            break;
    }
    auto digest = digests_.load(digest_id);
    if (!digest) {
        store_.set(digest_id, Channel::email, "failed", "no items");
        return;
    }
    auto give_up = [&](const std::string& state, const std::string& detail, const char* result) {
        store_.set(digest_id, Channel::email, state, detail);
        digests_.remove(digest_id);
        emails_.with({result}).inc();
    };
    auto later = [&](const std::string& detail) {
        if (digest->attempts + 1 >= config_.max_attempts) {
            log::error("summary mail: giving up after the last attempt",
                       {{"digest_id", digest_id}, {"jobs", digest->items.size()}, {"error", detail}});
            return give_up("failed", "gave up after " + std::to_string(digest->attempts + 1) + " attempts: " + detail,
                           "gave_up");
        }
        log::warn("summary mail not sent",
                  {{"digest_id", digest_id}, {"attempt", digest->attempts + 1}, {"error", detail}});
        store_.set(digest_id, Channel::email, "queued", detail);
        digests_.postpone(digest_id, std::min<std::chrono::seconds>(600s, 30s * (1 << std::min(digest->attempts, 5))));
        emails_.with({"retried"}).inc();
    };
    auto preferences = owner_preferences(digest->recipient);
    if (!preferences) {
        if (preferences.error().transient()) return later(preferences.error().detail);
        return give_up("failed", preferences.error().detail, "no_owner");
    }
    if (preferences.value().job_mails == messages::JobMails::off) {
        return give_up("skipped", "the owner turned job e-mails off", "opted_out");
    }
    JobSummary summary{.digest_id = digest_id,
                       .entries = {},
                       .download_needs_sign_in = config_.job_ticket_secret.empty(),
                       .web_url = config_.public_base_url + "/",
                       .expires_at = kept_until(config_.retention)};
    for (const auto& item : digest->items) {
        summary.entries.push_back({.job_id = item.job_id,
                                   .filename = item.filename,
                                   .done = item.done,
                                   .reason = item.reason,
                                   .download_url = item.done ? download_url(item.job_id) : "",
                                   .mp3_size = item.mp3_size,
                                   .duration_seconds = item.duration_seconds,
                                   .parts = item.parts});
    }
    Mail mail = summary_mail(summary, config_.smtp.from, digest->recipient);
    auto links = unsubscribe_links(preferences.value());
    links.summary = true;
    add_unsubscribe(mail, links);
    auto started = std::chrono::steady_clock::now();
    SendResult result = smtp_.send(digest->recipient, render(mail, "mp3c-" + crypto::random_hex(12)));
    smtp_seconds_.with({}).observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (result) {
        store_.set(digest_id, Channel::email, "sent");
        digests_.remove(digest_id);
        emails_.with({"sent"}).inc();
        log::info("summary e-mail sent", {{"digest_id", digest_id}, {"jobs", digest->items.size()}});
        return;
    }
    if (!result.error().transient()) {
        log::warn("the SMTP server refused the summary e-mail for good",
                  {{"digest_id", digest_id}, {"error", result.error().detail}});
        return give_up("failed", result.error().detail, "refused");
    }
    later(result.error().detail);
}

Outcome Notifier::handle_webhook(const amqp::Delivery& delivery) {
    auto parsed = messages::WebhookTask::parse(delivery.body);
    if (!parsed) {
        log::error("invalid webhook task dead-lettered",
                   {{"body", delivery.body.substr(0, 500)}, {"problem", parsed.error().describe()}});
        webhooks_.with({"invalid_message"}).inc();
        return Outcome::dead_letter;
    }
    const messages::WebhookTask& task = parsed.value();
    if (!schema_.ready()) throw mysql::Error(mysql::Error::kLockTimeout, "database schema not ready");
    // One delivery per receiver at a time, none to a receiver resting after a failure: the others go on meanwhile.
    const std::string receiver = receiver_of(task.callback_url);
    if (!receivers_.enter(receiver, ReceiverGate::Clock::now())) {
        webhooks_.with({"receiver_busy"}).inc();
        return webhook_retries_.later(delivery);
    }
    bool receiver_failed = false;
    struct Leave {
        ReceiverGate& gate;
        const std::string& receiver;
        const bool& failed;
        ~Leave() { gate.leave(receiver, failed, ReceiverGate::Clock::now()); }
    } leave{receivers_, receiver, receiver_failed};
    return deliver(task, delivery, receiver_failed);
}

Result<std::string, Failure> Notifier::ask_auth(const std::string& path, const std::string& username) {
    outbound::Options options;
    options.connect_timeout = 5s;
    options.timeout = 5s;
    outbound::Transfer transfer(config_.auth_url + path + outbound::query_escape(username), options);
    std::string body;
    transfer.collect_body(body, 64 * 1024);
    auto status = transfer.perform();
    auto failed = [](mp3c::Outcome outcome, std::string detail) {
        Failure f;
        f.outcome = outcome;
        f.detail = std::move(detail);
        return f;
    };
    if (!status) return failed(mp3c::Outcome::transient, "auth unavailable: " + status.error().detail);
    if (status.value() == 404) {
        // Only auth's own "no such user" is final: a 404 of an auth without this endpoint (an older release, during
        // an upgrade) is tried again later.
        auto answer = nlohmann::json::parse(body, nullptr, false);
        if (answer.is_object() && answer.value("error", "") == "unknown_user") {
            return failed(mp3c::Outcome::permanent, "the job's owner no longer exists");
        }
        return failed(mp3c::Outcome::transient,
                      "auth does not serve " + path.substr(0, path.find('?')) + " (an older release?)");
    }
    if (status.value() != 200) {
        return failed(mp3c::Outcome::transient,
                      "auth answered " + std::to_string(status.value()) + " for " + path.substr(0, path.find('?')));
    }
    return body;
}

Result<std::vector<std::string>, Failure> Notifier::owner_secrets(const std::string& username) {
    auto body = ask_auth("/webhook-secrets?username=", username);
    if (!body) return body.error();
    auto secrets = messages::WebhookSecrets::parse(body.value());
    if (!secrets || secrets.value().secrets.empty()) {
        Failure f;
        f.outcome = mp3c::Outcome::transient;
        f.detail = "auth's secrets unreadable";
        return f;
    }
    return std::move(secrets.value().secrets);
}

Result<messages::MailPreferences, Failure> Notifier::owner_preferences(const std::string& username) {
    auto body = ask_auth("/mail-preferences?username=", username);
    if (!body) return body.error();
    auto preferences = messages::MailPreferences::parse(body.value());
    if (!preferences) {
        Failure f;
        f.outcome = mp3c::Outcome::transient;
        f.detail = "auth's mail preferences unreadable: " + preferences.error().describe();
        return f;
    }
    return std::move(preferences).value();
}

Outcome Notifier::deliver(const messages::WebhookTask& task, const amqp::Delivery& delivery, bool& receiver_failed) {
    switch (store_.claim(task.delivery_key(), Channel::webhook, config_.sending_lease)) {
        case NotificationStore::Claim::settled:
            webhooks_.with({"duplicate"}).inc();
            return Outcome::ack;
        case NotificationStore::Claim::busy:
            webhooks_.with({"busy"}).inc();
            return webhook_retries_.later(delivery);
        case NotificationStore::Claim::claimed:
            break;
    }
    WebhookSigning signing{.id = task.delivery_key(), .timestamp = unix_seconds(), .secrets = {}};
    bool called = false;  // the receiver was called (not stopped before, at auth)
    WebhookResult result = [&]() -> WebhookResult {
        if (task.username.empty() && config_.webhook.secret.empty()) {
            // A task queued before webhooks were signed per user, with no global secret to sign it.
            WebhookFailure f;
            f.outcome = mp3c::Outcome::permanent;
            f.detail = "the task names no owner whose secret could sign it";
            return f;
        }
        if (!task.username.empty()) {
            auto secrets = owner_secrets(task.username);
            if (!secrets) {
                WebhookFailure f;
                f.outcome = secrets.error().outcome;
                f.detail = secrets.error().detail;
                return f;
            }
            signing.secrets = std::move(secrets.value());
        }
        called = true;
        return deliver_webhook(config_.webhook, task.callback_url, task.payload(), signing);
    }();
    if (result) {
        store_.set(task.delivery_key(), Channel::webhook, "sent");
        webhooks_.with({"delivered"}).inc();
        log::info("webhook delivered", {{"job_id", task.job_id}, {"status", result.value()}});
        return Outcome::ack;
    }
    const WebhookFailure& failure = result.error();
    if (!failure.transient()) {
        store_.set(task.delivery_key(), Channel::webhook, "failed", failure.detail);
        webhooks_.with({failure.address_refused ? "refused" : "rejected"}).inc();
        log::warn("webhook not delivered, for good", {{"job_id", task.job_id}, {"error", failure.detail}});
        return Outcome::ack;
    }
    log::warn("webhook not delivered", {{"job_id", task.job_id}, {"attempt", task.attempt}, {"error", failure.detail}});
    receiver_failed = called;
    store_.set(task.delivery_key(), Channel::webhook, "queued", failure.detail);  // released: the retry claims it again
    if (webhook_retries_.exhausted(task.attempt)) {
        log::error("giving up after the last attempt: dead-lettered",
                   {{"job_id", task.job_id}, {"attempt", task.attempt}});
        store_.set(task.delivery_key(), Channel::webhook, "failed", "gave up: " + failure.detail);
        webhooks_.with({"gave_up"}).inc();
        return Outcome::dead_letter;
    }
    webhooks_.with({"retried"}).inc();
    return webhook_retries_.retry(delivery, task.attempt, messages::next_attempt(task));
}

}  // namespace mp3c::notification
