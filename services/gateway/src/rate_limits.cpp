#include "rate_limits.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mp3c::gateway {

std::string client_key(const std::string& address) {
    in6_addr v6{};
    if (address.find(':') == std::string::npos || inet_pton(AF_INET6, address.c_str(), &v6) != 1) return address;
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char text[INET6_ADDRSTRLEN] = {};
    if (std::memcmp(v6.s6_addr, kMapped, sizeof kMapped) == 0) {
        inet_ntop(AF_INET, v6.s6_addr + 12, text, sizeof text);
        return text;
    }
    std::memset(v6.s6_addr + 8, 0, 8);
    inet_ntop(AF_INET6, &v6, text, sizeof text);
    return std::string(text) + "/64";
}

TokenBuckets::TokenBuckets(uint64_t per_period, std::chrono::seconds period, size_t max_keys)
    : per_period_(per_period),
      refill_per_second_(static_cast<double>(per_period) / static_cast<double>(std::max<int64_t>(1, period.count()))),
      max_keys_(max_keys) {}

std::optional<std::chrono::seconds> TokenBuckets::take(const std::string& key, Clock::time_point now) {
    if (per_period_ == 0) return std::nullopt;
    const double capacity = static_cast<double>(per_period_);
    std::lock_guard lock(mutex_);
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_keys_) forget_idle(now);
        it = buckets_.emplace(key, Bucket{capacity, now}).first;
    }
    Bucket& b = it->second;
    double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(capacity, b.tokens + std::max(0.0, elapsed) * refill_per_second_);
    b.updated = now;
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return std::nullopt;
    }
    double wait = (1.0 - b.tokens) / refill_per_second_;
    return std::chrono::seconds(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait))));
}

void TokenBuckets::forget_idle(Clock::time_point now) {
    const double capacity = static_cast<double>(per_period_);
    std::erase_if(buckets_, [&](const auto& entry) {
        double elapsed = std::chrono::duration<double>(now - entry.second.updated).count();
        return entry.second.tokens + elapsed * refill_per_second_ >= capacity;
    });
    // Every key still has a debt: too many addresses at once to remember them all. Forgetting them all lets those
    // clients start over, which is a smaller harm than refusing every new address.
    if (buckets_.size() >= max_keys_) buckets_.clear();
}

Slots::Slots(uint64_t max) : max_(max), state_(std::make_shared<State>()) {}

std::unique_ptr<Slots::Slot> Slots::acquire(const std::string& key) {
    std::lock_guard lock(state_->mutex);
    auto& held = state_->held[key];
    if (held >= max_) {
        if (held == 0) state_->held.erase(key);
        return nullptr;
    }
    ++held;
    return std::make_unique<Slot>(state_, key);
}

uint64_t Slots::held(const std::string& key) const {
    std::lock_guard lock(state_->mutex);
    auto it = state_->held.find(key);
    return it == state_->held.end() ? 0 : it->second;
}

Slots::Slot::~Slot() {
    std::lock_guard lock(state_->mutex);
    auto it = state_->held.find(key_);
    if (it != state_->held.end() && --it->second == 0) state_->held.erase(it);
}

}  // namespace mp3c::gateway
