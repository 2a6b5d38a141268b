#include "job_store.hpp"

#include <algorithm>

#include "mp3c/messages.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::gateway {

namespace {

// How long a replica that died while sweeping keeps the others from sweeping.
constexpr std::chrono::seconds kExclusiveLease{600};

constexpr const char* kColumns =
    "id, owner_id, owner_email, filename, size, video_fid, mp3_fid, mp3_size, duration_ms, status, progress, error,"
    " options, trace_id, FLOOR(UNIX_TIMESTAMP(created_at) * 1000), FLOOR(UNIX_TIMESTAMP(updated_at) * 1000),"
    " FLOOR(UNIX_TIMESTAMP(finished_at) * 1000), callback_url, reason, max_output_bytes, dispatched_at IS NOT NULL,"
    " FLOOR(UNIX_TIMESTAMP(expires_at) * 1000), source_sha256, reused_from, loudness, parts";

// Bytes an owner keeps stored: uploads not yet deleted, and MP3s.
constexpr const char* kStoredBytes =
    "SELECT CAST(COALESCE(SUM(IF(video_fid IS NULL, 0, size) + "
    "IF(mp3_fid IS NULL, 0, COALESCE(mp3_size, 0) + COALESCE(parts_size, 0))), 0) AS "
    "UNSIGNED) FROM jobs "
    "WHERE owner_id = ?";

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
    if (!r.is_null(19)) j.max_output_bytes = r.unsigned_integer(19);
    j.dispatched = r.integer(20) != 0;
    if (!r.is_null(21)) j.expires_ms = r.integer(21);
    j.source_sha256 = r.optional_text(22);
    j.reused_from = r.optional_text(23);
    j.loudness = r.optional_text(24);
    if (auto parts = r.optional_text(25)) {
        j.parts = messages::parts_from_json(nlohmann::json::parse(*parts, nullptr, false)).value_or(j.parts);
    }
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
        // The jobs table is the waiting room: a job is published to `video` when its owner's turn comes. Jobs queued
        // before this version were published at once.
        {5,
         "fair dispatch",
         {"ALTER TABLE jobs ADD COLUMN dispatched_at TIMESTAMP(3) NULL DEFAULT NULL,"
          " ADD COLUMN max_output_bytes BIGINT UNSIGNED NULL",
          "UPDATE jobs SET dispatched_at = created_at WHERE status IN ('queued', 'processing')",
          "CREATE INDEX jobs_active ON jobs (status, owner_id, dispatched_at, created_at)"}},
        // Quota by reservation: the bytes of uploads in progress, under one lock row per owner.
        {6,
         "quota reservations",
         {"CREATE TABLE quota_owners (owner_id BIGINT UNSIGNED NOT NULL PRIMARY KEY) ENGINE=InnoDB",
          "CREATE TABLE quota_reservations ("
          " id CHAR(32) NOT NULL PRIMARY KEY,"
          " owner_id BIGINT UNSIGNED NOT NULL,"
          " bytes BIGINT UNSIGNED NOT NULL,"
          " expires_at TIMESTAMP(3) NOT NULL,"
          " KEY quota_reservations_owner (owner_id, expires_at)"
          ") ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin"}},
        // Retention (expires_at, the sweeper, status expired), retries, and reuse of an earlier identical job's MP3.
        {7,
         "retention and reuse",
         {"ALTER TABLE jobs MODIFY status ENUM('queued', 'processing', 'done', 'failed', 'cancelled', 'expired') NOT "
          "NULL,"
          " ADD COLUMN expires_at TIMESTAMP(3) NULL DEFAULT NULL,"
          " ADD COLUMN source_sha256 CHAR(64) NULL,"
          " ADD COLUMN reused_from CHAR(24) NULL",
          "CREATE INDEX jobs_expires ON jobs (expires_at)",
          "CREATE INDEX jobs_owner_source ON jobs (owner_id, source_sha256)"}},
        // Waveforms beside the jobs, not in them: job lists do not carry a few kilobytes per row.
        {8,
         "waveforms",
         {"CREATE TABLE job_waveforms ("
          " job_id CHAR(24) NOT NULL PRIMARY KEY,"
          " peaks MEDIUMTEXT NOT NULL,"
          " CONSTRAINT job_waveforms_job FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE"
          ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
        // What loudness normalisation measured, shown with the job.
        {9, "loudness", {"ALTER TABLE jobs ADD COLUMN loudness VARCHAR(1000) NULL"}},
        // chapters=split: the parts (JSON, at most 255) and their bytes, which count toward the quota.
        {10,
         "parts",
         {"ALTER TABLE jobs ADD COLUMN parts MEDIUMTEXT NULL, ADD COLUMN parts_size BIGINT UNSIGNED NULL"}},
    };
}

void JobStore::create(const Job& job) {
    auto optional = [](const auto& v) { return v ? mysql::Value(*v) : mysql::Value(nullptr); };
    // A job reused from an earlier one is created done, with its expiry (from the database's clock, as apply does).
    bool done = job.status == JobStatus::done;
    int64_t expires_in = done ? retention_.mp3.count() : 0;
    pool_.with([&](mysql::Connection& c) {
        c.execute(
            "INSERT INTO jobs (id, owner_id, owner_email, filename, size, video_fid, status, progress, options, "
            "trace_id, callback_url, max_output_bytes, source_sha256, reused_from, mp3_fid, mp3_size, duration_ms, "
            "loudness, finished_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "IF(?, CURRENT_TIMESTAMP(3), NULL), IF(? > 0, CURRENT_TIMESTAMP(3) + INTERVAL ? SECOND, NULL))",
            {job.id,
             job.owner_id,
             job.owner_email,
             job.filename,
             job.size,
             job.video_fid.empty() ? mysql::Value(nullptr) : mysql::Value(job.video_fid),
             to_string(job.status),
             int64_t{done ? 100 : 0},
             job.options.dump(),
             job.trace_id,
             optional(job.callback_url),
             optional(job.max_output_bytes),
             optional(job.source_sha256),
             optional(job.reused_from),
             optional(job.mp3_fid),
             optional(job.mp3_size),
             optional(job.duration_ms),
             optional(job.loudness),
             int64_t{done},
             expires_in,
             expires_in});
        // A reused job shows the waveform of the job whose MP3 it copied.
        if (job.reused_from) {
            c.execute("INSERT INTO job_waveforms (job_id, peaks) SELECT ?, peaks FROM job_waveforms WHERE job_id = ?",
                      {job.id, *job.reused_from});
        }
    });
}

