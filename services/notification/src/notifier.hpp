#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "digest_store.hpp"
#include "mail.hpp"
#include "mp3c/amqp.hpp"
#include "mp3c/config.hpp"
#include "mp3c/http.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/metrics.hpp"
#include "mp3c/mysql.hpp"
#include "notification_store.hpp"
#include "smtp.hpp"
#include "webhook.hpp"

namespace mp3c::notification {

struct NotifierConfig {
    amqp::Options amqp;
    amqp::Topology topology;
    mysql::Options mysql;
    SmtpOptions smtp;
    WebhookOptions webhook;
    std::string public_base_url = "http://localhost:8080";  // download links: PUBLIC_BASE_URL + /jobs/{id}/mp3
    std::string auth_url = "http://127.0.0.1:5000";         // each user's webhook secrets: GET /webhook-secrets
    // JOB_TICKET_SECRET: when set, a finished or failed job's message must carry the gateway's ticket for the job,
    // its owner and its webhook (messages::job_ticket), or nobody is mailed or called.
    std::string job_ticket_secret;
    // RETENTION and SOURCE_RETENTION (the gateway's): the dates the mails give; zero: kept until deleted.
    std::chrono::seconds retention{0};
    std::chrono::seconds source_retention{0};
    int webhook_workers = 4;  // deliveries in flight; one per receiver at a time
    // A receiver that failed (no answer, 5xx, 429) gets no other delivery this long (ReceiverGate).
    std::chrono::milliseconds receiver_rest{std::chrono::seconds(5)};
    int max_attempts = 10;         // e-mail: transient failures retried this often (5 s, 30 s, then every 120 s)
    int webhook_max_attempts = 6;  // webhooks: the same delays
    // How long a job's "sending" record keeps other deliveries of it from sending too. Longer than one SMTP exchange
    // or webhook call can take, so only a sender that died loses it (its message then comes back and is sent).
    std::chrono::milliseconds sending_lease{std::chrono::seconds(100)};
    // Summary mails (job_mails "summary"): a batch ends when no job of it ended for digest_quiet; a batch that keeps
    // going is summed up every digest_max_wait.
    std::chrono::seconds digest_quiet{120};
    std::chrono::seconds digest_max_wait{1800};
    http::ServerOptions admin;  // /healthz, /readyz, /metrics
    log::Level log_level = log::Level::info;
};

// AMQP_*, MYSQL_* (database "notification"), SMTP_* (smtp.hpp), PUBLIC_BASE_URL, MAX_ATTEMPTS (10),
// AUTH_SVC_ADDRESS, JOB_TICKET_SECRET, WEBHOOK_WORKERS (4), WEBHOOK_SECRET (deprecated), WEBHOOK_ALLOW_PRIVATE (off),
// WEBHOOK_TIMEOUT (10s), WEBHOOK_MAX_ATTEMPTS (6), SENDING_LEASE (SMTP_CONNECT_TIMEOUT + SMTP_TIMEOUT + 30s, and longer
// than WEBHOOK_TIMEOUT), DIGEST_QUIET (2m), DIGEST_MAX_WAIT (30m), ADMIN_PORT (8082), LOG_LEVEL.
NotifierConfig load_notifier_config(config::Env& env);

// Consumes `mp3` (finished jobs) and `notification.failed` (failed jobs): one e-mail per job to its owner, and a
// webhook task on `notification.webhook` when the job has a callback URL; consumes `notification.webhook` to call
// them (signed with the owner's secrets, asked of auth), and `notification.account` for auth's account mails. Every
// message is acked only once its outcome is recorded (docs/messaging.md). A job mail follows its owner's choice, asked
// of auth: one per job with a one-click unsubscribe, none, or one summary per batch (sent by a thread of its own).
class Notifier {
  public:
    explicit Notifier(NotifierConfig config);
    ~Notifier();

