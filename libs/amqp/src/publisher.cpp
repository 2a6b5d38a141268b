#include <algorithm>

#include "mp3c/amqp.hpp"
#include "mp3c/log.hpp"
#include "mp3c/settings.hpp"

namespace mp3c::amqp {

using namespace std::chrono_literals;

Options options_from_env(config::Env& env, const std::string& connection_name) {
    Options o;
    o.url = env.secret(settings::kUrl);
    o.heartbeat = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kHeartbeat));
    o.confirm_timeout = env.duration(settings::kConfirmTimeout);
    o.connection_name = connection_name;
    auto list = addresses(o.url);
    if (list.empty()) env.problem("AMQP_URL", "names no broker");
    for (const auto& address : list) {
        if (address.rfind("amqp://", 0) != 0) env.problem("AMQP_URL", "each address must start with amqp://");
    }
    return o;
}

Publisher::Publisher(Options options, std::optional<Topology> declare)
    : options_(std::move(options)), declare_(declare), keepalive_([this] { keepalive(); }) {}

Publisher::~Publisher() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    stop_cv_.notify_all();
    keepalive_.join();
    std::lock_guard lock(mutex_);
    connection_.reset();
}

Connection& Publisher::connection() {
    if (connection_) return *connection_;
    auto now = std::chrono::steady_clock::now();
    // While the broker is down, fail fast between attempts instead of making every request wait for a timeout.
    if (now < next_attempt_) throw Error("RabbitMQ unavailable: " + last_error_);
    try {
        auto c = std::make_unique<Connection>(options_);
        if (declare_) declare_topology(*c, *declare_);
        c->enable_confirms();
        connection_ = std::move(c);
        backoff_ = 0ms;
        log::info("connected to RabbitMQ", {{"connection", options_.connection_name}});
    } catch (const Error& e) {
        backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(250), std::chrono::milliseconds(10'000));
        next_attempt_ = now + backoff_;
        if (last_error_ != e.what()) log::warn("RabbitMQ connection failed", {{"error", e.what()}});
        last_error_ = e.what();
        throw;
    }
    return *connection_;
}

void Publisher::drop(const std::string& why) {
    if (!connection_) return;
    log::warn("RabbitMQ connection dropped", {{"error", why}});
    connection_.reset();
}

void Publisher::publish(const std::string& exchange, const std::string& routing_key, const Message& message) {
    std::lock_guard lock(mutex_);
    for (int attempt = 0;; ++attempt) {
        bool had_connection = connection_ != nullptr;
        try {
            connection().publish(exchange, routing_key, message);
            return;
        } catch (const Error& e) {
            drop(e.what());
            // A connection that had gone stale (the broker restarted) gets one fresh try; consumers are idempotent,
            // so a message that did arrive the first time is harmless.
            if (!had_connection || attempt > 0) throw;
        }
    }
}

std::optional<uint32_t> Publisher::queue_depth(const std::string& queue) {
    std::lock_guard lock(mutex_);
    try {
        return connection().queue_depth(queue);
    } catch (const Error& e) {
        drop(e.what());
        return std::nullopt;
    }
}

Check Publisher::check() {
    std::lock_guard lock(mutex_);
    try {
        connection().pump();
        return Ok{};
    } catch (const Error& e) {
        drop(e.what());
        return std::string("RabbitMQ unreachable: ") + e.what();
    }
}

void Publisher::keepalive() {
    auto interval = std::max(std::chrono::milliseconds(1000), std::chrono::milliseconds(options_.heartbeat) / 3);
    std::unique_lock lock(mutex_);
    while (!stop_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
        if (!connection_) continue;
        try {
            connection_->pump();  // sends and checks heartbeats on an idle connection
        } catch (const Error& e) {
            drop(e.what());
        }
    }
}

}  // namespace mp3c::amqp
