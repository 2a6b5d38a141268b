#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "mp3c/amqp.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/metrics.hpp"

namespace mp3c::auth {

// Sends the account mails (verification, reset, someone-tried-to-register) by publishing them to
// `notification.account`, and runs the work that decides on them after the HTTP answer has gone: sign-up and reset
// answer the same, in the same time, whether the address has an account or not, because what differs happens here.
// A failed piece of work (the database or RabbitMQ unavailable) is tried twice more, 1 s and 5 s later.
class AccountMailer {
  public:
    AccountMailer(amqp::Options options, amqp::Topology topology, metrics::Family<metrics::Counter>& outcomes,
                  size_t capacity = 1000);
    ~AccountMailer();
    AccountMailer(const AccountMailer&) = delete;
    AccountMailer& operator=(const AccountMailer&) = delete;

    // Queues work; false when `capacity` pieces wait already (the caller answers 503).
    bool defer(std::string what, std::function<void()> work);
    // Publishes the mail, confirmed. Throws amqp::Error.
    void send(const messages::AccountMail& mail);
    size_t backlog() const;

  private:
    struct Work {
        std::string what;
        std::function<void()> run;
        int attempt = 1;
        std::chrono::steady_clock::time_point not_before{};
    };
    void loop(std::stop_token stop);

    amqp::Topology topology_;
    amqp::Publisher publisher_;
    metrics::Family<metrics::Counter>& outcomes_;
    size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable_any wake_;
    std::deque<Work> queue_;
    std::jthread thread_;
};

}  // namespace mp3c::auth
