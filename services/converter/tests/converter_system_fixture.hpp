#pragma once

// The converter binary as operators run it (separate processes) behind an in-process gateway, against the harness's
// MariaDB and RabbitMQ.
#include <signal.h>

#include <fstream>
#include <set>

#include "gateway_fixture.hpp"
#include "mp3c/amqp.hpp"
#include "mp3c/testing/process.hpp"

namespace mp3c::gateway::test {

inline const std::string kJobTicketKey(40, 'j');

namespace fs = std::filesystem;
inline const std::string kConverter = std::string(MP3C_BIN_DIR) + "/converter";

class ConverterSystemTest : public GatewayTest {
  protected:
    ConverterSystemTest() : media_dir_(storage_dir_.string() + "-media") { fs::create_directories(media_dir_); }
    ~ConverterSystemTest() override {
        converters_.clear();
        std::error_code ignored;
        fs::remove_all(media_dir_, ignored);
    }

    void SetUp() override {
        start([](GatewayConfig& c) {
            c.max_upload_bytes = 64 << 20;
            c.job_ticket_secret = kJobTicketKey;  // the converter passes each job's ticket on
        });
    }

    // A converter process with a scratch directory of its own; returns its index.
    size_t start_converter(std::map<std::string, std::string> extra_env = {}) {
        size_t index = converters_.size();
        fs::path scratch = media_dir_ / ("tmp" + std::to_string(index));
        fs::create_directories(scratch);
        std::string prefix =
            topology_.video_queue.substr(0, topology_.video_queue.size() - std::string("video").size());
        std::map<std::string, std::string> env{
            {"AMQP_URL", amqp_url()},     {"AMQP_NAME_PREFIX", prefix},
            {"AMQP_HEARTBEAT", "5s"},     {"STORAGE_URL", "file://" + storage_dir_.string()},
            {"TMPDIR", scratch.string()}, {"ADMIN_PORT", "0"},
            {"ENCODER_THREADS", "1"},     {"SHUTDOWN_GRACE", "2s"}};
        for (auto& [name, value] : extra_env) env[name] = value;
        converters_.push_back(std::make_unique<testing::Process>(kConverter, std::vector<std::string>{}, env));
        EXPECT_TRUE(converters_.back()->wait_for_output("\"consuming\"", 30s)) << converters_.back()->output();
        return index;
    }

    size_t count(size_t converter, const std::string& text) const {
        std::string out = converters_[converter]->output();
        size_t n = 0;
        for (auto at = out.find(text); at != std::string::npos; at = out.find(text, at + 1)) ++n;
        return n;
    }

    // Flac of a sine tone: small to upload, its whole length to decode and encode.
    std::string media(double seconds, int rate = 22050) {
        std::string path = (media_dir_ / ("tone" + crypto::random_hex(3) + ".flac")).string();
        auto r = testing::run_command(
            "/usr/bin/ffmpeg",
            {"-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
             "sine=frequency=300:sample_rate=" + std::to_string(rate) + ":duration=" + std::to_string(seconds), path},
            {});
        if (r.status != 0) throw std::runtime_error("ffmpeg: " + r.out);
        std::ifstream in(path, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }

    std::string submit(const std::string& tok, const std::string& bytes) {
        auto r = upload(tok, bytes, "tone.flac");
        EXPECT_EQ(r.status, 202) << r.body;
        return r.json().value("job_id", "");
    }

    nlohmann::json job(const std::string& tok, const std::string& id) { return get("/jobs/" + id, tok).json(); }

    bool scratch_empty() const {
        for (const auto& e : fs::directory_iterator(media_dir_)) {
            if (e.is_directory() && !fs::is_empty(e.path())) return false;
        }
        return true;
    }

    fs::path media_dir_;
    std::vector<std::unique_ptr<testing::Process>> converters_;
};

}  // namespace mp3c::gateway::test
