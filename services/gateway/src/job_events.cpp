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
    if (event.loudness) job.loudness = event.loudness;
    if (event.parts) {
        job.parts = messages::parts_from_json(nlohmann::json::parse(*event.parts, nullptr, false)).value_or(job.parts);
    }
    if (event.error) job.error = event.error;
    if (event.reason) job.reason = event.reason;
    if (event.at_ms) job.updated_ms = event.at_ms;
}

struct JobEventHub::Listeners {
    std::mutex mutex;
    uint64_t next_id = 1;
    std::unordered_multimap<std::string, std::pair<uint64_t, std::function<void()>>> by_job;
};

JobEventHub::JobEventHub(size_t capacity) : capacity_(capacity), listeners_(std::make_shared<Listeners>()) {}

void JobEventHub::update(const StatusEvent& event) {
    {
        std::lock_guard lock(mutex_);
        auto it = latest_.find(event.job_id);
        if (it == latest_.end()) {
            latest_.emplace(event.job_id, event);
            order_.push_back(event.job_id);
            while (latest_.size() > capacity_ && !order_.empty()) {
                latest_.erase(order_.front());
                order_.pop_front();
            }
        } else {
            // Keep the most advanced state: two consumers feed the hub and may deliver out of order.
            // A queued event is a retry: the failure heard before is over.
            Job current;
            current.status = it->second.status;
            current.progress = it->second.progress;
            if (event.status != JobStatus::queued && !advances(current, event)) return;
            it->second = event;
        }
    }
    std::vector<std::function<void()>> wake;
    {
        std::lock_guard lock(listeners_->mutex);
        auto [first, last] = listeners_->by_job.equal_range(event.job_id);
        for (auto it = first; it != last; ++it) wake.push_back(it->second.second);
    }
    for (auto& w : wake) w();
}

std::optional<StatusEvent> JobEventHub::latest(const std::string& job_id) const {
    std::lock_guard lock(mutex_);
    auto it = latest_.find(job_id);
    if (it == latest_.end()) return std::nullopt;
    return it->second;
}

std::unique_ptr<JobEventHub::Subscription> JobEventHub::subscribe(const std::string& job_id,
                                                                  std::function<void()> wake) {
    std::lock_guard lock(listeners_->mutex);
    uint64_t id = listeners_->next_id++;
    listeners_->by_job.emplace(job_id, std::pair{id, std::move(wake)});
    return std::make_unique<Subscription>(listeners_, job_id, id);
}

JobEventHub::Subscription::~Subscription() {
    std::lock_guard lock(listeners_->mutex);
    auto [first, last] = listeners_->by_job.equal_range(job_id_);
    for (auto it = first; it != last; ++it) {
        if (it->second.first == id_) {
            listeners_->by_job.erase(it);
            return;
        }
    }
}

JobEventStream::JobEventStream(JobEventHub& hub, Job job, std::unique_ptr<Slots::Slot> slot,
                               std::chrono::milliseconds lifetime, std::string last_event_id)
    : hub_(hub),
      job_(std::move(job)),
      slot_(std::move(slot)),
      ends_at_(Clock::now() + lifetime),
      last_event_id_(std::move(last_event_id)) {}

std::string JobEventStream::event_id(const Job& job) {
    return to_string(job.status) + "." + std::to_string(job.progress);
}

void JobEventStream::on_wake(std::function<void()> wake) { subscription_ = hub_.subscribe(job_.id, std::move(wake)); }

std::string JobEventStream::event() {
    last_write_ = Clock::now();
    sent_id_ = event_id(job_);
    if (is_terminal(job_.status)) finished_ = true;
    return "id: " + event_id(job_) +
           "\nevent: status\ndata: " + job_.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
           "\n\n";
}

std::optional<std::string> JobEventStream::poll() {
    if (auto latest = hub_.latest(job_.id); latest && advances(job_, *latest)) apply_to(job_, *latest);
    if (!started_) {
        started_ = true;
        // A client that reconnects with the state it has seen gets only what comes after it.
        if (!last_event_id_.empty() && last_event_id_ == event_id(job_)) {
            if (is_terminal(job_.status)) finished_ = true;
            last_write_ = Clock::now();
            sent_id_ = last_event_id_;
            return std::string("retry: 2000\n\n");
        }
        return "retry: 2000\n" + event();
    }
    if (finished_ || Clock::now() >= ends_at_) return std::nullopt;
    if (event_id(job_) != sent_id_) return event();
    if (Clock::now() - last_write_ > std::chrono::seconds(15)) {
        last_write_ = Clock::now();
        return std::string(": keep-alive\n\n");
    }
    return std::string();
}

}  // namespace mp3c::gateway
