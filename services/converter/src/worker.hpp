#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "mp3c/amqp.hpp"
#include "mp3c/config.hpp"
#include "mp3c/http.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/metrics.hpp"
#include "mp3c/storage.hpp"
#include "temporary_file.hpp"
#include "transcoder.hpp"

namespace mp3c::converter {

struct WorkerConfig {
    amqp::Options amqp;
    amqp::Topology topology;
    std::string storage_url = "file:///var/lib/mp3converter/storage";
    Limits limits;
    uint64_t max_input_bytes = 4ull << 30;  // larger uploads fail at once (MAX_INPUT_BYTES)
    int max_attempts = 5;                   // transient failures retried this often, then dead-lettered
    bool keep_source = false;               // keep the uploaded video after a successful conversion
    // How often a conversion looks whether its upload is still there (gone: its owner cancelled the job).
    std::chrono::milliseconds cancel_check_interval{2000};
    std::string temporary_dir = "/tmp";
    http::ServerOptions admin;  // /healthz, /readyz, /metrics
    std::chrono::milliseconds shutdown_grace{25'000};
    log::Level log_level = log::Level::info;
};

// AMQP_URL, AMQP_NAME_PREFIX, VIDEO_QUEUE, MP3_QUEUE, STORAGE_URL, MAX_DURATION (4h), MAX_INPUT_BYTES (4GiB),
// MAX_OUTPUT_BYTES (256MiB), CONVERSION_TIMEOUT (5min), CONVERSION_TIMEOUT_RATIO (0.5), MAX_CHANNELS (8),
// MAX_SAMPLE_RATE (192000), MAX_STREAMS (64), MAX_ATTEMPTS (5), ENCODER_THREADS (2), KEEP_SOURCE (off), TMPDIR,
// ADMIN_PORT (8081), SHUTDOWN_GRACE (25s), LOG_LEVEL.
WorkerConfig load_worker_config(config::Env& env);

// Consumes `video`: converts each job's upload into an MP3 named after the job, stores it, announces it on `mp3`
// and as status events; acks only then (docs/messaging.md).
class Worker {
  public:
    explicit Worker(WorkerConfig config);
    ~Worker();

    void start();
    // Stops taking jobs; the job in progress gets `grace` to finish, then is abandoned (and redelivered later).
    void stop(std::chrono::milliseconds grace);
    http::Router admin_router();
    http::ReadinessCheck readiness();
    std::shared_ptr<metrics::Registry> registry() const { return registry_; }

    // One delivery of `video` (public for tests).
    amqp::Consumer::Outcome handle(const amqp::Delivery& delivery);

  private:
    using Job = messages::VideoJob;
    amqp::Consumer::Outcome convert_job(const Job& job);
    std::unique_ptr<MediaInput> open_input(const Job& job, std::unique_ptr<storage::BlobReader> reader);
    storage::BlobInfo store_mp3(const Job& job, const TemporaryFile& mp3);
    // A status event about `job`, its common fields filled in, and its publishing.
    messages::StatusEvent event(const Job& job, messages::JobState state) const;
    void publish(const messages::StatusEvent& event);
    void publish_progress(const Job& job, int percent);
    void publish_failure(const Job& job, const std::string& error, const std::string& reason);
    void announce(const Job& job, const storage::BlobInfo& mp3, double duration_seconds, bool source_deleted,
                  const messages::ConversionRecord& record);
    // The job's waveform, loudness and parts (messages::ConversionRecord), stored before its MP3 so that a job
    // announced again has them; nullopt for an MP3 stored before records were.
    void store_record(const Job& job, const messages::ConversionRecord& record);
    std::optional<messages::ConversionRecord> stored_record(const Job& job);
    amqp::Consumer::Outcome retry_or_give_up(const Job& job, const amqp::Delivery& delivery, const std::string& reason);
    amqp::Consumer::Outcome wait_for_space(const Job& job, const amqp::Delivery& delivery, const std::string& reason);
    amqp::Consumer::Outcome reject(const amqp::Delivery& delivery, const messages::Problem& problem);

    WorkerConfig config_;
    std::shared_ptr<metrics::Registry> registry_;
    std::unique_ptr<storage::BlobStore> videos_;
    std::unique_ptr<storage::BlobStore> mp3s_;
    amqp::Publisher publisher_;
    amqp::RetryPolicy retries_;
    std::unique_ptr<amqp::Consumer> consumer_;
    std::atomic<bool> abandon_{false};

    metrics::Family<metrics::Counter>& jobs_;
    metrics::Family<metrics::Counter>& encodings_;
    metrics::Family<metrics::Histogram>& conversion_seconds_;
    metrics::Counter& audio_seconds_;
    metrics::Family<metrics::Histogram>& queue_wait_;
};

}  // namespace mp3c::converter