std::optional<std::string> JobStore::waveform(const std::string& id) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<std::string> {
        auto rows = c.query("SELECT peaks FROM job_waveforms WHERE job_id = ?", {id});
        if (rows.empty()) return std::nullopt;
        return rows[0].text(0);
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
    return pool_.with(
        [&](mysql::Connection& c) { return c.query(kStoredBytes, {owner_id}).at(0).unsigned_integer(0); });
}

bool JobStore::apply(const StatusEvent& e) {
    // A done event: the job gets its MP3 and its expiry (from the database's clock).
    auto finish = [this](mysql::Connection& c, const StatusEvent& done) {
        return c.execute(
                   "UPDATE jobs SET status = 'done', progress = 100, mp3_fid = ?, mp3_size = ?, duration_ms = "
                   "?, loudness = ?, parts = ?, parts_size = ?, error = NULL, finished_at = CURRENT_TIMESTAMP(3), "
                   "expires_at = IF(? > 0, CURRENT_TIMESTAMP(3) + INTERVAL ? SECOND, NULL) "
                   "WHERE id = ? AND status IN ('queued', 'processing')",
                   {*done.mp3_fid, done.mp3_size ? mysql::Value(*done.mp3_size) : mysql::Value(nullptr),
                    done.duration_ms ? mysql::Value(*done.duration_ms) : mysql::Value(nullptr),
                    done.loudness ? mysql::Value(*done.loudness) : mysql::Value(nullptr),
                    done.parts ? mysql::Value(*done.parts) : mysql::Value(nullptr),
                    done.parts ? mysql::Value(done.parts_size) : mysql::Value(nullptr), retention_.mp3.count(),
                    retention_.mp3.count(), done.job_id}) > 0;
    };
    return pool_.with([&](mysql::Connection& c) {
        switch (e.status) {
            case JobStatus::processing:
                return c.execute(
                           "UPDATE jobs SET status = 'processing', progress = GREATEST(progress, ?) "
                           "WHERE id = ? AND status IN ('queued', 'processing') AND (status = 'queued' OR progress < "
                           "?)",
                           {int64_t{e.progress}, e.job_id, int64_t{e.progress}}) > 0;
            case JobStatus::done:
                if (e.waveform) {
                    // With the job's end, in one transaction: a redelivered event finds the job done and changes
                    // nothing, so the waveform cannot come later.
                    return mysql::in_transaction(c, [&] {
                        c.execute(
                            "INSERT INTO job_waveforms (job_id, peaks) SELECT id, ? FROM jobs "
                            "WHERE id = ? AND status IN ('queued', 'processing') "
                            "ON DUPLICATE KEY UPDATE peaks = VALUES(peaks)",
                            {*e.waveform, e.job_id});
                        return finish(c, e);
                    });
                }
                return finish(c, e);
            case JobStatus::failed:
            case JobStatus::cancelled:
                return c.execute(
                           "UPDATE jobs SET status = ?, error = ?, reason = ?, finished_at = CURRENT_TIMESTAMP(3), "
                           "expires_at = IF(status = 'failed' AND video_fid IS NOT NULL AND ? > 0, "
                           "CURRENT_TIMESTAMP(3) + INTERVAL ? SECOND, NULL) "
                           "WHERE id = ? AND status IN ('queued', 'processing')",
                           {to_string(e.status), e.error ? mysql::Value(*e.error) : mysql::Value(nullptr),
                            e.reason ? mysql::Value(*e.reason) : mysql::Value(nullptr), retention_.source.count(),
                            retention_.source.count(), e.job_id}) > 0;
            case JobStatus::queued:  // a retry: requeue_failed changed the record
            case JobStatus::expired:
                return false;
        }
        return false;
    });
}

