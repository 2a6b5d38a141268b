#pragma once

// The notification worker in-process against the harness's real MariaDB, RabbitMQ and SMTP server (aiosmtpd), with a
// private AMQP namespace and a recipient address of its own per test, so tests can run side by side.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

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
            if (head.compare(i, 3, "\r\n ") == 0) {
                i += 2;
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
          topology_(amqp::Topology::with_prefix("nt" + crypto::random_hex(4) + ".")),
          recipient_("user-" + crypto::random_hex(4) + "@example.com") {}

    ~NotificationTest() override { notifier_.reset(); }

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
        return c;
    }

    void start(std::function<void(NotifierConfig&)> adjust = nullptr) {
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
    amqp::Topology topology_;
    std::string recipient_;
    std::unique_ptr<Notifier> notifier_;
};

// A webhook receiver on 127.0.0.1 that records what it gets and answers with a chosen status.
class WebhookReceiver {
  public:
    explicit WebhookReceiver(int status = 204) : status_(status) {
        http::Router router;
        router.add("POST", "/hook", [this](http::Request& r) {
            std::lock_guard lock(mutex_);
            calls_.push_back({r.body, std::string(r.headers.get("X-Mp3converter-Signature").value_or(""))});
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
        std::string signature;
    };
    std::vector<Call> calls() {
        std::lock_guard lock(mutex_);
        return calls_;
    }

  private:
    int status_;
    std::mutex mutex_;
    std::vector<Call> calls_;
    std::unique_ptr<http::Server> server_;
    uint16_t port_ = 0;
};

}  // namespace mp3c::notification::test
