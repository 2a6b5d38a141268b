#include "dispatcher.hpp"

#include "mp3c/log.hpp"

namespace mp3c::gateway {

messages::VideoJob video_message(const Job& job, const std::string& ticket_key) {
    messages::VideoJob m;
    m.job_id = job.id;
    m.video_fid = job.video_fid;
    m.username = job.owner_email;
    m.user_id = std::to_string(job.owner_id);
    m.filename = job.filename;
    m.size = job.size;
    // Recorded by the gateway from checked form fields; a row that somehow holds others converts with the defaults.
    m.options = OutputOptions::from_json(job.options).value_or(OutputOptions{});
    m.trace_id = job.trace_id;
    m.submitted_at = job.created_ms;
    m.callback_url = job.callback_url;
    // The MP3 counts against the owner's quota too: it may take what was left when the upload began (the upload
    // itself is deleted once converted). The converter fails the job (output_too_large) rather than go over.
    m.max_output_bytes = job.max_output_bytes;
    if (!ticket_key.empty()) m.ticket = messages::job_ticket(ticket_key, job.id, job.owner_email, job.callback_url);
    return m;
}

Dispatcher::Dispatcher(Jobs& jobs, JobQueue& queue, metrics::Registry& registry, Options options)
    : jobs_(jobs),
      queue_(queue),
      options_(options),
      dispatched_(registry.counter("gateway_jobs_dispatched_total", "Jobs published to the converters.").with({})),
      failures_(registry
                    .counter("gateway_dispatch_failures_total",
                             "Dispatch passes that failed (database or broker unavailable); retried.")
                    .with({})),
      requeued_(registry
                    .counter("gateway_jobs_redispatched_total",
                             "Dispatched jobs whose message was lost (not started, the queue empty), dispatched again.")
                    .with({})),
      waiting_(registry
                   .gauge("gateway_jobs_waiting",
                          "Jobs recorded and not yet on the video queue (each user's beyond JOBS_IN_FLIGHT_PER_USER). "
                          "Every replica reports the same: take the max.")
                   .with({})),
      oldest_waiting_(registry
                          .gauge("gateway_oldest_waiting_job_seconds",
                                 "How long the oldest job not yet on the video queue has waited (0: none waits).")
                          .with({})) {}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::start() {
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
}

void Dispatcher::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Dispatcher::wake() {
    {
        std::lock_guard lock(mutex_);
        woken_ = true;
    }
    cv_.notify_all();
}

size_t Dispatcher::dispatch_once() {
    // Nothing ready on the queue, yet jobs dispatched long ago have not started: their messages are gone. Looked for a
    // few times per lost_after, not on every pass (every upload and every job's end wakes the dispatcher).
    auto now = std::chrono::steady_clock::now();
    if (now - last_lost_check_ >= options_.lost_after / 4) {
        if (auto depth = queue_.depth(); depth && *depth == 0) {
            last_lost_check_ = now;
            if (uint64_t lost = jobs_.requeue_unstarted(options_.lost_after); lost > 0) {
                requeued_.inc(static_cast<double>(lost));
                log::warn("dispatched jobs never started and the queue is empty: dispatching them again",
                          {{"jobs", lost}});
            }
        }
    }
    size_t published = 0;
    // Batches, until nothing more may go: each batch is computed after the previous one was dispatched.
    for (;;) {
        auto batch = jobs_.dispatchable(options_.per_owner, 100);
        size_t before = published;
        for (const auto& job : batch) {
            if (jobs_.dispatch(job.id, [&] { queue_.submit(video_message(job, options_.ticket_key)); })) {
                ++published;
                dispatched_.inc();
                log::info("job dispatched", {{"job_id", job.id}, {"owner_id", job.owner_id}});
            }
        }
        if (batch.size() < 100 || published == before) break;
    }
    auto room = jobs_.waiting();
    waiting_.set(static_cast<double>(room.jobs));
    oldest_waiting_.set(room.oldest_seconds);
    return published;
}

void Dispatcher::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        woken_ = false;
        lock.unlock();
        bool failed = false;
        try {
            if (jobs_.ready()) dispatch_once();
        } catch (const std::exception& e) {
            failures_.inc();
            failed = true;
            log::warn("dispatching jobs failed; retrying", {{"error", e.what()}});
        }
        lock.lock();
        if (failed) {
            // Not sooner when woken: new uploads must not turn an outage into a busy loop.
            cv_.wait_for(lock, options_.retry_delay, [this] { return stopping_; });
        } else {
            cv_.wait_for(lock, options_.idle_check, [this] { return stopping_ || woken_; });
        }
    }
}

}  // namespace mp3c::gateway