bool JobStore::cancel_unfinished(const std::string& id) {
    return pool_.with([&](mysql::Connection& c) {
        return c.execute(
                   "UPDATE jobs SET status = 'cancelled', error = 'cancelled by the user', "
                   "finished_at = CURRENT_TIMESTAMP(3) WHERE id = ? AND status IN ('queued', 'processing')",
                   {id}) > 0;
    });
}

void JobStore::forget_video(const std::string& id) {
    pool_.with([&](mysql::Connection& c) { c.execute("UPDATE jobs SET video_fid = NULL WHERE id = ?", {id}); });
}

bool JobStore::remove(const std::string& id) {
    return pool_.with([&](mysql::Connection& c) { return c.execute("DELETE FROM jobs WHERE id = ?", {id}) > 0; });
}

uint64_t JobStore::active_jobs(uint64_t owner_id) {
    return pool_.with([&](mysql::Connection& c) {
        return c
            .query("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'processing') AND owner_id = ?", {owner_id})
            .at(0)
            .unsigned_integer(0);
    });
}

std::vector<Job> JobStore::dispatchable(uint64_t per_owner, size_t limit) {
    // Each waiting job's turn within its owner (FIFO), against what the owner has dispatched and not ended.
    std::string sql = std::string("SELECT ") + kColumns +
                      " FROM (SELECT j.*, ROW_NUMBER() OVER (PARTITION BY owner_id ORDER BY created_at, id) AS turn"
                      "       FROM jobs j WHERE status = 'queued' AND dispatched_at IS NULL) w"
                      " JOIN (SELECT owner_id, SUM(dispatched_at IS NOT NULL) AS running FROM jobs"
                      "       WHERE status IN ('queued', 'processing') GROUP BY owner_id) r USING (owner_id)"
                      " WHERE w.turn + r.running <= ? ORDER BY w.turn, w.created_at, w.id LIMIT ?";
    return pool_.with([&](mysql::Connection& c) {
        std::vector<Job> jobs;
        for (const auto& row : c.query(sql, {per_owner, static_cast<uint64_t>(limit)})) jobs.push_back(from_row(row));
        return jobs;
    });
}

bool JobStore::dispatch(const std::string& id, const std::function<void()>& publish) {
    return pool_.with([&](mysql::Connection& c) {
        // One attempt: publish() is not the database, and a second would send the message twice.
        return mysql::in_transaction(
            c,
            [&] {
                auto claimed = c.query(
                    "SELECT id FROM jobs WHERE id = ? AND status = 'queued' AND dispatched_at IS NULL "
                    "FOR UPDATE SKIP LOCKED",
                    {id});
                if (claimed.empty()) return false;
                publish();
                c.execute("UPDATE jobs SET dispatched_at = CURRENT_TIMESTAMP(3) WHERE id = ?", {id});
                return true;
            },
            1);
    });
}

