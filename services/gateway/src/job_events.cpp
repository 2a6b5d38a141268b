#include "job_events.hpp"

namespace mp3c::gateway {

namespace {
int rank(JobStatus s) {
    switch (s) {
        case JobStatus::queued:
            return 0;
        case JobStatus::processing:
            return 1;
        default:
            return 2;
    }
}
}  // namespace

bool advances(const Job& job, const StatusEvent& event) {
    if (rank(event.status) != rank(job.status)) return rank(event.status) > rank(job.status);
    return event.status == JobStatus::processing && event.progress > job.progress;
}

void apply_to(Job& job, const StatusEvent& event) {
    job.status = event.status;
    job.progress = event.status == JobStatus::done ? 100 : std::max(job.progress, event.progress);
    if (event.mp3_fid) job.mp3_fid = event.mp3_fid;
    if (event.mp3_size) job.mp3_size = event.mp3_size;
    if (event.duration_ms) job.duration_ms = event.duration_ms;
    if (event.error) job.error = event.error;
    if (event.reason) job.reason = event.reason;
    if (event.at_ms) job.updated_ms = event.at_ms;
}

void JobEventHub::update(const StatusEvent& event) {
    std::lock_guard lock(mutex_);
    auto it = latest_.find(event.job_id);
    if (it == latest_.end()) {
        latest_.emplace(event.job_id, event);
        order_.push_back(event.job_id);
        while (latest_.size() > capacity_ && !order_.empty()) {
            latest_.erase(order_.front());
            order_.pop_front();
        }
        return;
    }
    // Keep the most advanced state: two consumers feed the hub and may deliver out of order.
    Job current;
    current.status = it->second.status;
    current.progress = it->second.progress;
    if (advances(current, event)) it->second = event;
}

std::optional<StatusEvent> JobEventHub::latest(const std::string& job_id) const {
    std::lock_guard lock(mutex_);
    auto it = latest_.find(job_id);
    if (it == latest_.end()) return std::nullopt;
    return it->second;
}

std::string JobEventStream::event() {
    last_write_ = std::chrono::steady_clock::now();
    if (is_terminal(job_.status)) finished_ = true;
    return "event: status\ndata: " + job_.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
           "\n\n";
}

std::optional<std::string> JobEventStream::poll() {
    if (!started_) {
        started_ = true;
        return "retry: 2000\n" + event();
    }
    if (finished_) return std::nullopt;
    if (auto latest = hub_.latest(job_.id); latest && advances(job_, *latest)) {
        apply_to(job_, *latest);
        return event();
    }
    if (std::chrono::steady_clock::now() - last_write_ > std::chrono::seconds(15)) {
        last_write_ = std::chrono::steady_clock::now();
        return std::string(": keep-alive\n\n");
    }
    return std::string();
}

}  // namespace mp3c::gateway
