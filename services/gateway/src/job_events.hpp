#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "job_store.hpp"
#include "mp3c/http.hpp"
#include "rate_limits.hpp"

namespace mp3c::gateway {

// The latest status event of each recent job, fed by the status consumers, read by the event streams, which it wakes
// when their job changes (pushed, not polled). Bounded: the oldest entries are forgotten first.
class JobEventHub {
  public:
    explicit JobEventHub(size_t capacity = 100'000);
    void update(const StatusEvent& event);
    std::optional<StatusEvent> latest(const std::string& job_id) const;

    // Calls `wake` (outside the hub's lock) after each update of the job, until the subscription is destroyed. It may
    // outlive the hub.
    class Subscription;
    std::unique_ptr<Subscription> subscribe(const std::string& job_id, std::function<void()> wake);

  private:
    struct Listeners;
    size_t capacity_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, StatusEvent> latest_;
    std::deque<std::string> order_;
    std::shared_ptr<Listeners> listeners_;
};

class JobEventHub::Subscription {
  public:
    Subscription(std::shared_ptr<Listeners> listeners, std::string job_id, uint64_t id)
        : listeners_(std::move(listeners)), job_id_(std::move(job_id)), id_(id) {}
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription();

  private:
    std::shared_ptr<Listeners> listeners_;
    std::string job_id_;
    uint64_t id_;
};

// GET /jobs/{id}/events: the job's state now, then every change, as Server-Sent Events (`event: status`, the job
// as JSON, `id:` its state), until the job ends or the stream's lifetime is over (the client then reconnects with
// Last-Event-ID; a state it has already seen is not sent again). A comment every 15 s keeps proxies from closing it.
class JobEventStream : public http::EventStream {
  public:
    using Clock = std::chrono::steady_clock;
    // `slot` is the caller's open-stream slot, given back when the stream ends.
    JobEventStream(JobEventHub& hub, Job job, std::unique_ptr<Slots::Slot> slot, std::chrono::milliseconds lifetime,
                   std::string last_event_id = {});
    std::optional<std::string> poll() override;
    void on_wake(std::function<void()> wake) override;
    // The event id of a job's state: "status.progress".
    static std::string event_id(const Job& job);

  private:
    std::string event();
    JobEventHub& hub_;
    Job job_;
    std::unique_ptr<Slots::Slot> slot_;
    std::unique_ptr<JobEventHub::Subscription> subscription_;
    Clock::time_point ends_at_;
    std::string last_event_id_;
    std::string sent_id_;  // the state the client has
    bool started_ = false;
    bool finished_ = false;
    Clock::time_point last_write_ = Clock::now();
};

// Whether `event` moves `job` forward (statuses only advance; progress only grows while processing).
bool advances(const Job& job, const StatusEvent& event);
void apply_to(Job& job, const StatusEvent& event);

}  // namespace mp3c::gateway
