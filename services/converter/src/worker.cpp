#include "worker.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "mp3c/cpu_budget.hpp"
#include "mp3c/http_config.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/output_options.hpp"
#include "mp3c/settings.hpp"
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

WorkerConfig load_worker_config(config::Env& env) {
    WorkerConfig c;
    c.amqp = amqp::options_from_env(env, "converter");
    c.topology = amqp::topology_from_env(env);
    c.storage_url = env.text(storage::settings::kStorageUrl);
    c.limits.max_duration = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kMaxDuration));
    c.limits.threads = static_cast<int>(env.integer(settings::kEncoderThreads));
    if (c.limits.threads == 0) c.limits.threads = available_cores();
    c.limits.parallel_from =
        std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kParallelMinDuration));
    c.limits.max_output_bytes = env.bytes(settings::kMaxOutputBytes);
    if (c.limits.max_output_bytes == 0) env.problem("MAX_OUTPUT_BYTES", "must be more than 0");
    c.limits.timeout_floor = env.duration(settings::kConversionTimeout);
    c.limits.timeout_ratio = env.number(settings::kConversionTimeoutRatio);  // s per s of audio
    c.limits.max_channels = static_cast<int>(env.integer(settings::kMaxChannels));
    c.limits.max_sample_rate = static_cast<int>(env.integer(settings::kMaxSampleRate));
    c.limits.max_streams = static_cast<int>(env.integer(settings::kMaxStreams));
    c.max_input_bytes = env.bytes(settings::kMaxInputBytes);
    c.max_attempts = static_cast<int>(env.integer(settings::kMaxAttempts));
    c.keep_source = env.boolean(settings::kKeepSource);
    // Absolute: the worker's working directory is an empty one of its own (enter_empty_working_directory).
    c.temporary_dir = std::filesystem::absolute(env.text(settings::kTmpdir)).lexically_normal().string();
    c.admin = http::server_options_from_env(env, "converter", 8081);
    c.admin.port = env.port(settings::kAdminPort);
    c.shutdown_grace = env.duration(settings::kShutdownGrace);
    c.log_level = log::level_from_env(env);
    return c;
}

Worker::Worker(WorkerConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<metrics::Registry>()),
      videos_(storage::open_store(config_.storage_url, "videos")),
      mp3s_(storage::open_store(config_.storage_url, "mp3s")),
      publisher_(config_.amqp, config_.topology),
      retries_(publisher_, config_.topology.video_queue, config_.max_attempts),
      jobs_(registry_->counter("converter_jobs_total", "Jobs by outcome.", {"result"})),
      encodings_(registry_->counter("converter_encodings_total",
                                    "Conversions done, by encoding: parallel segments or one encoder.", {"encoding"})),
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
    return [this]() -> Check {
        // Both stores: each makes its GridFS indexes at its first good check.
        if (auto ok = videos_->check(); !ok) return "blob storage: " + ok.error();
        if (auto ok = mp3s_->check(); !ok) return "blob storage: " + ok.error();
        if (auto ok = publisher_.check(); !ok) return ok;
        if (consumer_ && !consumer_->connected()) return std::string("not consuming from RabbitMQ");
        return Ok{};
    };
}

messages::StatusEvent Worker::event(const Job& job, messages::JobState state) const {
    messages::StatusEvent e;
    e.job_id = job.job_id;
    e.status = state;
    e.at = now_ms();
    e.trace_id = job.trace_id;
    e.username = job.username;
    e.filename = job.filename;
    e.callback_url = job.callback_url;
    e.ticket = job.ticket;  // passed on as it came: the converter cannot make one
    return e;
}

void Worker::publish(const messages::StatusEvent& e) {
    publisher_.publish(config_.topology.status_exchange, e.routing_key(),
                       {.body = e.to_body(), .message_id = e.job_id, .correlation_id = e.trace_id});
}

