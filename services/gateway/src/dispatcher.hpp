#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "mp3c/messages.hpp"
#include "mp3c/metrics.hpp"
#include "ports.hpp"

namespace mp3c::gateway {

// The `video` message of a recorded job: the original's fields, plus what the converter needs to work and report
// without asking anyone.
// With a ticket_key (JOB_TICKET_SECRET), the message carries the job's ticket (messages::job_ticket).
messages::VideoJob video_message(const Job& job, const std::string& ticket_key = {});

// Fair scheduling across users. The jobs table is the waiting room: an upload records its job waiting, and the
// dispatcher publishes to `video` at most `per_owner` jobs of each owner that are dispatched and not yet ended (the
// next when one ends), everyone's first before anyone's second, FIFO within an owner. So a backlog of one user delays
// another's new job by about one conversion, not by the backlog. Nothing is lost or duplicated across restarts: a job
// is marked dispatched in the same transaction that claimed it, after the broker confirmed it (a crash in between
// publishes it again, and the converter is idempotent by job id). Several replicas may run one each.
class Dispatcher final : public JobDispatch {
  public:
    struct Options {
        uint64_t per_owner = 2;
        std::chrono::milliseconds idle_check{2000};   // looks again this often even when nobody woke it
        std::chrono::milliseconds retry_delay{1000};  // after the database or the broker failed
        // A job dispatched this long ago, still not started while the `video` queue holds nothing ready, lost its
        // message (a purged queue, a broker that lost its volume): it is dispatched again.
        std::chrono::seconds lost_after{300};
        std::string ticket_key;  // JOB_TICKET_SECRET; empty: no tickets
    };
    Dispatcher(Jobs& jobs, JobQueue& queue, metrics::Registry& registry, Options options);
    ~Dispatcher() override;

    void start();
    void stop();
    void wake() override;
    // One pass (the thread's work; also for tests): publishes what may go now. Returns how many it published.
    size_t dispatch_once();

  private:
    void run();

    Jobs& jobs_;
    JobQueue& queue_;
    Options options_;
    metrics::Counter& dispatched_;
    metrics::Counter& failures_;
    metrics::Counter& requeued_;
    metrics::Gauge& waiting_;         // jobs in the waiting room (the same in every replica: take the max)
    metrics::Gauge& oldest_waiting_;  // seconds the oldest of them has waited
    std::chrono::steady_clock::time_point last_lost_check_{};  // dispatch_once's last look for lost messages
    std::mutex mutex_;
    std::condition_variable cv_;
    bool woken_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace mp3c::gateway
