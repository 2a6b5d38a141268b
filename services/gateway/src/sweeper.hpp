#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "mp3c/metrics.hpp"
#include "mp3c/storage.hpp"
#include "ports.hpp"

namespace mp3c::gateway {

// Retention: deletes what jobs keep once their time is up (a done job's MP3 RETENTION after it was made, a failed
// job's upload SOURCE_RETENTION after it failed) and marks them expired, so that files do not pile up and the owner's
// quota usage drops. One replica sweeps at a time (a MariaDB named lock); the others skip that round. A job is marked
// before its files are deleted: a job that shows done always has its MP3 (a file left by a failed delete is only
// space, logged). It also removes what uploads cut short left in the stores (BlobStore::remove_abandoned).
class Sweeper {
  public:
    struct Options {
        std::chrono::milliseconds interval{60'000};
        size_t batch = 100;  // jobs per query; a pass goes on until none is due
        // What uploads cut short left in the stores (a gateway or converter killed mid-upload): removed once nothing
        // has written to it for abandoned_idle, looked for every abandoned_interval.
        std::chrono::milliseconds abandoned_interval{3'600'000};
        std::chrono::seconds abandoned_idle{3600};
    };
    Sweeper(Jobs& jobs, storage::BlobStore& videos, storage::BlobStore& mp3s, metrics::Registry& registry,
            Options options);
    ~Sweeper();

    void start();
    void stop();
    // One pass (the thread's work; also for tests): how many jobs it expired, or nullopt when another replica was
    // sweeping.
    std::optional<uint64_t> sweep_once();

    static constexpr const char* kLockName = "mp3converter.sweeper";

  private:
    void run();
    uint64_t sweep_due();
    void remove_abandoned();

    Jobs& jobs_;
    storage::BlobStore& videos_;
    storage::BlobStore& mp3s_;
    Options options_;
    metrics::Family<metrics::Counter>& expired_;    // by what was deleted: mp3, upload
    metrics::Family<metrics::Counter>& passes_;     // swept, skipped (another replica), failed
    metrics::Family<metrics::Counter>& abandoned_;  // by store: videos, mp3s
    std::optional<std::chrono::steady_clock::time_point> last_abandoned_sweep_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace mp3c::gateway
