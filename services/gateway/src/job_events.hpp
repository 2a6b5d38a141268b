#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "job_store.hpp"
#include "mp3c/http.hpp"

namespace mp3c::gateway {

// The latest status event of each recent job, fed by the status consumers, read by the event streams. Bounded: the
// oldest entries are forgotten first.
class JobEventHub {
  public:
    explicit JobEventHub(size_t capacity = 100'000) : capacity_(capacity) {}
    void update(const StatusEvent& event);
    std::optional<StatusEvent> latest(const std::string& job_id) const;

  private:
    size_t capacity_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, StatusEvent> latest_;
    std::deque<std::string> order_;
};

// GET /jobs/{id}/events: the job's state now, then every change, as Server-Sent Events (`event: status`, the job
// as JSON), until the job ends; a comment every 15 s keeps proxies from closing the stream.
class JobEventStream : public http::EventStream {
  public:
    JobEventStream(const JobEventHub& hub, Job job) : hub_(hub), job_(std::move(job)) {}
    std::optional<std::string> poll() override;

  private:
    std::string event();
    const JobEventHub& hub_;
    Job job_;
    bool started_ = false;
    bool finished_ = false;
    std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
};

// Whether `event` moves `job` forward (statuses only advance; progress only grows while processing).
bool advances(const Job& job, const StatusEvent& event);
void apply_to(Job& job, const StatusEvent& event);

}  // namespace mp3c::gateway
