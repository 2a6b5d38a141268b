#pragma once

// In-memory limits per key (a client address, a user): rates as token buckets, and counted slots for what one key may
// hold at once (uploads in progress, open event streams). Per gateway replica; thread-safe; bounded in memory.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace mp3c::gateway {

// The key a client address is limited under: the address itself, or for IPv6 its /64 (one subscriber's network:
// anyone given one can use all its addresses). An IPv4-mapped IPv6 address counts as the IPv4 address.
std::string client_key(const std::string& address);

// At most `per_period` requests per key per `period`, as a bucket of that many tokens refilled evenly over the period
// (so a burst of the whole allowance, then one request per period/per_period).
class TokenBuckets {
  public:
    using Clock = std::chrono::steady_clock;
    // per_period 0: no limit. At most max_keys buckets are kept; past that the idle ones (full again) are forgotten.
    TokenBuckets(uint64_t per_period, std::chrono::seconds period, size_t max_keys = 100'000);

    // nullopt: allowed (a token is taken). Else refused: seconds until a token is back (at least 1).
    std::optional<std::chrono::seconds> take(const std::string& key, Clock::time_point now = Clock::now());
    uint64_t per_period() const { return per_period_; }

  private:
    struct Bucket {
        double tokens;
        Clock::time_point updated;
    };
    void forget_idle(Clock::time_point now);

    uint64_t per_period_;
    double refill_per_second_;
    size_t max_keys_;
    std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
};

// Up to `max` slots per key held at once; a Slot gives its slot back when destroyed.
class Slots {
  public:
    struct State {
        std::mutex mutex;
        std::unordered_map<std::string, uint64_t> held;
    };

    class Slot {
      public:
        Slot(std::shared_ptr<State> state, std::string key) : state_(std::move(state)), key_(std::move(key)) {}
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot();

      private:
        std::shared_ptr<State> state_;
        std::string key_;
    };

    explicit Slots(uint64_t max);
    // A slot, or nullptr when the key holds max already.
    std::unique_ptr<Slot> acquire(const std::string& key);
    uint64_t held(const std::string& key) const;
    uint64_t max() const { return max_; }

  private:
    uint64_t max_;
    std::shared_ptr<State> state_;  // shared with the slots, which may outlive this object (an open stream)
};

}  // namespace mp3c::gateway
