#pragma once

#include <vector>

#include "mp3c/mysql.hpp"
#include "ports.hpp"

namespace mp3c::gateway {

// How long what jobs keep is kept (RETENTION, SOURCE_RETENTION); zero keeps it.
struct Retention {
    std::chrono::seconds mp3{0};
    std::chrono::seconds source{0};
};

// The gateway's `jobs` table in MariaDB. Infrastructure failures throw mysql::Error.
class JobStore final : public Jobs {
  public:
    // schema: when given, ready() is whether its migrations have been applied.
    explicit JobStore(mysql::Pool& pool, const mysql::SchemaGuard* schema = nullptr, Retention retention = {})
        : pool_(pool), schema_(schema), retention_(retention) {}
    static std::vector<mysql::Migration> migrations();

    bool ready() const override;
    void create(const Job& job) override;
    std::optional<Job> find(const std::string& id) override;
    std::optional<Job> find_by_mp3(const std::string& mp3_fid) override;
    std::vector<Job> list(const JobQuery& query) override;
    std::optional<std::string> waveform(const std::string& id) override;
    uint64_t stored_bytes(uint64_t owner_id) override;
    bool apply(const StatusEvent& event) override;
    bool cancel_unfinished(const std::string& id) override;
    void forget_video(const std::string& id) override;
    bool remove(const std::string& id) override;
    uint64_t active_jobs(uint64_t owner_id) override;
    std::vector<Job> dispatchable(uint64_t per_owner, size_t limit) override;
    bool dispatch(const std::string& id, const std::function<void()>& publish) override;
    uint64_t requeue_unstarted(std::chrono::seconds age) override;
    Waiting waiting() override;
    std::optional<uint64_t> reserve(const std::string& reservation, uint64_t owner_id, uint64_t bytes,
                                    uint64_t quota) override;
    void release(const std::string& reservation) override;
    void renew(const std::string& reservation) override;
    uint64_t reserved_bytes(uint64_t owner_id) override;
    std::vector<Job> expired(size_t limit) override;
    bool mark_expired(const std::string& id) override;
    uint64_t adopt_retention() override;
    bool exclusively(const std::string& name, const std::function<void()>& f) override;
    bool set_expiry(const std::string& id, int64_t expires_ms) override;
    bool requeue_failed(const std::string& id, const nlohmann::json& options) override;
    std::optional<Job> find_reusable(uint64_t owner_id, const std::string& source_sha256,
                                     const nlohmann::json& options) override;

  private:
    mysql::Pool& pool_;
    const mysql::SchemaGuard* schema_;
    Retention retention_;
};

}  // namespace mp3c::gateway
