#pragma once

// The notification worker in-process against the harness's real MariaDB, RabbitMQ and SMTP server (aiosmtpd), with a
// private AMQP namespace and a recipient address of its own per test, so tests can run side by side.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "auth_app.hpp"
#include "auth_test_config.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/http.hpp"
#include "mp3c/storage.hpp"
#include "mp3c/testing/eventually.hpp"
#include "mp3c/testing/servers.hpp"
#include "notifier.hpp"

namespace mp3c::notification::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::eventually;

inline std::string env_or_throw(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) throw std::runtime_error(std::string(name) + " not set: run under scripts/with-servers");
    return value;
}

struct ReceivedMail {
    nlohmann::json envelope;  // mail_from, rcpt_tos, authenticated_as
    std::string raw;

    // A header's value, unfolded; "" when absent.
    std::string header(const std::string& name) const {
        size_t end_of_headers = raw.find("\r\n\r\n");
        std::string head = raw.substr(0, end_of_headers);
        std::string unfolded;
        for (size_t i = 0; i < head.size(); ++i) {
            if (head.compare(i, 3, "\r\n ") == 0) {  // unfolding removes the line break, not the space (RFC 5322)
                i += 1;
                continue;
            }
            unfolded += head[i];
        }
        size_t at = 0;
        while (at < unfolded.size()) {
            size_t end = unfolded.find("\r\n", at);
            std::string line = unfolded.substr(at, end == std::string::npos ? std::string::npos : end - at);
            if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 && line[name.size()] == ':') {
                return line.substr(name.size() + 2);
            }
            if (end == std::string::npos) break;
            at = end + 2;
        }
        return "";
    }

    // The decoded body of the part with this content type.
    std::string part(const std::string& content_type) const {
        size_t at = raw.find("Content-Type: " + content_type);
        if (at == std::string::npos) return "";
        size_t start = raw.find("\r\n\r\n", at) + 4;
        size_t end = raw.find("\r\n--", start);
        std::string encoded;
        for (char c : raw.substr(start, end - start))
            if (c != '\r' && c != '\n') encoded += c;
        return crypto::base64_decode(encoded).value_or("<not base64>");
    }
};

// RFC 2047 "B" words back to text.
inline std::string decode_words(const std::string& value) {
    if (value.find("=?UTF-8?B?") == std::string::npos) return value;
    std::string out;
    size_t at = 0;
    while ((at = value.find("=?UTF-8?B?", at)) != std::string::npos) {
        size_t end = value.find("?=", at + 10);
        out += crypto::base64_decode(value.substr(at + 10, end - at - 10)).value_or("?");
        at = end + 2;
    }
    return out;
}

class NotificationTest : public ::testing::Test {
  protected:
    NotificationTest()
        : server_(testing::mysql_server()),
          database_(server_),
          auth_database_(server_),
          topology_(amqp::Topology::with_prefix("nt" + crypto::random_hex(4) + ".")),
          recipient_("user-" + crypto::random_hex(4) + "@example.com") {}

    ~NotificationTest() override {
        notifier_.reset();
        auth_http_.reset();
        auth_.reset();
    }

    // The real auth service, in-process on its own database, with the test's recipient as a user: webhooks are
    // signed with the secrets it keeps for each user.
    void start_auth() {
        if (auth_) return;
        auto c = auth::test::auth_test_config(auth_database_.options(), "notification-test-jwt-secret-0123456789ab");
        c.amqp.url = env_or_throw("MP3C_TEST_AMQP_URL");
        c.topology = topology_;
        auth_ = std::make_unique<auth::AuthApp>(c);
        ASSERT_TRUE(auth_->schema().wait_ready(30s));
        auth_http_ = std::make_unique<http::Server>(c.server, auth_->router(), auth_->registry(), auth_->readiness());
        auth_port_ = auth_http_->start();
        add_user(recipient_);
    }

