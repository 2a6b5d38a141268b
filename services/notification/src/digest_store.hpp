#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/mysql.hpp"

// One summary mail per batch of uploads (job_mails "summary"): the jobs that ended wait here, in the notification
// service's database, until their owner's batch has ended; then they are gathered into a digest, mailed once.
namespace mp3c::notification {

struct DigestItem {
    std::string key;  // the notice's key (a job id, or <job id>.failed.<time>): added at most once
    std::string recipient;
    std::string job_id;
    bool done = false;
    std::string filename;
    std::string reason;  // a failed job's
    uint64_t mp3_size = 0;
    double duration_seconds = 0;
    int parts = 0;  // a split job's parts (chapters=split)
};

struct Digest {
    std::string id;  // 32 hexadecimal digits: the key of its at-most-one sending
    std::string recipient;
    int attempts = 0;               // sendings that failed for a transient reason
    std::vector<DigestItem> items;  // in the order the jobs ended
};

class DigestStore {
  public:
    explicit DigestStore(mysql::Pool& pool) : pool_(pool) {}
    static const mysql::Migration kMigration;
    static const mysql::Migration kPartsMigration;

    void add(const DigestItem& item);
    // Gathers each recipient's waiting items into a new digest when their batch has ended: nothing ended for `quiet`,
    // or the oldest has waited `max_wait`. Atomic per recipient, so replicas may run it at once.
    void close_batches(std::chrono::seconds quiet, std::chrono::seconds max_wait);
    // Digests to send now (new ones, and failed ones whose wait is over).
    std::vector<std::string> due();
    std::optional<Digest> load(const std::string& digest_id);
    // A transient failure: tried again after `delay`.
    void postpone(const std::string& digest_id, std::chrono::seconds delay);
    // Sent or given up: its items go (the sending's record stays in `notifications`).
    void remove(const std::string& digest_id);
    // Items waiting for their batch to end, for tests and metrics.
    int64_t waiting();

  private:
    mysql::Pool& pool_;
};

}  // namespace mp3c::notification
