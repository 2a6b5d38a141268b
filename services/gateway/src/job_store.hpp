#pragma once

#include <vector>

#include "mp3c/mysql.hpp"
#include "ports.hpp"

namespace mp3c::gateway {

// The gateway's `jobs` table in MariaDB. Infrastructure failures throw mysql::Error.
class JobStore final : public Jobs {
  public:
    // schema: when given, ready() is whether its migrations have been applied.
    explicit JobStore(mysql::Pool& pool, const mysql::SchemaGuard* schema = nullptr) : pool_(pool), schema_(schema) {}
    static std::vector<mysql::Migration> migrations();

    bool ready() const override;
    void create(const Job& job) override;
    std::optional<Job> find(const std::string& id) override;
    std::optional<Job> find_by_mp3(const std::string& mp3_fid) override;
    std::vector<Job> list(const JobQuery& query) override;
    uint64_t stored_bytes(uint64_t owner_id) override;
    bool apply(const StatusEvent& event) override;
    bool cancel_queued(const std::string& id) override;
    void forget_video(const std::string& id) override;
    bool remove(const std::string& id) override;
    uint64_t active_jobs(uint64_t owner_id) override;
    std::vector<Job> dispatchable(uint64_t per_owner, size_t limit) override;
    bool dispatch(const std::string& id, const std::function<void()>& publish) override;
    uint64_t requeue_unstarted(std::chrono::seconds age) override;
    std::optional<uint64_t> reserve(const std::string& reservation, uint64_t owner_id, uint64_t bytes,
                                    uint64_t quota) override;
    void release(const std::string& reservation) override;
    void renew(const std::string& reservation) override;
    uint64_t reserved_bytes(uint64_t owner_id) override;

  private:
    mysql::Pool& pool_;
    const mysql::SchemaGuard* schema_;
};

}  // namespace mp3c::gateway