Jobs::Waiting JobStore::waiting() {
    return pool_.with([&](mysql::Connection& c) {
        auto row =
            c.query(
                 "SELECT COUNT(*), COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), CURRENT_TIMESTAMP(3)), 0)"
                 " FROM jobs WHERE status = 'queued' AND dispatched_at IS NULL")
                .at(0);
        return Waiting{.jobs = row.unsigned_integer(0), .oldest_seconds = static_cast<double>(row.integer(1)) / 1e6};
    });
}

uint64_t JobStore::requeue_unstarted(std::chrono::seconds age) {
    return pool_.with([&](mysql::Connection& c) {
        return c.execute(
            "UPDATE jobs SET dispatched_at = NULL WHERE status = 'queued' AND dispatched_at IS NOT NULL "
            "AND dispatched_at < CURRENT_TIMESTAMP(3) - INTERVAL ? SECOND",
            {static_cast<int64_t>(age.count())});
    });
}

std::optional<uint64_t> JobStore::reserve(const std::string& reservation, uint64_t owner_id, uint64_t bytes,
                                          uint64_t quota) {
    return pool_.with([&](mysql::Connection& c) {
        // One lock row per owner serializes the owner's reservations across every gateway replica. Made before the
        // transaction: inside it, INSERT IGNORE's shared lock on an existing row and the exclusive lock that follows
        // deadlock two uploads against each other.
        c.execute("INSERT IGNORE INTO quota_owners (owner_id) VALUES (?)", {owner_id});
        return mysql::in_transaction(c, [&]() -> std::optional<uint64_t> {
            c.query("SELECT owner_id FROM quota_owners WHERE owner_id = ? FOR UPDATE", {owner_id});
            c.execute("DELETE FROM quota_reservations WHERE owner_id = ? AND expires_at < CURRENT_TIMESTAMP(3)",
                      {owner_id});
            uint64_t stored = c.query(kStoredBytes, {owner_id}).at(0).unsigned_integer(0);
            auto held = c.query(
                "SELECT CAST(COALESCE(SUM(IF(id = ?, 0, bytes)), 0) AS UNSIGNED),"
                " CAST(COALESCE(SUM(IF(id = ?, bytes, 0)), 0) AS UNSIGNED)"
                " FROM quota_reservations WHERE owner_id = ?",
                {reservation, reservation, owner_id});
            uint64_t others = stored + held.at(0).unsigned_integer(0);
            uint64_t mine = held.at(0).unsigned_integer(1);
            if (others > quota || mine + bytes > quota - others) return std::nullopt;
            c.execute(
                "INSERT INTO quota_reservations (id, owner_id, bytes, expires_at) VALUES (?, ?, ?, "
                "CURRENT_TIMESTAMP(3) + INTERVAL 10 MINUTE) "
                "ON DUPLICATE KEY UPDATE bytes = bytes + VALUES(bytes), expires_at = VALUES(expires_at)",
                {reservation, owner_id, bytes});
            return others;
        });
    });
}

namespace {

// Runs f on the reservation's row under its owner's lock, like reserve(): a bare statement on the row locks it, then
// its (owner_id, expires_at) index entry, the opposite order to reserve()'s sweep of the owner's lapsed rows, and the
// two deadlock. Nothing when the reservation is gone.
void under_owner_lock(mysql::Connection& c, const std::string& reservation, const std::function<void()>& f) {
    auto owner = c.query("SELECT owner_id FROM quota_reservations WHERE id = ?", {reservation});
    if (owner.empty()) return;
    mysql::in_transaction(c, [&] {
        c.query("SELECT owner_id FROM quota_owners WHERE owner_id = ? FOR UPDATE", {owner[0].unsigned_integer(0)});
        f();
        return true;
    });
}

}  // namespace

void JobStore::release(const std::string& reservation) {
    pool_.with([&](mysql::Connection& c) {
        under_owner_lock(c, reservation,
                         [&] { c.execute("DELETE FROM quota_reservations WHERE id = ?", {reservation}); });
    });
}

void JobStore::renew(const std::string& reservation) {
    pool_.with([&](mysql::Connection& c) {
        under_owner_lock(c, reservation, [&] {
            c.execute(
                "UPDATE quota_reservations SET expires_at = CURRENT_TIMESTAMP(3) + INTERVAL 10 MINUTE WHERE id = ?",
                {reservation});
        });
    });
}

uint64_t JobStore::reserved_bytes(uint64_t owner_id) {
    return pool_.with([&](mysql::Connection& c) {
        return c
            .query(
                "SELECT CAST(COALESCE(SUM(bytes), 0) AS UNSIGNED) FROM quota_reservations "
                "WHERE owner_id = ? AND expires_at >= CURRENT_TIMESTAMP(3)",
                {owner_id})
            .at(0)
            .unsigned_integer(0);
    });
}

