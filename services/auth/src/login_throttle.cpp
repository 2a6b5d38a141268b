#include "login_throttle.hpp"

#include <algorithm>

namespace mp3c::auth {

namespace {
std::string account_key(const std::string& account) { return "account:" + account; }
std::string client_key(const std::string& client) { return "client:" + client; }
}  // namespace

LoginThrottle::LoginThrottle(ThrottleConfig config, std::function<Clock::time_point()> now)
    : config_(config), now_(std::move(now)) {}

std::optional<std::chrono::seconds> LoginThrottle::blocked_for(const std::string& key, unsigned limit,
                                                               Clock::time_point now) {
    auto it = failures_.find(key);
    if (it == failures_.end()) return std::nullopt;
    auto& times = it->second;
    while (!times.empty() && times.front() + config_.window <= now) times.pop_front();
    if (times.empty()) {
        failures_.erase(it);
        return std::nullopt;
    }
    if (times.size() < limit) return std::nullopt;
    // Free again when enough of the window's failures have aged out to go below the limit.
    auto frees_at = times[times.size() - limit] + config_.window;
    auto wait = std::chrono::ceil<std::chrono::seconds>(frees_at - now);
    return std::max(wait, std::chrono::seconds(1));
}

std::optional<std::chrono::seconds> LoginThrottle::retry_after(const std::string& account, const std::string& client) {
    std::lock_guard lock(mutex_);
    auto now = now_();
    auto a = blocked_for(account_key(account), config_.max_failures_per_account, now);
    auto c = blocked_for(client_key(client), config_.max_failures_per_client, now);
    if (a && c) return std::max(*a, *c);
    return a ? a : c;
}

void LoginThrottle::add(const std::string& key, Clock::time_point now) {
    auto& times = failures_[key];
    times.push_back(now);
    // Only the newest `limit` failures matter; keep a few more than the larger limit.
    size_t keep = std::max(config_.max_failures_per_account, config_.max_failures_per_client) + 1;
    while (times.size() > keep) times.pop_front();
}

void LoginThrottle::prune(Clock::time_point now) {
    for (auto it = failures_.begin(); it != failures_.end();) {
        if (it->second.empty() || it->second.back() + config_.window <= now) {
            it = failures_.erase(it);
        } else {
            ++it;
        }
    }
    // Still too many live keys: forget those whose last failure is oldest.
    while (!failures_.empty() && failures_.size() + 2 > config_.max_tracked_keys) {
        auto oldest = std::min_element(failures_.begin(), failures_.end(),
                                       [](const auto& a, const auto& b) { return a.second.back() < b.second.back(); });
        failures_.erase(oldest);
    }
}

void LoginThrottle::record_failure(const std::string& account, const std::string& client) {
    std::lock_guard lock(mutex_);
    auto now = now_();
    if (failures_.size() + 2 > config_.max_tracked_keys) prune(now);
    add(account_key(account), now);
    add(client_key(client), now);
}

void LoginThrottle::record_success(const std::string& account) {
    std::lock_guard lock(mutex_);
    failures_.erase(account_key(account));
}

size_t LoginThrottle::tracked_keys() {
    std::lock_guard lock(mutex_);
    return failures_.size();
}

}  // namespace mp3c::auth