    void add_user(const std::string& email) {
        mysql::Pool pool(auth_database_.options());
        auth::UserStore users(pool);
        ASSERT_TRUE(users.create(email, "$argon2id$unused", auth::Role::user).ok());
    }

    // The secrets that sign the user's webhooks now, as auth gives them to the notification service.
    std::vector<std::string> webhook_secrets(const std::string& user) {
        mysql::Pool pool(auth_database_.options());
        auth::UserStore users(pool);
        auth::WebhookSecretStore secrets(pool);
        return secrets.signing(static_cast<uint64_t>(users.find_by_email(user)->id));
    }
    void rotate_webhook_secret(const std::string& user) {
        mysql::Pool pool(auth_database_.options());
        auth::UserStore users(pool);
        auth::WebhookSecretStore(pool).rotate(static_cast<uint64_t>(users.find_by_email(user)->id), 3600s);
    }

    NotifierConfig config() {
        NotifierConfig c;
        c.amqp.url = env_or_throw("MP3C_TEST_AMQP_URL");
        c.amqp.heartbeat = 5s;
        c.topology = topology_;
        c.mysql = database_.options();
        c.smtp.host = env_or_throw("MP3C_TEST_SMTP_HOST");
        c.smtp.port = static_cast<uint16_t>(std::stoi(env_or_throw("MP3C_TEST_SMTP_PORT")));
        c.smtp.tls = SmtpOptions::Tls::none;
        c.smtp.username = env_or_throw("MP3C_TEST_SMTP_USER");
        c.smtp.password = env_or_throw("MP3C_TEST_SMTP_PASSWORD");
        c.smtp.from = "mp3converter <noreply@mp3converter.com>";
        c.smtp.connect_timeout = 2s;
        c.smtp.timeout = 10s;
        c.public_base_url = "https://mp3converter.com";
        c.webhook.secret = "webhook-test-secret";
        c.webhook.allow_private = true;  // the test receiver listens on 127.0.0.1
        c.webhook.timeout = 5s;
        c.auth_url = "http://127.0.0.1:" + std::to_string(auth_port_);
        return c;
    }

    void start(std::function<void(NotifierConfig&)> adjust = nullptr) {
        start_auth();
        auto c = config();
        if (adjust) adjust(c);
        notifier_ = std::make_unique<Notifier>(c);
        ASSERT_TRUE(eventually([&] { return notifier_->schema_ready(); }));
        notifier_->start();
        ASSERT_TRUE(eventually([&] { return notifier_->readiness()().ok(); })) << [&] {
            auto ready = notifier_->readiness()();
            return ready ? std::string("ready by now") : ready.error();
        }();
    }

    amqp::Options amqp_options() {
        amqp::Options o;
        o.url = env_or_throw("MP3C_TEST_AMQP_URL");
        return o;
    }

    void publish(const std::string& exchange, const std::string& routing_key, const std::string& body,
                 const std::string& message_id = {}) {
        amqp::Publisher(amqp_options(), topology_)
            .publish(exchange, routing_key, {.body = body, .message_id = message_id});
    }

    nlohmann::json done_message(const std::string& job_id, const std::string& filename = "holiday.mp4") {
        return {{"video_fid", storage::new_id()},
                {"mp3_fid", job_id},
                {"username", recipient_},
                {"job_id", job_id},
                {"user_id", "7"},
                {"filename", filename},
                {"mp3_size", 4'600'000},
                {"duration_seconds", 187},
                {"trace_id", "trace-" + job_id}};
    }

    nlohmann::json failed_event(const std::string& job_id, const std::string& error) {
        return {{"job_id", job_id},       {"status", "failed"},  {"error", error},  {"reason", "no_audio"},
                {"username", recipient_}, {"filename", "x.mp4"}, {"trace_id", "t"}, {"at", 1}};
    }

    // Mail received for this test's recipient, oldest first.
    std::vector<ReceivedMail> mails() const { return mails_to(recipient_); }