std::vector<Job> JobStore::expired(size_t limit) {
    return pool_.with([&](mysql::Connection& c) {
        std::vector<Job> jobs;
        for (const auto& row : c.query(std::string("SELECT ") + kColumns +
                                           " FROM jobs WHERE expires_at <= CURRENT_TIMESTAMP(3) AND status IN ('done', "
                                           "'failed') ORDER BY expires_at LIMIT ?",
                                       {static_cast<uint64_t>(limit)})) {
            jobs.push_back(from_row(row));
        }
        return jobs;
    });
}

bool JobStore::mark_expired(const std::string& id) {
    return pool_.with([&](mysql::Connection& c) {
        return c.execute(
                   "UPDATE jobs SET status = 'expired', video_fid = NULL, mp3_fid = NULL WHERE id = ? "
                   "AND expires_at <= CURRENT_TIMESTAMP(3) AND status IN ('done', 'failed')",
                   {id}) > 0;
    });
}

uint64_t JobStore::adopt_retention() {
    return pool_.with([&](mysql::Connection& c) {
        uint64_t adopted = 0;
        if (retention_.mp3.count() > 0) {
            adopted += c.execute(
                "UPDATE jobs SET expires_at = COALESCE(finished_at, updated_at) + INTERVAL ? SECOND "
                "WHERE status = 'done' AND expires_at IS NULL AND mp3_fid IS NOT NULL",
                {retention_.mp3.count()});
        }
        if (retention_.source.count() > 0) {
            adopted += c.execute(
                "UPDATE jobs SET expires_at = COALESCE(finished_at, updated_at) + INTERVAL ? SECOND "
                "WHERE status = 'failed' AND expires_at IS NULL AND video_fid IS NOT NULL",
                {retention_.source.count()});
        }
        return adopted;
    });
}

bool JobStore::exclusively(const std::string& name, const std::function<void()>& f) {
    // A lease rather than GET_LOCK, which Galera refuses: held while f runs (on other connections of the pool), and
    // run out after kExclusiveLease if this replica dies holding it.
    const std::string holder = mysql::new_lease_holder();
    if (!pool_.with([&](mysql::Connection& c) { return mysql::try_lease(c, name, holder, kExclusiveLease); })) {
        return false;
    }
    try {
        f();
    } catch (...) {
        try {
            pool_.with([&](mysql::Connection& c) { mysql::release_lease(c, name, holder); });
        } catch (...) {
            // the database is gone: the lease runs out by itself
        }
        throw;
    }
    pool_.with([&](mysql::Connection& c) { mysql::release_lease(c, name, holder); });
    return true;
}

bool JobStore::set_expiry(const std::string& id, int64_t expires_ms) {
    return pool_.with([&](mysql::Connection& c) {
        return c.execute(
                   "UPDATE jobs SET expires_at = FROM_UNIXTIME(? / 1000) WHERE id = ? AND "
                   "((status = 'done' AND mp3_fid IS NOT NULL) OR (status = 'failed' AND video_fid IS NOT NULL))",
                   {expires_ms, id}) > 0;
    });
}

bool JobStore::requeue_failed(const std::string& id, const nlohmann::json& options) {
    return pool_.with([&](mysql::Connection& c) {
        return c.execute(
                   "UPDATE jobs SET status = 'queued', progress = 0, error = NULL, reason = NULL, finished_at = NULL, "
                   "expires_at = NULL, dispatched_at = NULL, options = ? "
                   "WHERE id = ? AND status = 'failed' AND video_fid IS NOT NULL",
                   {options.dump(), id}) > 0;
    });
}

std::optional<Job> JobStore::find_reusable(uint64_t owner_id, const std::string& source_sha256,
                                           const nlohmann::json& options) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<Job> {
        auto rows =
            c.query(std::string("SELECT ") + kColumns +
                        " FROM jobs WHERE owner_id = ? AND source_sha256 = ? AND options = ? AND status = "
                        "'done' AND mp3_fid IS NOT NULL AND parts IS NULL ORDER BY finished_at DESC, id DESC LIMIT 1",
                    {owner_id, source_sha256, options.dump()});
        if (rows.empty()) return std::nullopt;
        return from_row(rows[0]);
    });
}

}  // namespace mp3c::gateway
