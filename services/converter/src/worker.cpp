#include "worker.hpp"

#include <filesystem>

#include "mp3c/http_config.hpp"
#include "mp3c/output_options.hpp"
#include "temporary_file.hpp"

namespace mp3c::converter {

namespace {

using Outcome = amqp::Consumer::Outcome;
using namespace std::chrono_literals;

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The upload, read from the store; a seek reopens the reader at the new offset (cheap in the file store).
class BlobInput : public MediaInput {
  public:
    BlobInput(storage::BlobStore& store, std::string id, std::unique_ptr<storage::BlobReader> reader)
        : store_(store), id_(std::move(id)), reader_(std::move(reader)), size_(reader_->info().size) {}
    size_t read(uint8_t* buffer, size_t size) override { return reader_->read(reinterpret_cast<char*>(buffer), size); }
    void seek(uint64_t offset) override {
        reader_ = store_.open(id_, offset);
        if (!reader_) throw storage::Error("the upload " + id_ + " disappeared during the conversion");
    }
    uint64_t size() const override { return size_; }

  private:
    storage::BlobStore& store_;
    std::string id_;
    std::unique_ptr<storage::BlobReader> reader_;
    uint64_t size_;
};

// Sends throttled progress events: at most one a second, or one per 2 %.
class ProgressReporter {
  public:
    explicit ProgressReporter(std::function<void(int)> send) : send_(std::move(send)) {}
    void operator()(double fraction) {
        int percent = static_cast<int>(fraction * 100);
        auto now = std::chrono::steady_clock::now();
        if (percent >= 100 || (percent < last_ + 2 && now - last_time_ < 1s)) return;
        last_ = percent;
        last_time_ = now;
        send_(percent);
    }