void Worker::publish_progress(const Job& job, int percent) {
    auto e = event(job, messages::JobState::processing);
    e.progress = percent;
    publish(e);
}

void Worker::publish_failure(const Job& job, const std::string& error, const std::string& reason) {
    auto e = event(job, messages::JobState::failed);
    e.error = error;
    e.reason = reason;
    publish(e);
}

void Worker::announce(const Job& job, const storage::BlobInfo& mp3, double duration_seconds, bool source_deleted,
                      const messages::ConversionRecord& record) {
    messages::Mp3Ready ready;
    ready.job_id = job.job_id;
    ready.video_fid = job.video_fid;
    ready.mp3_fid = mp3.id;
    ready.username = job.username;
    ready.user_id = job.user_id;
    ready.filename = job.filename;
    ready.mp3_size = mp3.size;
    ready.duration_seconds = duration_seconds;
    ready.trace_id = job.trace_id;
    ready.callback_url = job.callback_url;
    ready.ticket = job.ticket;
    ready.parts = static_cast<int>(record.parts.size());
    publisher_.publish(amqp::names::inbox(config_.topology.mp3_queue), config_.topology.mp3_queue,
                       {.body = ready.to_body(), .message_id = job.job_id, .correlation_id = job.trace_id});
    auto done = event(job, messages::JobState::done);
    done.progress = 100;
    done.mp3_fid = mp3.id;
    done.mp3_size = mp3.size;
    done.duration_seconds = duration_seconds;
    done.source_deleted = source_deleted;
    done.parts = record.parts;
    done.waveform = record.waveform;
    done.loudness = record.loudness;
    publish(done);
}

Outcome Worker::retry_or_give_up(const Job& job, const amqp::Delivery& delivery, const std::string& reason) {
    if (retries_.exhausted(job.attempt)) {
        log::error("job failed after its last attempt: dead-lettered",
                   {{"job_id", job.job_id}, {"attempt", job.attempt}, {"error", reason}});
        jobs_.with({"gave_up"}).inc();
        try {
            publish_failure(job,
                            "the conversion failed " + std::to_string(job.attempt) +
                                " times for a technical reason; please try again later",
                            "gave_up");
        } catch (const amqp::Error&) {
            return Outcome::requeue;  // without the broker nothing can be reported: try the whole thing later
        }
        return Outcome::dead_letter;
    }
    log::warn("job failed for a transient reason: retrying",
              {{"job_id", job.job_id},
               {"attempt", job.attempt},
               {"retry_queue", amqp::names::retry_queue_after(config_.topology.video_queue, job.attempt)},
               {"error", reason}});
    jobs_.with({"retried"}).inc();
    return retries_.retry(delivery, job.attempt, messages::next_attempt(job));
}

Outcome Worker::reject(const amqp::Delivery& delivery, const messages::Problem& problem) {
    // The job it belongs to, if that can be told (the gateway sets the message id to the job id), is failed so that
    // its owner is not left waiting; the message itself goes to the dead-letter queue for an operator.
    auto named = messages::job_named_in(delivery.body);
    if (!named.job_id && storage::is_valid_id(delivery.message_id)) named.job_id = delivery.message_id;
    log::error("invalid video message dead-lettered", {{"body", delivery.body.substr(0, 500)},
                                                       {"problem", problem.describe()},
                                                       {"job_id", named.job_id.value_or("")},
                                                       {"message_id", delivery.message_id}});
    jobs_.with({"invalid_message"}).inc();
    if (named.job_id) {
        Job job;
        job.job_id = *named.job_id;
        job.username = named.username.value_or("");
        job.trace_id = named.trace_id.value_or(delivery.correlation_id);
        try {
            publish_failure(job, "the job's message was damaged and could not be processed", "invalid_message");
        } catch (const amqp::Error&) {
            return Outcome::requeue;  // report it once the broker is back
        }
    }
    return Outcome::dead_letter;
}

