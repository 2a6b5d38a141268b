#include "mp3c/log.hpp"
#include "mp3c/mysql.hpp"
#include "mp3c/settings.hpp"

namespace mp3c::mysql {

namespace {
// A connection unused for longer than this is pinged before it is handed out: the server may have restarted.
constexpr auto kStaleAfter = std::chrono::seconds(2);
}  // namespace

Options options_from_env(config::Env& env, const std::string& default_database) {
    Options o;
    o.host = env.text(settings::kHost);
    o.port = env.port(settings::kPort);
    if (!endpoints(o.host, o.port)) {
        env.problem(std::string(settings::kHost.name), "must be host or host:port, or several separated by commas");
    }
    o.user = env.text(settings::kUser);
    o.password = env.secret(settings::kPassword);
    o.database = env.text(settings::kDatabase, default_database);
    o.pool_size = static_cast<size_t>(env.integer(settings::kPoolSize));
    o.connect_timeout = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kConnectTimeout));
    o.read_timeout = o.write_timeout =
        std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kQueryTimeout));
    return o;
}

Pool::Pool(Options options) : options_(std::move(options)) {}

Pool::~Pool() = default;

Pool::Lease::~Lease() {
    if (pool_ != nullptr) pool_->release(std::move(connection_));
}

Pool::Lease Pool::acquire() {
    auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
    std::unique_lock lock(mutex_);
    for (;;) {
        if (!idle_.empty()) {
            auto connection = std::move(idle_.back());
            idle_.pop_back();
            lock.unlock();
            if (std::chrono::steady_clock::now() - connection->last_used < kStaleAfter || connection->ping()) {
                return Lease(this, std::move(connection));
            }
            connection.reset();  // dead (server restarted): open a fresh one instead
            lock.lock();
            --open_;
            continue;
        }
        if (open_ < options_.pool_size) {
            ++open_;
            lock.unlock();
            try {
                return Lease(this, std::make_unique<Connection>(options_));
            } catch (...) {
                lock.lock();
                --open_;
                available_.notify_one();
                throw;
            }
        }
        if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            open_ >= options_.pool_size) {
            throw Error(Error::kPoolExhausted,
                        "all " + std::to_string(options_.pool_size) + " database connections stayed busy");
        }
    }
}

void Pool::release(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex_);
    if (connection) {
        idle_.push_back(std::move(connection));
    } else {
        --open_;
    }
    available_.notify_one();
}

Check Pool::check() {
    try {
        with([](Connection& c) { c.query("SELECT 1"); });
        return Ok{};
    } catch (const std::exception& e) {
        return std::string("database unreachable: ") + e.what();
    }
}

}  // namespace mp3c::mysql
