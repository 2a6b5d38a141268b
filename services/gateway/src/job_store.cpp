#include "job_store.hpp"

#include <algorithm>

#include "mp3c/messages.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::gateway {

namespace {

constexpr const char* kColumns =
    "id, owner_id, owner_email, filename, size, video_fid, mp3_fid, mp3_size, duration_ms, status, progress, error,"
    " options, trace_id, FLOOR(UNIX_TIMESTAMP(created_at) * 1000), FLOOR(UNIX_TIMESTAMP(updated_at) * 1000),"
    " FLOOR(UNIX_TIMESTAMP(finished_at) * 1000), callback_url, reason";

Job from_row(const mysql::Row& r) {
    Job j;
    j.id = r.text(0);
    j.owner_id = r.unsigned_integer(1);
    j.owner_email = r.text(2);
    j.filename = r.text(3);
    j.size = r.unsigned_integer(4);
    j.video_fid = r.optional_text(5).value_or("");
    j.mp3_fid = r.optional_text(6);
    if (!r.is_null(7)) j.mp3_size = r.unsigned_integer(7);
    if (!r.is_null(8)) j.duration_ms = r.unsigned_integer(8);
    j.status = parse_status(r.text(9)).value_or(JobStatus::failed);
    j.progress = static_cast<int>(r.integer(10));
    j.error = r.optional_text(11);
    j.options = nlohmann::json::parse(r.text(12), nullptr, false);
    if (j.options.is_discarded()) j.options = nlohmann::json::object();
    j.trace_id = r.text(13);
    j.created_ms = r.integer(14);
    j.updated_ms = r.integer(15);
    if (!r.is_null(16)) j.finished_ms = r.integer(16);
    j.callback_url = r.optional_text(17);
    j.reason = r.optional_text(18);
    return j;
}

}  // namespace

bool JobStore::ready() const { return schema_ == nullptr || schema_->ready(); }

std::vector<mysql::Migration> JobStore::migrations() {
    return {
        {1,
         "create jobs",
         {"CREATE TABLE jobs ("
          " id CHAR(24) NOT NULL PRIMARY KEY,"
          " owner_id BIGINT UNSIGNED NOT NULL,"
          " owner_email VARCHAR(254) NOT NULL,"
          " filename VARCHAR(255) NOT NULL,"
          " size BIGINT UNSIGNED NOT NULL,"
          " video_fid CHAR(24) NULL,"
          " mp3_fid CHAR(24) NULL,"
          " mp3_size BIGINT UNSIGNED NULL,"
          " duration_ms BIGINT UNSIGNED NULL,"
          " status ENUM('queued', 'processing', 'done', 'failed', 'cancelled') NOT NULL,"
          " progress TINYINT UNSIGNED NOT NULL DEFAULT 0,"
          " error VARCHAR(1000) NULL,"
          " options TEXT NOT NULL,"
          " trace_id VARCHAR(64) NOT NULL,"
          " created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),"
          " updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),"
          " finished_at TIMESTAMP(3) NULL DEFAULT NULL,"
          " KEY jobs_owner_created (owner_id, created_at),"
          " KEY jobs_status (status),"
          " UNIQUE KEY jobs_mp3_fid (mp3_fid)"
          ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
        // Request ids (the trace id) may be up to 128 characters.
        {2, "longer trace ids", {"ALTER TABLE jobs MODIFY trace_id VARCHAR(128) NOT NULL"}},
        {3, "webhooks", {"ALTER TABLE jobs ADD COLUMN callback_url VARCHAR(2000) NULL"}},
        {4, "failure reasons", {"ALTER TABLE jobs ADD COLUMN reason VARCHAR(64) NULL"}},
    };
}

void JobStore::create(const Job& job) {
    pool_.with([&](mysql::Connection& c) {
        c.execute(
            "INSERT INTO jobs (id, owner_id, owner_email, filename, size, video_fid, status, progress, options, "
            "trace_id, callback_url) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            {job.id, job.owner_id, job.owner_email, job.filename, job.size, job.video_fid, to_string(job.status),
             job.options.dump(), job.trace_id,
             job.callback_url ? mysql::Value(*job.callback_url) : mysql::Value(nullptr)});
    });
}

std::optional<Job> JobStore::find(const std::string& id) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<Job> {
        auto rows = c.query(std::string("SELECT ") + kColumns + " FROM jobs WHERE id = ?", {id});
        if (rows.empty()) return std::nullopt;
        return from_row(rows[0]);
    });
}