namespace {

// A full disk (the store's, or TMPDIR where the MP3 is made) is not the job's fault and not a broken store: its job
// waits for space instead of spending its attempts. The store says so, and so does the conversion (the errno of the
// temporary file's failure, carried through FFmpeg's I/O callbacks).
bool out_of_space(const std::exception& e) {
    if (auto* store = dynamic_cast<const storage::Error*>(&e)) return store->no_space();
    return ConversionError::means_no_space(e);
}

}  // namespace

Outcome Worker::wait_for_space(const Job& job, const amqp::Delivery& delivery, const std::string& reason) {
    log::warn("storage full: the job waits for space without counting an attempt",
              {{"job_id", job.job_id}, {"attempt", job.attempt}, {"error", reason}});
    jobs_.with({"no_space"}).inc();
    return retries_.later(delivery);
}

Outcome Worker::handle(const amqp::Delivery& delivery) {
    auto parsed = messages::VideoJob::parse(delivery.body);
    if (!parsed) return reject(delivery, parsed.error());
    Job job = std::move(parsed).value();
    if (job.trace_id.empty()) job.trace_id = delivery.correlation_id;
    if (job.submitted_at > 0 && job.attempt == 1) {
        queue_wait_.with({}).observe(static_cast<double>(now_ms() - job.submitted_at) / 1000.0);
    }
    try {
        return convert_job(job);
    } catch (const amqp::Error&) {
        throw;  // the broker is gone: the message comes back after reconnecting
    } catch (const ConversionError& e) {
        if (abandon_) return Outcome::requeue;  // shutting down: another worker (or this one, later) takes it
        if (out_of_space(e)) return wait_for_space(job, delivery, e.what());
        return retry_or_give_up(job, delivery, e.what());
    } catch (const storage::Error& e) {
        if (out_of_space(e)) return wait_for_space(job, delivery, e.what());
        return retry_or_give_up(job, delivery, e.what());
    }
}

std::unique_ptr<MediaInput> Worker::open_input(const Job& job, std::unique_ptr<storage::BlobReader> reader) {
    // A store that cannot seek (GridFS) is read once, front to back, into a nameless local copy that serves the
    // demuxer's jumps (an MP4 whose index is at the end). The file store seeks directly.
    if (videos_->seeks_cheaply()) return std::make_unique<BlobInput>(*videos_, job.video_fid, std::move(reader));
    uint64_t size = reader->info().size;
    return std::make_unique<SpooledInput>(
        [r = std::shared_ptr<storage::BlobReader>(std::move(reader))](uint8_t* buffer, size_t n) {
            return r->read(reinterpret_cast<char*>(buffer), n);
        },
        size, config_.temporary_dir);
}

namespace {

storage::BlobInfo copy_to_store(storage::BlobStore& store, const TemporaryFile& file, const storage::NewBlob& blob) {
    auto writer = store.create(blob);
    std::vector<uint8_t> chunk(1 << 20);
    uint64_t offset = 0;
    while (size_t n = file.read_at(offset, chunk.data(), chunk.size())) {
        writer->write(std::string_view(reinterpret_cast<char*>(chunk.data()), n));
        offset += n;
    }
    return writer->commit();
}

// chapters=split: each part into a nameless local file, then into the MP3 store under its job-derived id. Parts kept
// by a conversion that then fails are removed again (a retry writes the same ids anyway).
class StoredParts : public PartSink {
  public:
    StoredParts(storage::BlobStore& store, const messages::VideoJob& job, std::string directory)
        : store_(store), job_(job), directory_(std::move(directory)) {}
    ~StoredParts() override {
        if (kept_) return;
        for (const auto& id : stored_) {
            try {
                store_.remove(id);
            } catch (const storage::Error& e) {
                log::warn("could not remove a part of a failed conversion",
                          {{"job_id", job_.job_id}, {"fid", id}, {"error", e.what()}});
            }
        }
    }
    std::unique_ptr<MediaOutput> open(const PartPlan&) override { return std::make_unique<TemporaryFile>(directory_); }
    messages::Part commit(const PartPlan& plan, MediaOutput& output) override {
        auto& file = static_cast<TemporaryFile&>(output);
        messages::Part part;
        part.fid = messages::part_id(job_.job_id, plan.index);
        stored_.push_back(part.fid);
        part.size = copy_to_store(store_, file,
                                  {.owner = job_.user_id,
                                   .filename = messages::part_filename(plan.index, plan.count, plan.title),
                                   .content_type = "audio/mpeg",
                                   .id = part.fid})
                        .size;
        return part;
    }
    void keep() { kept_ = true; }

