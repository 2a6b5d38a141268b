#include "notification_store.hpp"

#include <algorithm>
#include <chrono>

#include "mp3c/strings.hpp"

namespace mp3c::notification {

namespace {
const char* name(Channel c) { return c == Channel::email ? "email" : "webhook"; }
int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

std::vector<mysql::Migration> NotificationStore::migrations() {
    return {{1,
             "create notifications",
             {"CREATE TABLE notifications ("
              " job_id CHAR(24) NOT NULL,"
              " channel ENUM('email', 'webhook') NOT NULL,"
              " state ENUM('sending', 'queued', 'sent', 'failed') NOT NULL,"
              " detail VARCHAR(1000) NULL,"
              " created_at BIGINT NOT NULL,"
              " updated_at BIGINT NOT NULL,"
              " PRIMARY KEY (job_id, channel)"
              ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}},
            // A job's failures each have their own key (<job id>.failed.<time>): a retried job that fails again, or
            // then succeeds, is told about again.
            {2, "keys per occurrence", {"ALTER TABLE notifications MODIFY job_id VARCHAR(64) NOT NULL"}},
            // A job mail the owner did not want (job_mails "off"), or one told in a summary mail (digest_store.hpp).
            {3,
             "skipped and summarized mails",
             {"ALTER TABLE notifications MODIFY state ENUM('sending', 'queued', 'sent', 'failed', 'skipped',"
              " 'summarized') NOT NULL"}}};
}

std::optional<std::string> NotificationStore::state(const std::string& job_id, Channel channel) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<std::string> {
        auto rows =
            c.query("SELECT state FROM notifications WHERE job_id = ? AND channel = ?", {job_id, name(channel)});
        if (rows.empty()) return std::nullopt;
        return rows[0].text(0);
    });
}

void NotificationStore::set(const std::string& job_id, Channel channel, const std::string& state,
                            const std::string& detail) {
    std::string cut(utf8_prefix(detail, 1000));
    int64_t now = now_ms();
    pool_.with([&](mysql::Connection& c) {
        c.execute(
            "INSERT INTO notifications (job_id, channel, state, detail, created_at, updated_at) VALUES (?, ?, ?, ?, ?, "
            "?)"
            " ON DUPLICATE KEY UPDATE state = VALUES(state), detail = VALUES(detail), updated_at = VALUES(updated_at)",
            {job_id, name(channel), state, cut.empty() ? mysql::Value(nullptr) : mysql::Value(cut), now, now});
    });
}

NotificationStore::Claim NotificationStore::claim(const std::string& job_id, Channel channel,
                                                  std::chrono::milliseconds lease) {
    int64_t now = now_ms();
    return pool_.with([&](mysql::Connection& c) {
        // Each statement is atomic on its row: of two concurrent callers only one inserts, or only one finds the
        // row still claimable when it updates it.
        if (c.execute("INSERT IGNORE INTO notifications (job_id, channel, state, detail, created_at, updated_at)"
                      " VALUES (?, ?, 'sending', NULL, ?, ?)",
                      {job_id, name(channel), now, now}) == 1) {
            return Claim::claimed;
        }
        if (c.execute("UPDATE notifications SET state = 'sending', detail = NULL, updated_at = ?"
                      " WHERE job_id = ? AND channel = ?"
                      " AND (state = 'queued' OR (state = 'sending' AND updated_at <= ?))",
                      {now, job_id, name(channel), now - static_cast<int64_t>(lease.count())}) == 1) {
            return Claim::claimed;
        }
        auto rows =
            c.query("SELECT state FROM notifications WHERE job_id = ? AND channel = ?", {job_id, name(channel)});
        if (!rows.empty() && rows[0].text(0) != "sending" && rows[0].text(0) != "queued") return Claim::settled;
        return Claim::busy;
    });
}

}  // namespace mp3c::notification
