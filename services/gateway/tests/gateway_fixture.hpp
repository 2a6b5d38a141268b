#pragma once

// A gateway running in-process against the harness's real MariaDB and RabbitMQ and a filesystem store in a temporary
// directory, with a private AMQP namespace per test so tests can run side by side.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gateway_app.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/testing/eventually.hpp"
#include "mp3c/testing/http_client.hpp"
#include "mp3c/testing/servers.hpp"

namespace mp3c::gateway::test {

using namespace std::chrono_literals;
using testing::HttpResponse;

inline const std::string kSecret = "gateway-test-secret-0123456789abcdefghij";

using testing::eventually;

struct Part {
    std::string name;
    std::string value;
    std::optional<std::string> filename;
    std::string content_type = "application/octet-stream";
};

inline std::string multipart_body(const std::vector<Part>& parts, const std::string& boundary, bool close = true) {
    std::string body;
    for (const auto& p : parts) {
        body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + p.name + "\"";
        if (p.filename) body += "; filename=\"" + *p.filename + "\"\r\nContent-Type: " + p.content_type;
        body += "\r\n\r\n" + p.value + "\r\n";
    }
    if (close) body += "--" + boundary + "--\r\n";
    return body;
}

inline std::string pattern(size_t size, unsigned seed = 1) {
    std::string s(size, '\0');
    uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

class GatewayTest : public ::testing::Test {
  protected:
    GatewayTest()
        : server_(testing::mysql_server()),
          database_(server_),
          storage_dir_(std::filesystem::temp_directory_path() / ("mp3c-gateway-" + crypto::random_hex(6))),
          topology_(amqp::Topology::with_prefix("gw" + crypto::random_hex(4) + ".")) {}

    ~GatewayTest() override {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(storage_dir_, ignored);
    }

    GatewayConfig config() {
        GatewayConfig c;
        c.server.bind_address = "127.0.0.1";
        c.server.port = 0;
        c.mysql = database_.options();
        c.amqp.url = amqp_url();
        c.amqp.heartbeat = 5s;
        c.topology = topology_;
        c.jwt_secret = kSecret;
        c.auth_url = "http://127.0.0.1:1";  // nothing listens: tests that need auth start one
        c.auth_timeout = 2s;
        c.storage_url = "file://" + storage_dir_.string();
        c.max_upload_bytes = 8 << 20;
        c.max_queued_jobs = 1000;
        // Generous per-user limits: the tests of those limits set their own.
        c.max_uploads_per_user = 100;
        c.max_waiting_jobs_per_user = 1000;
        c.jobs_in_flight_per_user = 1000;
        return c;
    }

    static std::string amqp_url() {
        const char* url = std::getenv("MP3C_TEST_AMQP_URL");
        if (url == nullptr) throw std::runtime_error("MP3C_TEST_AMQP_URL not set: run under scripts/with-servers");
        return url;
    }

    void start(std::function<void(GatewayConfig&)> adjust = nullptr) {
        stop();
        auto c = config();
        if (adjust) adjust(c);
        app_ = std::make_unique<GatewayApp>(c);
        ASSERT_TRUE(app_->schema().wait_ready(30s));
        http_ = std::make_unique<http::Server>(c.server, app_->router(), app_->registry(), app_->readiness());
        port_ = http_->start();
        app_->start_consumers();
    }

    void stop() {
        http_.reset();
        app_.reset();
    }

    std::string token(uint64_t user_id, const std::string& email, bool admin = false) {
        token::Signer signer(kSecret);
        auto now = std::chrono::system_clock::now();
        return signer.issue({{"username", email}, {"sub", std::to_string(user_id)}, {"admin", admin}}, now + 1h, now);
    }

    std::map<std::string, std::string> bearer(const std::string& t) { return {{"Authorization", "Bearer " + t}}; }

    HttpResponse upload(const std::string& tok, const std::string& content, const std::string& filename = "clip.mp4",
                        std::vector<Part> extra = {}) {
        std::vector<Part> parts = std::move(extra);
        parts.push_back({"file", content, filename, "video/mp4"});
        std::string boundary = "----mp3cTestBoundary" + crypto::random_hex(4);
        auto headers = bearer(tok);
        headers["Content-Type"] = "multipart/form-data; boundary=" + boundary;
        return testing::http_request(port_, "POST", "/upload", headers, multipart_body(parts, boundary));
    }

    // A series' value in the gateway's /metrics (0 when absent).
    double metric(const std::string& series) {
        auto text = "\n" + testing::http_request(port_, "GET", "/metrics").body;
        auto at = text.find("\n" + series + " ");  // a sample's line, not its family's # HELP
        if (at == std::string::npos) return 0;
        return std::stod(text.substr(at + series.size() + 2));
    }

    HttpResponse get(const std::string& target, const std::string& tok) {
        return testing::http_request(port_, "GET", target, bearer(tok));
    }

    // Blobs committed in a bucket of the filesystem store (data files, not metadata or temporaries).
    // Uploads or MP3s in the file store (the converter's records of its jobs, JSON, not counted).
    size_t stored_files(const std::string& bucket) {
        size_t n = 0;
        auto dir = storage_dir_ / bucket;
        if (!std::filesystem::exists(dir)) return 0;
        for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
            if (!e.is_regular_file() || e.path().extension() == ".json" || e.path().parent_path().filename() == "tmp")
                continue;
            std::ifstream meta(e.path().string() + ".json");
            auto info = nlohmann::json::parse(meta, nullptr, false);
            if (info.is_object() && info.value("content_type", "") == "application/json") continue;
            ++n;
        }
        return n;
    }

    size_t temporary_files(const std::string& bucket) {
        auto dir = storage_dir_ / bucket / "tmp";
        if (!std::filesystem::exists(dir)) return 0;
        return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
    }

    size_t job_rows() {
        auto out = testing::mysql_admin(server_, "SELECT COUNT(*) FROM `" + database_.name() + "`.jobs");
        return std::stoul(out);
    }

    // Messages waiting in a queue, taken off it (tests play the converter).
    std::vector<nlohmann::json> drain(const std::string& queue) {
        amqp::Options o;
        o.url = amqp_url();
        amqp::Connection c(o);
        std::vector<nlohmann::json> out;
        c.consume(queue, 100);
        while (auto d = c.next(300ms)) {
            auto parsed = nlohmann::json::parse(d->body, nullptr, false);
            out.push_back(parsed.is_discarded() ? nlohmann::json(d->body) : parsed);
            c.ack(d->delivery_tag);
        }
        return out;
    }

    // At least n messages taken off a queue (the dispatcher publishes a moment after the upload answered).
    std::vector<nlohmann::json> drain_at_least(const std::string& queue, size_t n) {
        std::vector<nlohmann::json> out;
        eventually([&] {
            for (auto& m : drain(queue)) out.push_back(std::move(m));
            return out.size() >= n;
        });
        return out;
    }

    void publish_event(const nlohmann::json& event) {
        amqp::Options o;
        o.url = amqp_url();
        amqp::Publisher publisher(o, topology_);
        publisher.publish(topology_.status_exchange, "job." + event["status"].get<std::string>(),
                          {.body = event.dump()});
    }

    testing::MysqlServer server_;
    testing::TemporaryDatabase database_;
    std::filesystem::path storage_dir_;
    amqp::Topology topology_;
    std::unique_ptr<GatewayApp> app_;
    std::unique_ptr<http::Server> http_;
    uint16_t port_ = 0;
};

}  // namespace mp3c::gateway::test
