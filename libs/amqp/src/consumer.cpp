#include <algorithm>
#include <future>

#include "mp3c/amqp.hpp"
#include "mp3c/log.hpp"

namespace mp3c::amqp {

using namespace std::chrono_literals;

Consumer::Consumer(Options options, Setup setup, uint16_t prefetch, Handler handler)
    : options_(std::move(options)), setup_(std::move(setup)), prefetch_(prefetch), handler_(std::move(handler)) {}

Consumer::~Consumer() { stop(); }

void Consumer::start() {
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
}

void Consumer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Consumer::run() {
    auto backoff = std::chrono::milliseconds(250);
    auto pause = [this](std::chrono::milliseconds d) {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, d, [this] { return stopping_.load(); });
    };
    while (!stopping_) {
        try {
            Connection connection(options_);
            std::string queue = setup_(connection);
            connection.consume(queue, prefetch_);
            connected_ = true;
            backoff = 250ms;
            log::info("consuming", {{"queue", queue}, {"connection", options_.connection_name}});
            while (!stopping_) {
                auto delivery = connection.next(500ms);  // waiting also keeps heartbeats going
                if (!delivery) continue;
                Outcome outcome;
                try {
                    if (keep_alive_during_handler_) {
                        auto work = std::async(std::launch::async, [this, &delivery] { return handler_(*delivery); });
                        std::exception_ptr lost;
                        while (work.wait_for(std::chrono::seconds(1)) != std::future_status::ready) {
                            try {
                                if (!lost) connection.pump();
                            } catch (...) {
                                lost = std::current_exception();  // the work goes on; its message is redelivered
                            }
                        }
                        outcome = work.get();
                        if (lost) std::rethrow_exception(lost);
                    } else {
                        outcome = handler_(*delivery);
                    }
                } catch (const Error&) {
                    throw;  // the connection is gone: reconnect below
                } catch (const std::exception& e) {
                    log::warn("message handler failed: requeueing", {{"queue", queue}, {"error", e.what()}});
                    pause(1s);  // an outage behind the handler must not turn into a hot redelivery loop
                    outcome = Outcome::requeue;
                }
                switch (outcome) {
                    case Outcome::ack:
                        connection.ack(delivery->delivery_tag);
                        break;
                    case Outcome::requeue:
                        connection.reject(delivery->delivery_tag, true);
                        break;
                    case Outcome::dead_letter:
                        connection.reject(delivery->delivery_tag, false);
                        break;
                }
            }
        } catch (const Error& e) {
            bool was_connected = connected_.exchange(false);
            log::warn("consumer connection failed, retrying",
                      {{"error", e.what()}, {"retry_ms", backoff.count()}, {"was_connected", was_connected}});
            pause(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
        }
    }
    connected_ = false;
}

}  // namespace mp3c::amqp
