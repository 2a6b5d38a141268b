#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "mp3c/config.hpp"
#include "mp3c/result.hpp"

// MariaDB access through MariaDB Connector/C: RAII handles, prepared statements only, a small pool that recovers
// after the server restarts, and versioned migrations.
namespace mp3c::mysql {

struct Options {
    // One server, or the nodes of a Galera cluster separated by commas, each `host` or `host:port` (else `port`):
    // a connection goes to the first that accepts, in the order given, so that every replica of a service writes
    // through the same node while it lives (no certification conflicts between nodes) and moves on when it dies.
    std::string host = "127.0.0.1";
    uint16_t port = 3306;
    std::string user;
    std::string password;
    std::string database;
    std::chrono::seconds connect_timeout{5};
    std::chrono::seconds read_timeout{30};
    std::chrono::seconds write_timeout{30};
    size_t pool_size = 8;
    std::chrono::milliseconds acquire_timeout{5000};
};

// MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD (or MYSQL_PASSWORD_FILE), MYSQL_DB, MYSQL_POOL_SIZE,
// MYSQL_CONNECT_TIMEOUT, MYSQL_QUERY_TIMEOUT.
Options options_from_env(config::Env& env, const std::string& default_database);

struct Endpoint {
    std::string host;
    uint16_t port = 0;
    bool operator==(const Endpoint&) const = default;
};
// The servers Options::host names, in order; nullopt when an entry is empty or its port is not a port.
std::optional<std::vector<Endpoint>> endpoints(const std::string& hosts, uint16_t default_port);

// An infrastructure failure (server unreachable, connection lost, statement error). Domain outcomes such as a
// duplicate key are recognised by code().
class Error : public std::runtime_error {
  public:
    // Codes of this library's own errors; the server's start at 1000, the client library's at 2000.
    static constexpr unsigned kPoolExhausted = 1;  // unavailable: every connection stayed busy
    static constexpr unsigned kLockTimeout = 2;    // unavailable: the migration lock was not granted in time
    static constexpr unsigned kMisuse = 3;         // a bug: wrong parameter count, NULL read as a value

    Error(unsigned code, const std::string& message) : std::runtime_error(message), code_(code) {}
    unsigned code() const { return code_; }
    // The connection is unusable (or the server is unreachable): the service should answer 503.
    bool unavailable() const;
    bool duplicate_key() const { return code_ == 1062; }
    // InnoDB chose this transaction as a deadlock victim and rolled all of it back: running it again is the cure.
    bool deadlock() const { return code_ == 1213; }

  private:
    unsigned code_;
};

using Value = std::variant<std::nullptr_t, int64_t, uint64_t, double, std::string>;
using Params = std::vector<Value>;

class Row {
  public:
    explicit Row(std::vector<std::optional<std::string>> columns) : columns_(std::move(columns)) {}
    size_t size() const { return columns_.size(); }
    bool is_null(size_t i) const { return !columns_.at(i).has_value(); }
    const std::string& text(size_t i) const;  // throws for NULL
    std::optional<std::string> optional_text(size_t i) const { return columns_.at(i); }
    int64_t integer(size_t i) const;
    uint64_t unsigned_integer(size_t i) const;
    double real(size_t i) const;

  private:
    std::vector<std::optional<std::string>> columns_;
};

struct ConnectionHandles;

// One server connection with its cache of prepared statements. Not thread-safe: one user at a time (the pool sees
// to that).
class Connection {
  public:
    explicit Connection(const Options& options);  // throws Error
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // A prepared statement returning rows.
    std::vector<Row> query(const std::string& sql, const Params& params = {});
    // A prepared statement changing rows; returns the number of affected rows.
    uint64_t execute(const std::string& sql, const Params& params = {});
    uint64_t last_insert_id() const { return last_insert_id_; }
    // Plain text protocol, for constant DDL in migrations only (never with user data).
    void run_ddl(const std::string& sql);
    bool ping();

    void begin();
    void commit();
    void rollback();

    std::chrono::steady_clock::time_point last_used;

  private:
    struct Statement;
    Statement& prepare(const std::string& sql);
    [[noreturn]] void fail(const std::string& what);

