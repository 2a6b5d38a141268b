#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace mp3c::auth {

struct ThrottleConfig {
    unsigned max_failures_per_account = 5;
    unsigned max_failures_per_client = 20;
    std::chrono::seconds window{15 * 60};
    size_t max_tracked_keys = 100'000;  // bounds memory under a spray of distinct names or addresses
};

// Refuses logins for an account, or from a client address, that failed too often within a sliding window. An
// account's limit affects only that account, a client's only that client: others keep logging in.
class LoginThrottle {
  public:
    using Clock = std::chrono::steady_clock;
    explicit LoginThrottle(ThrottleConfig config, std::function<Clock::time_point()> now = Clock::now);

    // nullopt when a login may be tried, else how long to wait.
    std::optional<std::chrono::seconds> retry_after(const std::string& account, const std::string& client);
    void record_failure(const std::string& account, const std::string& client);
    // A successful login clears the account's failures (the client's remain: it may be guessing other accounts).
    void record_success(const std::string& account);
    size_t tracked_keys();

  private:
    std::optional<std::chrono::seconds> blocked_for(const std::string& key, unsigned limit, Clock::time_point now);
    void add(const std::string& key, Clock::time_point now);
    void prune(Clock::time_point now);

    ThrottleConfig config_;
    std::function<Clock::time_point()> now_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::deque<Clock::time_point>> failures_;
};

}  // namespace mp3c::auth