    void start();
    // Stops taking messages; the ones in progress finish first.
    void stop();
    http::ReadinessCheck readiness();
    std::shared_ptr<metrics::Registry> registry() const { return registry_; }
    bool schema_ready() const { return schema_.ready(); }

    // One delivery of each queue (public for tests).
    amqp::Consumer::Outcome handle_done(const amqp::Delivery& delivery);
    amqp::Consumer::Outcome handle_failed(const amqp::Delivery& delivery);
    amqp::Consumer::Outcome handle_webhook(const amqp::Delivery& delivery);
    amqp::Consumer::Outcome handle_account(const amqp::Delivery& delivery);

  private:
    struct Notice;
    struct Outgoing;
    amqp::Consumer::Outcome notify(const Notice& notice, const amqp::Delivery& delivery, amqp::RetryPolicy& retries);
    // The MP3's link for a mail or webhook: signed (messages::mail_link_path) when JOB_TICKET_SECRET is set.
    std::string download_url(const std::string& job_id) const;
    static std::optional<std::chrono::system_clock::time_point> kept_until(std::chrono::seconds retention);
    // Sends one mail at most once per key (a job id or an account mail's id), retrying transient SMTP failures.
    amqp::Consumer::Outcome send_mail(const Outgoing& mail, const amqp::Delivery& delivery, amqp::RetryPolicy& retries);
    // Whether the job message's ticket is the gateway's (always, without JOB_TICKET_SECRET).
    bool ticketed(const Notice& n, const std::optional<std::string>& ticket, const amqp::Delivery& delivery);
    void queue_webhook(const Notice& notice);
    // receiver_failed: the receiver was called and failed transiently (it rests a while: ReceiverGate).
    amqp::Consumer::Outcome deliver(const messages::WebhookTask& task, const amqp::Delivery& delivery,
                                    bool& receiver_failed);
    // The secrets that sign the user's webhooks, asked of auth; a failure says whether asking again can help.
    Result<std::vector<std::string>, Failure> owner_secrets(const std::string& username);
    // How the user wants job mails, asked of auth; a failure says whether asking again can help.
    Result<messages::MailPreferences, Failure> owner_preferences(const std::string& username);
    // The body of auth's 200 answer to an internal question about a user (`path` ends in "?username=").
    Result<std::string, Failure> ask_auth(const std::string& path, const std::string& username);
    Unsubscribe unsubscribe_links(const messages::MailPreferences& preferences) const;
    // A mail not sent for a transient reason: tried again later (its message's delay tiers), or given up.
    amqp::Consumer::Outcome retry_mail(const Outgoing& mail, const amqp::Delivery& delivery, amqp::RetryPolicy& retries,
                                       const std::string& detail);
    // The summary mails' thread: closes ended batches and sends their digests, at most once each.
    void run_digests(std::stop_token stop);
    void send_digest(const std::string& digest_id);

    NotifierConfig config_;
    std::shared_ptr<metrics::Registry> registry_;
    mysql::Pool pool_;
    mysql::SchemaGuard schema_;
    NotificationStore store_;
    SmtpClient smtp_;
    amqp::Publisher publisher_;
    // Failed attempts wait in the queue's delay tiers; another delivery holding the job is looked at again later.
    amqp::RetryPolicy mp3_retries_;
    amqp::RetryPolicy failed_retries_;
    amqp::RetryPolicy webhook_retries_;
    amqp::RetryPolicy account_retries_;
    ReceiverGate receivers_;
    DigestStore digests_;
    std::vector<std::unique_ptr<amqp::Consumer>> consumers_;

    metrics::Family<metrics::Counter>& emails_;
    metrics::Family<metrics::Counter>& webhooks_;
    metrics::Family<metrics::Histogram>& smtp_seconds_;
    std::mutex digest_mutex_;
    std::condition_variable_any digest_wake_;
    std::jthread digest_thread_;  // last: it uses the members above until it is joined
};

}  // namespace mp3c::notification
