#include "login_throttle.hpp"

#include <algorithm>

namespace mp3c::auth {

namespace {

std::chrono::seconds seconds_until(int64_t from_ms, int64_t until_ms) {
    int64_t ms = std::max<int64_t>(until_ms - from_ms, 0);
    return std::chrono::seconds(std::max<int64_t>((ms + 999) / 1000, 1));  // rounded up, at least 1 s
}

// Column values as the database gives them (NULL when nothing matched).
int64_t integer_or_zero(const mysql::Row& row, size_t i) { return row.is_null(i) ? 0 : row.integer(i); }

}  // namespace

std::chrono::milliseconds account_delay(const ThrottleConfig& config, unsigned account_failures) {
    if (account_failures < config.account_slowdown_after) return std::chrono::milliseconds(0);
    unsigned doublings = std::min(account_failures - config.account_slowdown_after, 30u);
    auto delay = std::chrono::milliseconds(1000) * (int64_t{1} << doublings);
    return std::min<std::chrono::milliseconds>(delay, config.max_account_delay);
}

std::optional<Wait> wait_before_login(const ThrottleConfig& config, const FailureCounts& c) {
    const int64_t window_ms = std::chrono::milliseconds(config.window).count();
    if (c.client >= config.max_failures_per_client) {
        return Wait{Wait::Reason::client, seconds_until(c.now_ms, c.oldest_client_ms + window_ms)};
    }
    if (c.pair >= config.max_failures_per_account) {
        return Wait{Wait::Reason::account_from_client, seconds_until(c.now_ms, c.oldest_pair_ms + window_ms)};
    }
    // Only clients that have failed with the account are slowed down: the owner's clean device never is.
    if (c.pair > 0) {
        auto delay = account_delay(config, c.account).count();
        if (delay > 0 && c.now_ms < c.latest_account_ms + delay) {
            return Wait{Wait::Reason::account_slowed, seconds_until(c.now_ms, c.latest_account_ms + delay)};
        }
    }
    return std::nullopt;
}

// One row per failure: the account (a SHA-256 in hex), the client address, when.
const mysql::Migration kCreateLoginFailures{
    2,
    "create login_failures",
    {"CREATE TABLE login_failures (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, account VARCHAR(254) NOT"
     " NULL, client VARCHAR(64) NOT NULL, failed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), KEY"
     " login_failures_account (account, failed_at), KEY login_failures_client (client, failed_at), KEY "
     "login_failures_time (failed_at)) ENGINE=InnoDB"}};

std::vector<mysql::Migration> LoginThrottle::migrations() { return {kCreateLoginFailures}; }

std::optional<Wait> LoginThrottle::check(const std::string& account, const std::string& client) {
    auto window = std::to_string(config_.window.count());
    auto rows = pool_.with([&](mysql::Connection& c) {
        // One statement over both indexes: the client's rows and the account's rows within the window.
        return c.query(
            "SELECT FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000),"
            " COALESCE(SUM(client = ?), 0), FLOOR(UNIX_TIMESTAMP(MIN(IF(client = ?, failed_at, NULL))) * 1000),"
            " COALESCE(SUM(account = ? AND client = ?), 0),"
            " FLOOR(UNIX_TIMESTAMP(MIN(IF(account = ? AND client = ?, failed_at, NULL))) * 1000),"
            " COALESCE(SUM(account = ?), 0), FLOOR(UNIX_TIMESTAMP(MAX(IF(account = ?, failed_at, NULL))) * 1000)"
            " FROM login_failures"
            " WHERE (client = ? OR account = ?) AND failed_at > NOW(3) - INTERVAL " +
                window + " SECOND",
            {client, client, account, client, account, client, account, account, client, account});
    });
    const mysql::Row& row = rows.at(0);
    FailureCounts counts{.now_ms = row.integer(0),
                         .client = static_cast<unsigned>(integer_or_zero(row, 1)),
                         .oldest_client_ms = integer_or_zero(row, 2),
                         .pair = static_cast<unsigned>(integer_or_zero(row, 3)),
                         .oldest_pair_ms = integer_or_zero(row, 4),
                         .account = static_cast<unsigned>(integer_or_zero(row, 5)),
                         .latest_account_ms = integer_or_zero(row, 6)};
    return wait_before_login(config_, counts);
}

void LoginThrottle::record_failure(const std::string& account, const std::string& client) {
    auto window = std::to_string(config_.window.count());
    pool_.with([&](mysql::Connection& c) {
        c.execute("INSERT INTO login_failures (account, client) VALUES (?, ?)", {account, client});
        // Expired rows go a few at a time with every failure: the table holds about one window of failures.
        c.execute("DELETE FROM login_failures WHERE failed_at < NOW(3) - INTERVAL " + window +
                      " SECOND ORDER BY failed_at LIMIT 100",
                  {});
    });
}

void LoginThrottle::record_success(const std::string& account, const std::string& client) {
    pool_.with([&](mysql::Connection& c) {
        c.execute("DELETE FROM login_failures WHERE account = ? AND client = ?", {account, client});
    });
}

}  // namespace mp3c::auth
