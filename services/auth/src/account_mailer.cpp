#include "account_mailer.hpp"

#include <algorithm>

#include "mp3c/log.hpp"

namespace mp3c::auth {

namespace {
constexpr std::chrono::seconds kRetryDelays[] = {std::chrono::seconds(1), std::chrono::seconds(5)};
}

AccountMailer::AccountMailer(amqp::Options options, amqp::Topology topology,
                             metrics::Family<metrics::Counter>& outcomes, size_t capacity)
    : topology_(topology),
      publisher_(std::move(options), std::move(topology)),
      outcomes_(outcomes),
      capacity_(capacity),
      thread_([this](std::stop_token stop) { loop(stop); }) {}

AccountMailer::~AccountMailer() {
    thread_.request_stop();
    wake_.notify_all();
    thread_.join();
    if (!queue_.empty()) log::warn("account mails not sent at shutdown", {{"count", queue_.size()}});
}

bool AccountMailer::defer(std::string what, std::function<void()> work) {
    {
        std::lock_guard lock(mutex_);
        if (queue_.size() >= capacity_) {
            outcomes_.with({"refused"}).inc();
            return false;
        }
        queue_.push_back({std::move(what), std::move(work)});
    }
    wake_.notify_one();
    return true;
}

void AccountMailer::send(const messages::AccountMail& mail) {
    publisher_.publish(amqp::names::inbox(topology_.notification_account_queue), topology_.notification_account_queue,
                       {.body = mail.to_body(), .message_id = mail.mail_id, .correlation_id = mail.trace_id});
}

size_t AccountMailer::backlog() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void AccountMailer::loop(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
        if (queue_.empty()) {
            wake_.wait(lock, stop, [&] { return !queue_.empty(); });
            continue;
        }
        // The first piece that is due: one waiting for its retry does not hold back the others.
        auto now = std::chrono::steady_clock::now();
        auto due = std::find_if(queue_.begin(), queue_.end(), [&](const Work& w) { return w.not_before <= now; });
        if (due == queue_.end()) {
            auto earliest = std::min_element(queue_.begin(), queue_.end(), [](const Work& a, const Work& b) {
                                return a.not_before < b.not_before;
                            })->not_before;
            wake_.wait_until(lock, stop, earliest, [&, waiting = queue_.size()] { return queue_.size() != waiting; });
            continue;
        }
        Work work = std::move(*due);
        queue_.erase(due);
        lock.unlock();
        try {
            work.run();
        } catch (const std::exception& e) {
            if (work.attempt > static_cast<int>(std::size(kRetryDelays))) {
                outcomes_.with({"lost"}).inc();
                log::error("account mail given up", {{"what", work.what}, {"error", e.what()}});
            } else {
                outcomes_.with({"retried"}).inc();
                log::warn("account mail failed, trying again", {{"what", work.what}, {"error", e.what()}});
                work.not_before = std::chrono::steady_clock::now() + kRetryDelays[work.attempt - 1];
                ++work.attempt;
                lock.lock();
                queue_.push_back(std::move(work));
                continue;
            }
        }
        lock.lock();
    }
}

}  // namespace mp3c::auth
