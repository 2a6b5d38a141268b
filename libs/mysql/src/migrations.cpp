#include <algorithm>
#include <set>
#include <thread>

#include "mp3c/log.hpp"
#include "mp3c/mysql.hpp"

namespace mp3c::mysql {

namespace {
constexpr const char* kMigrationLock = "schema migration";
constexpr std::chrono::seconds kMigrationLease{300};
}  // namespace

void migrate(Pool& pool, const std::vector<Migration>& migrations) {
    auto ordered = migrations;
    std::sort(ordered.begin(), ordered.end(),
              [](const Migration& a, const Migration& b) { return a.version < b.version; });
    pool.with([&](Connection& c) {
        // One migrator at a time, across replicas and, on Galera, across nodes. A migrator that dies holding the
        // lease gives it up when it runs out (kMigrationLease); the others wait up to a minute at a time.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        const std::string holder = new_lease_holder();
        while (!try_lease(c, kMigrationLock, holder, kMigrationLease)) {
            if (std::chrono::steady_clock::now() > deadline) {
                throw Error(Error::kLockTimeout, "timed out waiting for the schema migration lock");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        try {
            c.run_ddl(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INT NOT NULL PRIMARY KEY,"
                " name VARCHAR(255) NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
            std::set<int64_t> applied;
            for (const auto& row : c.query("SELECT version FROM schema_migrations")) applied.insert(row.integer(0));
            for (const auto& m : ordered) {
                if (applied.count(m.version)) continue;
                // Renewed before each migration, so that only one statement longer than the lease could overlap
                // another migrator; one that finds it taken stops.
                if (!try_lease(c, kMigrationLock, holder, kMigrationLease)) {
                    throw Error(Error::kLockTimeout, "lost the schema migration lock to another migrator");
                }
                log::info("applying schema migration", {{"version", m.version}, {"name", m.name}});
                for (const auto& statement : m.statements) c.run_ddl(statement);
                c.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", {int64_t{m.version}, m.name});
            }
            if (!applied.empty() && !ordered.empty() && *applied.rbegin() > ordered.back().version) {
                log::warn("the database has migrations newer than this binary knows",
                          {{"database_version", *applied.rbegin()}, {"binary_version", ordered.back().version}});
            }
        } catch (...) {
            try {
                release_lease(c, kMigrationLock, holder);
            } catch (...) {
                // the connection failed: the lease runs out by itself
            }
            throw;
        }
        release_lease(c, kMigrationLock, holder);
    });
}

SchemaGuard::SchemaGuard(Pool& pool, std::vector<Migration> migrations)
    : pool_(pool), migrations_(std::move(migrations)), thread_([this] { loop(); }) {}

SchemaGuard::~SchemaGuard() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

bool SchemaGuard::wait_ready(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [this] { return ready_.load() || stopping_; });
    return ready_;
}

void SchemaGuard::loop() {
    auto backoff = std::chrono::milliseconds(250);
    std::string last_error;
    for (;;) {
        try {
            migrate(pool_, migrations_);
            {
                std::lock_guard lock(mutex_);
                ready_ = true;
            }
            cv_.notify_all();
            log::info("database schema ready", {{"database", pool_.options().database}});
            return;
        } catch (const std::exception& e) {
            if (e.what() != last_error) {
                log::warn("database schema not ready, retrying", {{"error", e.what()}, {"retry_ms", backoff.count()}});
                last_error = e.what();
            }
        }
        std::unique_lock lock(mutex_);
        if (cv_.wait_for(lock, backoff, [this] { return stopping_; })) return;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
}

}  // namespace mp3c::mysql