    std::unique_ptr<ConnectionHandles> handles_;
    std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
    uint64_t last_insert_id_ = 0;
};

class Pool {
  public:
    explicit Pool(Options options);
    ~Pool();

    class Lease {
      public:
        Lease(Pool* pool, std::unique_ptr<Connection> c) : pool_(pool), connection_(std::move(c)) {}
        Lease(Lease&& other) noexcept
            : pool_(std::exchange(other.pool_, nullptr)), connection_(std::move(other.connection_)) {}
        Lease& operator=(Lease&&) = delete;
        ~Lease();
        Connection& operator*() { return *connection_; }
        Connection* operator->() { return connection_.get(); }
        // Closes the connection instead of returning it (after it failed).
        void discard() { connection_.reset(); }

      private:
        Pool* pool_;
        std::unique_ptr<Connection> connection_;
    };

    // A healthy connection: an idle one (pinged first when it sat unused for a while) or a new one. Throws Error when
    // the server is unreachable or every connection stays busy for acquire_timeout.
    Lease acquire();

    // Runs f(Connection&) on a pooled connection; a connection that failed is discarded rather than reused.
    template <class F>
    auto with(F&& f) {
        Lease lease = acquire();
        try {
            return f(*lease);
        } catch (const Error& e) {
            if (e.unavailable()) lease.discard();
            throw;
        } catch (...) {
            lease.discard();  // mid-statement state is unknown
            throw;
        }
    }

    // A round trip to the server; nullopt when healthy, else the reason.
    Check check();  // Ok, or why the database cannot be used

    const Options& options() const { return options_; }
    size_t open_connections() const { return open_.load(); }

  private:
    void release(std::unique_ptr<Connection> c);

    Options options_;
    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<Connection>> idle_;
    std::atomic<size_t> open_{0};
};

// A named lock shared by every replica of a service, which works on a Galera cluster too (GET_LOCK does not: with
// wsrep on, MariaDB refuses it, MDEV-30473): a row of the table mp3c_leases, held until released or until `ttl` has
// passed, so that a holder that died gives it up when its lease runs out. `holder` names the taker
// (new_lease_holder()).
// True when taken (or already held by `holder`, whose lease is then renewed); false when another holds it, including
// when two nodes of a cluster granted it at once and this one lost the certification.
bool try_lease(Connection& c, const std::string& name, const std::string& holder, std::chrono::seconds ttl);
void release_lease(Connection& c, const std::string& name, const std::string& holder);
// A new, random name for one taker of a lease (one migration, one sweep): two takers in one process are two holders.
std::string new_lease_holder();

// Runs f() inside a transaction on c: committed when f returns, rolled back when it throws. A transaction chosen as
// a deadlock victim was rolled back whole by the server, so it is run again, up to `attempts` times in all: f must
// touch nothing but the database (or only things that are safe to repeat).
template <class F>
auto in_transaction(Connection& c, F&& f, int attempts = 3) {
    for (int attempt = 1;; ++attempt) {
        c.begin();
        try {
            auto result = f();
            c.commit();
            return result;
        } catch (const Error& e) {
            try {
                c.rollback();
            } catch (...) {
                throw e;  // the connection failed: the pool discards it, and the server rolls back
            }
            if (!e.deadlock() || attempt >= attempts) throw;
        } catch (...) {
            try {
                c.rollback();
            } catch (...) {
                // As above: the original error is the one worth reporting.
            }
            throw;
        }
    }
}

struct Migration {
    int version;
    std::string name;
    std::vector<std::string> statements;
};

// Applies the migrations not yet recorded in `schema_migrations`, in version order, under a named lock so that
// replicas starting together apply each once. Throws Error.
void migrate(Pool& pool, const std::vector<Migration>& migrations);

// Keeps trying to migrate in the background until it succeeds, so that a service can start while its database is
// still down (it answers 503 meanwhile) and recover by itself.
class SchemaGuard {
  public:
    SchemaGuard(Pool& pool, std::vector<Migration> migrations);
    ~SchemaGuard();
    bool ready() const { return ready_.load(); }
    // Blocks until the schema is ready or the timeout passes; returns ready().
    bool wait_ready(std::chrono::milliseconds timeout);

  private:
    void loop();
    Pool& pool_;
    std::vector<Migration> migrations_;
    std::atomic<bool> ready_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace mp3c::mysql