  private:
    std::function<void(int)> send_;
    int last_ = 0;
    std::chrono::steady_clock::time_point last_time_ = std::chrono::steady_clock::now();
};

}  // namespace

struct Worker::Job {
    std::string job_id;
    std::string video_fid;
    std::string username;
    std::string user_id;
    std::string filename;
    std::string trace_id;
    std::string callback_url;  // passed on to the mp3 message and status events for the notification service
    OutputOptions options;
    int attempt = 1;
    int64_t submitted_at = 0;
    // What the owner's storage quota left when they uploaded (the gateway's max_output_bytes); none without a quota.
    std::optional<uint64_t> quota_left;
};

WorkerConfig load_worker_config(config::Env& env) {
    WorkerConfig c;
    c.amqp = amqp::options_from_env(env, "converter");
    c.topology = amqp::topology_from_env(env);
    c.storage_url = env.string("STORAGE_URL", c.storage_url);
    c.limits.max_duration = std::chrono::duration_cast<std::chrono::seconds>(
        env.duration("MAX_DURATION", std::chrono::hours(4), std::chrono::seconds(1)));
    c.limits.threads = static_cast<int>(env.integer("ENCODER_THREADS", 2, 1, 2));
    c.limits.max_output_bytes = env.bytes("MAX_OUTPUT_BYTES", c.limits.max_output_bytes);
    if (c.limits.max_output_bytes == 0) env.problem("MAX_OUTPUT_BYTES", "must be more than 0");
    c.limits.timeout_floor = env.duration("CONVERSION_TIMEOUT", c.limits.timeout_floor, 1ms);
    std::string ratio = env.string("CONVERSION_TIMEOUT_RATIO", "0.5");
    try {
        size_t used = 0;
        c.limits.timeout_ratio = std::stod(ratio, &used);
        if (used != ratio.size() || !(c.limits.timeout_ratio >= 0) || c.limits.timeout_ratio > 1000) {
            throw std::invalid_argument(ratio);
        }
    } catch (const std::exception&) {
        env.problem("CONVERSION_TIMEOUT_RATIO", "must be a number from 0 to 1000 (seconds per second of audio)");
    }
    c.limits.max_channels = static_cast<int>(env.integer("MAX_CHANNELS", c.limits.max_channels, 1, 64));
    c.limits.max_sample_rate = static_cast<int>(env.integer("MAX_SAMPLE_RATE", c.limits.max_sample_rate, 8000, 768000));
    c.limits.max_streams = static_cast<int>(env.integer("MAX_STREAMS", c.limits.max_streams, 1, 1000));
    c.max_input_bytes = env.bytes("MAX_INPUT_BYTES", c.max_input_bytes);
    c.max_attempts = static_cast<int>(env.integer("MAX_ATTEMPTS", 5, 1, 100));
    c.keep_source = env.boolean("KEEP_SOURCE", false);
    // Absolute: the worker's working directory is an empty one of its own (enter_empty_working_directory).
    c.temporary_dir = std::filesystem::absolute(env.string("TMPDIR", "/tmp")).lexically_normal().string();
    c.admin = http::server_options_from_env(env, "converter", 8081);
    c.admin.port = env.port("ADMIN_PORT", c.admin.port);
    c.shutdown_grace = env.duration("SHUTDOWN_GRACE", 25s);
    c.log_level = log::level_from_env(env);
    return c;
}

Worker::Worker(WorkerConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<metrics::Registry>()),
      videos_(storage::open_store(config_.storage_url, "videos")),
      mp3s_(storage::open_store(config_.storage_url, "mp3s")),
      publisher_(config_.amqp, config_.topology),
      jobs_(registry_->counter("converter_jobs_total", "Jobs by outcome.", {"result"})),
      conversion_seconds_(registry_->histogram("converter_conversion_seconds", "Time to convert one job.", {},
                                               {0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800})),
      audio_seconds_(registry_->counter("converter_audio_seconds_total", "Seconds of audio produced.").with({})),
      queue_wait_(registry_->histogram("converter_queue_wait_seconds", "From upload to the start of conversion.", {},
                                       {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600})) {}

Worker::~Worker() { stop(0ms); }

void Worker::start() {
    if (consumer_) return;
    auto topology = config_.topology;
    consumer_ = std::make_unique<amqp::Consumer>(
        config_.amqp,
        [topology](amqp::Connection& c) {
            amqp::declare_topology(c, topology);
            return topology.video_queue;
        },
        1,  // one job at a time per worker: the backlog spreads over all replicas
        [this](const amqp::Delivery& d) { return handle(d); });
    consumer_->keep_alive_during_handler();
    consumer_->start();
}

void Worker::stop(std::chrono::milliseconds grace) {
    if (!consumer_) return;
    // Stop() waits for the job in progress; past the grace period the conversion is told to give up.
    std::thread deadline([this, grace] {
        auto until = std::chrono::steady_clock::now() + grace;
        while (consumer_ && std::chrono::steady_clock::now() < until && !abandon_) std::this_thread::sleep_for(50ms);
        abandon_ = true;
    });
    consumer_->stop();
    abandon_ = true;
    deadline.join();
    consumer_.reset();
}

http::Router Worker::admin_router() { return http::Router(); }

http::ReadinessCheck Worker::readiness() {
    return [this]() -> std::optional<std::string> {
        if (auto problem = videos_->check()) return "blob storage: " + *problem;
        if (auto problem = publisher_.check()) return problem;
        if (consumer_ && !consumer_->connected()) return "not consuming from RabbitMQ";
        return std::nullopt;
    };
}

void Worker::publish_status(const Job& job, const std::string& status, nlohmann::json extra) {
    extra["job_id"] = job.job_id;
    extra["status"] = status;
    extra["at"] = now_ms();
    extra["trace_id"] = job.trace_id;
    extra["username"] = job.username;
    extra["filename"] = job.filename;
    if (!job.callback_url.empty()) extra["callback_url"] = job.callback_url;
    publisher_.publish(config_.topology.status_exchange, "job." + status,
                       {.body = extra.dump(), .message_id = job.job_id, .correlation_id = job.trace_id});
}

void Worker::announce(const Job& job, const storage::BlobInfo& mp3, double duration_seconds, bool source_deleted) {
    nlohmann::json message = {{"video_fid", job.video_fid}, {"mp3_fid", mp3.id},
                              {"username", job.username},   {"job_id", job.job_id},
                              {"user_id", job.user_id},     {"filename", job.filename},
                              {"mp3_size", mp3.size},       {"duration_seconds", duration_seconds},
                              {"trace_id", job.trace_id}};
    if (!job.callback_url.empty()) message["callback_url"] = job.callback_url;
    publisher_.publish("", config_.topology.mp3_queue,
                       {.body = message.dump(), .message_id = job.job_id, .correlation_id = job.trace_id});
    publish_status(job, "done",
                   {{"progress", 100},
                    {"mp3_fid", mp3.id},
                    {"mp3_size", mp3.size},
                    {"duration_seconds", duration_seconds},
                    {"source_deleted", source_deleted}});
}

Outcome Worker::retry_or_give_up(const Job& job, const std::string& body, const std::string& reason) {
    if (job.attempt >= config_.max_attempts) {
        log::error("job failed after its last attempt: dead-lettered",
                   {{"job_id", job.job_id}, {"attempt", job.attempt}, {"error", reason}});
        jobs_.with({"gave_up"}).inc();
        try {
            publish_status(job, "failed",
                           {{"error", "the conversion failed " + std::to_string(job.attempt) +
                                          " times for a technical reason; please try again later"},
                            {"reason", "gave_up"}});
        } catch (const amqp::Error&) {
            return Outcome::requeue;  // without the broker nothing can be reported: try the whole thing later
        }
        return Outcome::dead_letter;
    }
    std::string retry_queue = amqp::names::retry_queue_after(config_.topology.video_queue, job.attempt);
    auto next = nlohmann::json::parse(body);
    next["attempt"] = job.attempt + 1;
    log::warn("job failed for a transient reason: retrying",
              {{"job_id", job.job_id}, {"attempt", job.attempt}, {"retry_queue", retry_queue}, {"error", reason}});
    jobs_.with({"retried"}).inc();
    publisher_.publish("", retry_queue,
                       {.body = next.dump(), .message_id = job.job_id, .correlation_id = job.trace_id});
    return Outcome::ack;
}

Outcome Worker::handle(const amqp::Delivery& delivery) {
    auto body = nlohmann::json::parse(delivery.body, nullptr, false);
    Job job;
    auto text = [&](const char* key) -> std::optional<std::string> {
        if (!body.is_object() || !body.contains(key) || !body[key].is_string()) return std::nullopt;
        return body[key].get<std::string>();
    };
    auto job_id = text("job_id"), video_fid = text("video_fid"), username = text("username");
    auto options = body.is_object() ? OutputOptions::from_json(body.value("options", nlohmann::json())) : std::nullopt;
    if (!job_id || !storage::is_valid_id(*job_id) || !video_fid || !storage::is_valid_id(*video_fid) || !username ||
        !options) {
        // The job it belongs to, if that can be told (the gateway sets the message id to the job id), is failed so
        // that its owner is not left waiting; the message itself goes to the dead-letter queue for an operator.
        std::string named = job_id && storage::is_valid_id(*job_id) ? *job_id : delivery.message_id;
        log::error("invalid video message dead-lettered",
                   {{"body", delivery.body.substr(0, 500)}, {"job_id", named}, {"message_id", delivery.message_id}});
        jobs_.with({"invalid_message"}).inc();
        if (storage::is_valid_id(named)) {
            job.job_id = named;
            job.username = username.value_or("");
            job.trace_id = text("trace_id").value_or(delivery.correlation_id);
            try {
                publish_status(job, "failed",
                               {{"error", "the job's message was damaged and could not be processed"},
                                {"reason", "invalid_message"}});
            } catch (const amqp::Error&) {
                return Outcome::requeue;  // report it once the broker is back
            }
        }
        return Outcome::dead_letter;
    }
    job.job_id = *job_id;
    job.video_fid = *video_fid;
    job.username = *username;
    job.user_id = text("user_id").value_or("");
    job.filename = text("filename").value_or("");
    job.trace_id = text("trace_id").value_or(delivery.correlation_id);
    job.callback_url = text("callback_url").value_or("");
    job.options = *options;
    if (body.contains("attempt") && body["attempt"].is_number_integer())
        job.attempt = std::max(1, body["attempt"].get<int>());
    if (body.contains("max_output_bytes") && body["max_output_bytes"].is_number_unsigned()) {
        job.quota_left = body["max_output_bytes"].get<uint64_t>();
    }
    if (body.contains("submitted_at") && body["submitted_at"].is_number_integer() && job.attempt == 1) {
        queue_wait_.with({}).observe(static_cast<double>(now_ms() - body["submitted_at"].get<int64_t>()) / 1000.0);
    }

    try {
        // Idempotent: the MP3 is named after the job, so a redelivered job that was stored is only announced again.
        if (auto existing = mp3s_->stat(job.job_id)) {
            log::info("job already converted: announcing it again", {{"job_id", job.job_id}});
            jobs_.with({"reannounced"}).inc();
            announce(job, *existing, 0, !videos_->stat(job.video_fid).has_value());
            return Outcome::ack;
        }
        auto reader = videos_->open(job.video_fid);
        if (!reader) {
            // Cancelled or deleted by its owner (the gateway removed the upload): nothing to do.
            log::info("upload gone: job skipped", {{"job_id", job.job_id}, {"video_fid", job.video_fid}});
            jobs_.with({"skipped"}).inc();
            return Outcome::ack;
        }
        if (reader->info().size > config_.max_input_bytes) {
            std::string reason = "the upload is larger than the converter's limit of " +
                                 std::to_string(config_.max_input_bytes) + " bytes";
            jobs_.with({"too_large"}).inc();
            publish_status(job, "failed", {{"error", reason}, {"reason", "too_large"}});
            return Outcome::ack;
        }
        publish_status(job, "processing", {{"progress", 0}});
        log::info("converting", {{"job_id", job.job_id}, {"attempt", job.attempt}, {"bytes", reader->info().size}});

        auto started = std::chrono::steady_clock::now();
        // A store that cannot seek (GridFS) is read once, front to back, into a nameless local copy that serves the
        // demuxer's jumps (an MP4 whose index is at the end). The file store seeks directly.
        std::unique_ptr<MediaInput> input;
        if (videos_->seeks_cheaply()) {
            input = std::make_unique<BlobInput>(*videos_, job.video_fid, std::move(reader));
        } else {
            uint64_t size = reader->info().size;
            input = std::make_unique<SpooledInput>(
                [r = std::shared_ptr<storage::BlobReader>(std::move(reader))](uint8_t* buffer, size_t n) {
                    return r->read(reinterpret_cast<char*>(buffer), n);
                },
                size, config_.temporary_dir);
        }
        // The MP3 goes to a nameless local file first: the muxer seeks back to write the LAME header (exact duration,
        // gapless playback), which a stream into the store could not take. It is small next to the video, and it
        // vanishes with the process even on kill -9.
        TemporaryFile output(config_.temporary_dir);
        ProgressReporter progress([&](int percent) {
            try {
                publish_status(job, "processing", {{"progress", percent}});
            } catch (const amqp::Error&) {
                // progress is best effort
            }
        });
        Limits limits = config_.limits;
        limits.abandon = &abandon_;
        if (job.quota_left && *job.quota_left < limits.max_output_bytes) {
            limits.max_output_bytes = *job.quota_left;
            limits.output_limit_is_quota = true;
        }
        ConversionResult result;
        try {
            result = convert(*input, output, job.options, limits, [&](double f) { progress(f); });
        } catch (const ConversionError& e) {
            if (!e.permanent()) throw;
            log::warn("job failed", {{"job_id", job.job_id}, {"reason", e.kind_name()}, {"error", e.what()}});
            jobs_.with({std::string(e.kind_name())}).inc();
            publish_status(job, "failed", {{"error", e.what()}, {"reason", e.kind_name()}});
            return Outcome::ack;
        }
        storage::BlobInfo mp3;
        {
            auto writer = mp3s_->create({.owner = job.user_id,
                                         .filename = std::filesystem::path(job.filename).stem().string() + ".mp3",
                                         .content_type = "audio/mpeg",
                                         .id = job.job_id});
            std::vector<uint8_t> chunk(1 << 20);
            uint64_t offset = 0;
            while (size_t n = output.read_at(offset, chunk.data(), chunk.size())) {
                writer->write(std::string_view(reinterpret_cast<char*>(chunk.data()), n));
                offset += n;
            }
            mp3 = writer->commit();
        }
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        conversion_seconds_.with({}).observe(seconds);
        audio_seconds_.inc(result.duration_seconds);
        bool source_deleted = false;
        if (!config_.keep_source) source_deleted = videos_->remove(job.video_fid);
        announce(job, mp3, result.duration_seconds, source_deleted);
        jobs_.with({"done"}).inc();
        log::info("job done", {{"job_id", job.job_id},
                               {"mp3_fid", mp3.id},
                               {"audio_seconds", result.duration_seconds},
                               {"conversion_seconds", seconds}});
        return Outcome::ack;
    } catch (const amqp::Error&) {
        throw;  // the broker is gone: the message comes back after reconnecting
    } catch (const ConversionError& e) {
        if (abandon_) return Outcome::requeue;  // shutting down: another worker (or this one, later) takes it
        return retry_or_give_up(job, delivery.body, e.what());
    } catch (const storage::Error& e) {
        return retry_or_give_up(job, delivery.body, e.what());
    }
}

}  // namespace mp3c::converter
