#include "sweeper.hpp"

#include "handler_support.hpp"
#include "mp3c/log.hpp"

namespace mp3c::gateway {

Sweeper::Sweeper(Jobs& jobs, storage::BlobStore& videos, storage::BlobStore& mp3s, metrics::Registry& registry,
                 Options options)
    : jobs_(jobs),
      videos_(videos),
      mp3s_(mp3s),
      options_(options),
      expired_(registry.counter("gateway_expired_jobs_total",
                                "Jobs whose files the sweeper deleted when their retention was over, by what was "
                                "deleted.",
                                {"deleted"})),
      passes_(registry.counter("gateway_sweeps_total",
                               "Sweeper passes: swept, skipped (another replica was sweeping) or failed.", {"result"})),
      abandoned_(registry.counter("gateway_abandoned_uploads_removed_total",
                                  "What uploads cut short left in the blob stores, removed by the sweeper, by store.",
                                  {"store"})) {}

Sweeper::~Sweeper() { stop(); }

void Sweeper::start() {
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
}

void Sweeper::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

std::optional<uint64_t> Sweeper::sweep_once() {
    uint64_t expired = 0;
    if (!jobs_.exclusively(kLockName, [&] {
            expired = sweep_due();
            remove_abandoned();
        })) {
        passes_.with({"skipped"}).inc();
        return std::nullopt;
    }
    passes_.with({"swept"}).inc();
    return expired;
}

uint64_t Sweeper::sweep_due() {
    if (uint64_t adopted = jobs_.adopt_retention(); adopted > 0) {
        log::info("retention applied to jobs kept before", {{"jobs", adopted}});
    }
    uint64_t expired = 0;
    for (;;) {
        auto due = jobs_.expired(options_.batch);
        uint64_t marked = 0;
        for (const Job& job : due) {
            if (!jobs_.mark_expired(job.id)) continue;  // retried, extended or deleted meanwhile
            ++marked;
            // Counted per job by what it kept: its upload, its MP3 (a split job's parts go with the MP3).
            std::vector<std::tuple<storage::BlobStore*, std::string, const char*>> files;
            if (!job.video_fid.empty()) files.emplace_back(&videos_, job.video_fid, "upload");
            for (auto& id : mp3_store_ids(job)) {
                files.emplace_back(&mp3s_, id, job.mp3_fid && id == *job.mp3_fid ? "mp3" : nullptr);
            }
            for (const auto& [store, fid, what] : files) {
                try {
                    store->remove(fid);
                    if (what != nullptr) expired_.with({what}).inc();
                } catch (const std::exception& e) {
                    log::warn("could not delete an expired file: it stays as unused space",
                              {{"job_id", job.id}, {"fid", fid}, {"error", e.what()}});
                }
            }
            log::info("job expired", {{"job_id", job.id}, {"status", to_string(job.status)}});
        }
        expired += marked;
        // A batch that marked nothing would be found again: what is left is not ours to sweep this round.
        if (due.size() < options_.batch || marked == 0) return expired;
    }
}

void Sweeper::remove_abandoned() {
    auto now = std::chrono::steady_clock::now();
    if (last_abandoned_sweep_ && now - *last_abandoned_sweep_ < options_.abandoned_interval) return;
    last_abandoned_sweep_ = now;
    for (auto [store, name] : {std::pair{&videos_, "videos"}, std::pair{&mp3s_, "mp3s"}}) {
        try {
            if (size_t removed = store->remove_abandoned(options_.abandoned_idle); removed > 0) {
                abandoned_.with({name}).inc(static_cast<double>(removed));
                log::info("removed what uploads cut short left behind", {{"store", name}, {"removed", removed}});
            }
        } catch (const std::exception& e) {
            log::warn("could not look for abandoned uploads; trying again next time",
                      {{"store", name}, {"error", e.what()}});
        }
    }
}

void Sweeper::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        try {
            if (jobs_.ready()) sweep_once();
        } catch (const std::exception& e) {
            passes_.with({"failed"}).inc();
            log::warn("sweeping expired jobs failed; trying again next round", {{"error", e.what()}});
        }
        lock.lock();
        cv_.wait_for(lock, options_.interval, [this] { return stopping_; });
    }
}

}  // namespace mp3c::gateway