  private:
    storage::BlobStore& store_;
    const messages::VideoJob& job_;
    std::string directory_;
    std::vector<std::string> stored_;
    bool kept_ = false;
};

}  // namespace

void Worker::store_record(const Job& job, const messages::ConversionRecord& record) {
    auto writer = mp3s_->create({.owner = job.user_id,
                                 .filename = "record.json",
                                 .content_type = "application/json",
                                 .id = messages::record_id(job.job_id)});
    writer->write(record.to_json_text());
    writer->commit();
}

std::optional<messages::ConversionRecord> Worker::stored_record(const Job& job) {
    auto reader = mp3s_->open(messages::record_id(job.job_id));
    if (!reader || reader->info().size > (4 << 20)) return std::nullopt;
    std::string text(reader->info().size, '\0');
    size_t got = 0;
    while (got < text.size()) {
        size_t n = reader->read(text.data() + got, text.size() - got);
        if (n == 0) break;
        got += n;
    }
    return messages::ConversionRecord::from_json_text(std::string_view(text).substr(0, got));
}

storage::BlobInfo Worker::store_mp3(const Job& job, const TemporaryFile& mp3) {
    return copy_to_store(*mp3s_, mp3,
                         {.owner = job.user_id,
                          .filename = std::filesystem::path(job.filename).stem().string() + ".mp3",
                          .content_type = "audio/mpeg",
                          .id = job.job_id});
}

