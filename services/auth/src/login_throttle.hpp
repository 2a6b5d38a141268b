#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/mysql.hpp"

namespace mp3c::auth {

// Login throttling that stops guessing without letting a stranger lock an owner out (OWASP ASVS V2.2, NIST SP
// 800-63B 5.2.2):
// - a client address that failed too often (with any accounts) is refused for a while: it is guessing;
// - one client that failed too often with one account is refused for that account;
// - across all clients an account only slows down: once it has failed `account_slowdown_after` times, clients that
//   have failed with it must wait a delay between attempts that doubles with each failure, up to
//   `max_account_delay`. A client with no failures on the account is never held back, so the owner signs in from
//   their own device whatever strangers do elsewhere.
// Failures are counted over a sliding window.
struct ThrottleConfig {
    unsigned max_failures_per_account = 5;  // per (account, client)
    unsigned max_failures_per_client = 20;
    unsigned account_slowdown_after = 5;  // failures of an account, from all clients
    std::chrono::seconds window{15 * 60};
    std::chrono::seconds max_account_delay{30};
};

// What the records say of one login attempt's account and client, within the window. Times are milliseconds on one
// clock (the database's), so that replicas agree.
struct FailureCounts {
    int64_t now_ms = 0;
    unsigned client = 0;           // failures from the client, with any account
    int64_t oldest_client_ms = 0;  // the oldest of them
    unsigned pair = 0;             // failures of the account from the client
    int64_t oldest_pair_ms = 0;
    unsigned account = 0;           // failures of the account, from every client
    int64_t latest_account_ms = 0;  // the newest of them
};

// Why an attempt waits, and how long.
struct Wait {
    enum class Reason { client, account_from_client, account_slowed } reason;
    std::chrono::seconds seconds;
};

// The decision on one attempt: nullopt when it may be tried now. Pure, for unit tests.
std::optional<Wait> wait_before_login(const ThrottleConfig& config, const FailureCounts& counts);
// The spacing an account's failures impose on clients that have failed with it.
std::chrono::milliseconds account_delay(const ThrottleConfig& config, unsigned account_failures);

// The throttle's records, in the auth database (table login_failures), shared by every auth replica.
class LoginThrottle {
  public:
    LoginThrottle(mysql::Pool& pool, ThrottleConfig config) : pool_(pool), config_(config) {}
    static std::vector<mysql::Migration> migrations();  // continue UserStore's numbering

    std::optional<Wait> check(const std::string& account, const std::string& client);
    void record_failure(const std::string& account, const std::string& client);
    // A successful login forgets this client's failures with the account (not other clients': they may be guessing).
    void record_success(const std::string& account, const std::string& client);
    const ThrottleConfig& config() const { return config_; }

  private:
    mysql::Pool& pool_;
    ThrottleConfig config_;
};

}  // namespace mp3c::auth