std::optional<Job> JobStore::find_by_mp3(const std::string& mp3_fid) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<Job> {
        auto rows = c.query(std::string("SELECT ") + kColumns + " FROM jobs WHERE mp3_fid = ?", {mp3_fid});
        if (rows.empty()) return std::nullopt;
        return from_row(rows[0]);
    });
}

std::vector<Job> JobStore::list(const JobQuery& q) {
    std::string sql = std::string("SELECT ") + kColumns + " FROM jobs WHERE 1 = 1";
    mysql::Params params;
    if (q.owner_id) {
        sql += " AND owner_id = ?";
        params.emplace_back(*q.owner_id);
    }
    if (q.status) {
        sql += " AND status = ?";
        params.emplace_back(to_string(*q.status));
    }
    sql += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?";
    params.emplace_back(static_cast<uint64_t>(q.limit));
    params.emplace_back(static_cast<uint64_t>(q.offset));
    return pool_.with([&](mysql::Connection& c) {
        std::vector<Job> jobs;
        for (const auto& row : c.query(sql, params)) jobs.push_back(from_row(row));
        return jobs;
    });
}

uint64_t JobStore::stored_bytes(uint64_t owner_id) {
    return pool_.with([&](mysql::Connection& c) {
        auto rows = c.query(
            "SELECT CAST(COALESCE(SUM(IF(video_fid IS NULL, 0, size) + COALESCE(mp3_size, 0)), 0) AS UNSIGNED) "
            "FROM jobs WHERE owner_id = ?",
            {owner_id});
        return rows.at(0).unsigned_integer(0);
    });
}

bool JobStore::apply(const StatusEvent& e) {
    return pool_.with([&](mysql::Connection& c) {
        switch (e.status) {
            case JobStatus::processing:
                return c.execute(
                           "UPDATE jobs SET status = 'processing', progress = GREATEST(progress, ?) "
                           "WHERE id = ? AND status IN ('queued', 'processing') AND (status = 'queued' OR progress < "
                           "?)",
                           {int64_t{e.progress}, e.job_id, int64_t{e.progress}}) > 0;
            case JobStatus::done:
                return c.execute(
                           "UPDATE jobs SET status = 'done', progress = 100, mp3_fid = ?, mp3_size = ?, duration_ms = "
                           "?, "
                           "error = NULL, finished_at = CURRENT_TIMESTAMP(3) "
                           "WHERE id = ? AND status IN ('queued', 'processing')",
                           {*e.mp3_fid, e.mp3_size ? mysql::Value(*e.mp3_size) : mysql::Value(nullptr),
                            e.duration_ms ? mysql::Value(*e.duration_ms) : mysql::Value(nullptr), e.job_id}) > 0;
            case JobStatus::failed:
            case JobStatus::cancelled:
                return c.execute(
                           "UPDATE jobs SET status = ?, error = ?, reason = ?, finished_at = CURRENT_TIMESTAMP(3) "
                           "WHERE id = ? AND status IN ('queued', 'processing')",
                           {to_string(e.status), e.error ? mysql::Value(*e.error) : mysql::Value(nullptr),
                            e.reason ? mysql::Value(*e.reason) : mysql::Value(nullptr), e.job_id}) > 0;
            case JobStatus::queued:
                return false;
        }
        return false;
    });
}

bool JobStore::cancel_queued(const std::string& id) {
    return pool_.with([&](mysql::Connection& c) {
        return c.execute(
                   "UPDATE jobs SET status = 'cancelled', error = 'cancelled by the user', "
                   "finished_at = CURRENT_TIMESTAMP(3) WHERE id = ? AND status = 'queued'",
                   {id}) > 0;
    });
}

void JobStore::forget_video(const std::string& id) {
    pool_.with([&](mysql::Connection& c) { c.execute("UPDATE jobs SET video_fid = NULL WHERE id = ?", {id}); });
}

bool JobStore::remove(const std::string& id) {
    return pool_.with([&](mysql::Connection& c) { return c.execute("DELETE FROM jobs WHERE id = ?", {id}) > 0; });
}

}  // namespace mp3c::gateway
