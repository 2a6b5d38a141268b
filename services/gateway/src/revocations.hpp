#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>

#include "mp3c/messages.hpp"
#include "mp3c/metrics.hpp"

namespace mp3c::gateway {

// The tokens auth has ended, as this replica last heard: per user a cutoff (tokens issued before it are ended), and
// single tokens ended by sign-out. The gateway keeps verifying tokens itself; this is what it adds to the signature
// and expiry.
class RevocationList {
  public:
    void apply(const messages::Revocations& update, int64_t now_s);
    bool revoked(const messages::AccessClaims& claims) const;
    int64_t cursor_ms() const;

  private:
    mutable std::shared_mutex mutex_;
    std::unordered_map<uint64_t, int64_t> cutoffs_;    // user id → valid_after (Unix s)
    std::unordered_map<std::string, int64_t> tokens_;  // jti → expires_at (Unix s), forgotten once expired
    int64_t cursor_ms_ = 0;
};

// Keeps a RevocationList current by asking auth (GET /revocations?since_ms=) every interval, on a thread of its own.
// While auth cannot be reached the list stays as it was (metric gateway_revocations_age_seconds says how old).
class RevocationPoller {
  public:
    RevocationPoller(RevocationList& list, std::string auth_url, std::chrono::milliseconds interval,
                     std::chrono::milliseconds timeout, metrics::Registry& registry);
    ~RevocationPoller();
    void start();
    void stop();
    // One round now; true when auth answered.
    bool poll_once();

  private:
    RevocationList& list_;
    std::string auth_url_;
    std::chrono::milliseconds interval_, timeout_;
    std::atomic<int64_t> synced_at_ms_{0};
    std::mutex mutex_;
    std::condition_variable_any wake_;  // woken by stop(), through the thread's stop token
    std::jthread thread_;
    metrics::Family<metrics::Counter>& polls_;
};

}  // namespace mp3c::gateway