Outcome Worker::convert_job(const Job& job) {
    // Idempotent: the MP3 is named after the job, so a redelivered job that was stored is only announced again.
    if (auto existing = mp3s_->stat(job.job_id)) {
        log::info("job already converted: announcing it again", {{"job_id", job.job_id}});
        jobs_.with({"reannounced"}).inc();
        auto record = stored_record(job).value_or(messages::ConversionRecord{});
        announce(job, *existing, record.duration_seconds, !videos_->stat(job.video_fid).has_value(), record);
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
        jobs_.with({"too_large"}).inc();
        publish_failure(
            job,
            "the upload is larger than the converter's limit of " + std::to_string(config_.max_input_bytes) + " bytes",
            "too_large");
        return Outcome::ack;
    }
    publish_progress(job, 0);
    log::info("converting", {{"job_id", job.job_id}, {"attempt", job.attempt}, {"bytes", reader->info().size}});

    auto started = std::chrono::steady_clock::now();
    auto input = open_input(job, std::move(reader));
    // The MP3 goes to a nameless local file first: the muxer seeks back to write the LAME header (exact duration,
    // gapless playback), which a stream into the store could not take. It is small next to the video, and it
    // vanishes with the process even on kill -9.
    TemporaryFile output(config_.temporary_dir);
    ProgressReporter progress([&](int percent) {
        try {
            publish_progress(job, percent);
        } catch (const amqp::Error&) {
            // progress is best effort
        }
    });
    Limits limits = config_.limits;
    limits.abandon = &abandon_;
    // Cancelled by its owner while converting: the gateway deleted the upload. Looked for every few seconds.
    std::atomic<bool> cancelled{false};
    limits.cancel = &cancelled;
    auto looked = std::chrono::steady_clock::now();
    auto on_progress = [&](double fraction) {
        progress(fraction);
        if (std::chrono::steady_clock::now() - looked < config_.cancel_check_interval) return;
        looked = std::chrono::steady_clock::now();
        try {
            if (!videos_->stat(job.video_fid)) cancelled = true;
        } catch (const storage::Error&) {
            // The store cannot say now: look again later.
        }
    };
    // Segments in parallel only while no other job waits: with a backlog, every converter on the machine (two in the
    // local stack, replicas on a node) has a job of its own, the cores are busy already, and the overlap each join
    // encodes twice would only cost. A broker that cannot be asked says no too.
    if (limits.threads >= 2) {
        auto waiting = publisher_.queue_depth(config_.topology.video_queue);
        limits.parallel = waiting && *waiting == 0;
    }
    if (job.max_output_bytes && *job.max_output_bytes < limits.max_output_bytes) {
        limits.max_output_bytes = *job.max_output_bytes;  // what the owner's quota left
        limits.output_limit_is_quota = true;
    }
    ConversionResult result;
    StoredParts parts(*mp3s_, job, config_.temporary_dir);
    try {
        result = convert(*input, output, job.options, limits, on_progress, &parts);
    } catch (const ConversionError& e) {
        if (cancelled) {
            // Nothing to report: the gateway recorded the cancellation and told the job's event streams.
            log::info("job cancelled by its owner: conversion stopped", {{"job_id", job.job_id}});
            jobs_.with({"cancelled"}).inc();
            return Outcome::ack;
        }
        if (e.outcome() == mp3c::Outcome::transient) throw;  // retried below
        log::warn("job failed", {{"job_id", job.job_id}, {"reason", e.kind_name()}, {"error", e.what()}});
        jobs_.with({std::string(e.kind_name())}).inc();
        publish_failure(job, e.what(), std::string(e.kind_name()));
        return Outcome::ack;
    }
    if (const auto& l = result.loudness; l && l->output_lufs && std::abs(*l->output_lufs - l->target_lufs) > 1) {
        // The limiter's trials could not close in (audio all peaks): the job reports what it reached.
        log::warn("loudness target missed by more than 1 LU",
                  {{"job_id", job.job_id}, {"target_lufs", l->target_lufs}, {"output_lufs", *l->output_lufs}});
    }
    if (!result.cover_problem.empty()) {
        log::warn("the source's picture was left out of the MP3",
                  {{"job_id", job.job_id}, {"problem", result.cover_problem}});
    }
    // The parts (stored while converting), the record, then the MP3: a stored MP3 means the rest is stored.
    messages::ConversionRecord record{.duration_seconds = result.duration_seconds,
                                      .waveform = std::nullopt,
                                      .loudness = result.loudness,
                                      .parts = result.parts};
    if (!result.waveform.peaks.empty()) record.waveform = result.waveform;
    store_record(job, record);
    storage::BlobInfo mp3 = store_mp3(job, output);
    parts.keep();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    conversion_seconds_.with({}).observe(seconds);
    audio_seconds_.inc(result.duration_seconds);
    bool source_deleted = false;
    if (!config_.keep_source) source_deleted = videos_->remove(job.video_fid);
    announce(job, mp3, result.duration_seconds, source_deleted, record);
    jobs_.with({"done"}).inc();
    encodings_.with({result.segments > 0 ? "parallel" : "one_encoder"}).inc();
    log::info("job done", {{"job_id", job.job_id},
                           {"mp3_fid", mp3.id},
                           {"audio_seconds", result.duration_seconds},
                           {"parts", result.parts.size()},
                           {"parallel_segments", result.segments},
                           {"joins_grown", result.grown_frames},
                           {"latest_join_frames", result.latest_join},
                           {"overlap_frames_dropped", result.dropped_frames},
                           {"conversion_seconds", seconds}});
    return Outcome::ack;
}

}  // namespace mp3c::converter