    static std::vector<ReceivedMail> mails_to(const std::string& recipient) {
        std::vector<ReceivedMail> out;
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(env_or_throw("MP3C_TEST_SMTP_MAILDIR"))) {
            if (e.path().extension() == ".eml") files.push_back(e.path());
        }
        std::sort(files.begin(), files.end());
        for (const auto& path : files) {
            auto read = [](const fs::path& p) {
                std::ifstream in(p, std::ios::binary);
                return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            };
            auto envelope = nlohmann::json::parse(read(fs::path(path).replace_extension(".json")), nullptr, false);
            if (envelope.is_discarded() || !envelope.contains("rcpt_tos")) continue;
            bool ours = false;
            for (const auto& r : envelope["rcpt_tos"]) ours = ours || r == recipient;
            if (ours) out.push_back({envelope, read(path)});
        }
        return out;
    }

    std::string metric(const std::string& line_prefix) const {
        auto text = notifier_->registry()->render();
        auto at = text.find(line_prefix + " ");
        if (at == std::string::npos) return "0";
        auto end = text.find('\n', at);
        return text.substr(at + line_prefix.size() + 1, end - at - line_prefix.size() - 1);
    }

    std::vector<std::string> dead(const std::string& queue) {
        amqp::Connection c(amqp_options());
        std::vector<std::string> out;
        c.consume(amqp::names::dead_queue(queue), 100);
        while (auto d = c.next(500ms)) {
            out.push_back(d->body);
            c.ack(d->delivery_tag);
        }
        return out;
    }

    testing::MysqlServer server_;
    testing::TemporaryDatabase database_;
    testing::TemporaryDatabase auth_database_;
    amqp::Topology topology_;
    std::string recipient_;
    std::unique_ptr<Notifier> notifier_;
    std::unique_ptr<auth::AuthApp> auth_;
    std::unique_ptr<http::Server> auth_http_;
    uint16_t auth_port_ = 0;
};

// A webhook receiver on 127.0.0.1 that records what it gets and answers with a chosen status.
class WebhookReceiver {
  public:
    explicit WebhookReceiver(int status = 204) : status_(status) {
        http::Router router;
        router.add("POST", "/hook", [this](http::Request& r) {
            std::unique_lock lock(mutex_);
            auto header = [&](const char* name) { return std::string(r.headers.get(name).value_or("")); };
            calls_.push_back({r.body, header("X-Mp3converter-Signature"), header("webhook-id"),
                              header("webhook-timestamp"), header("webhook-signature")});
            ++in_flight_;
            max_in_flight_ = std::max(max_in_flight_, in_flight_);
            changed_.notify_all();
            changed_.wait(lock, [&] { return !holding_; });  // a receiver that hangs until released
            --in_flight_;
            return http::Response::json(status_, nlohmann::json::object());
        });
        http::ServerOptions o;
        o.bind_address = "127.0.0.1";
        o.port = 0;
        server_ = std::make_unique<http::Server>(o, std::move(router), std::make_shared<metrics::Registry>());
        port_ = server_->start();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
    struct Call {
        std::string body;
        std::string signature;                  // the deprecated X-Mp3converter-Signature
        std::string id, timestamp, signatures;  // Standard Webhooks
    };
    std::vector<Call> calls() {
        std::lock_guard lock(mutex_);
        return calls_;
    }
    // While held, every call waits (a receiver that hangs); release() lets them answer.
    void hold() {
        std::lock_guard lock(mutex_);
        holding_ = true;
    }
    void release() {
        std::lock_guard lock(mutex_);
        holding_ = false;
        changed_.notify_all();
    }
    int max_in_flight() {
        std::lock_guard lock(mutex_);
        return max_in_flight_;
    }
    ~WebhookReceiver() {
        release();
        server_.reset();
    }

  private:
    int status_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool holding_ = false;
    int in_flight_ = 0, max_in_flight_ = 0;
    std::vector<Call> calls_;
    std::unique_ptr<http::Server> server_;
    uint16_t port_ = 0;
};

}  // namespace mp3c::notification::test
