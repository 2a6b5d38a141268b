#include "digest_store.hpp"

#include "mp3c/crypto.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::notification {

namespace {
int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

// Times in Unix milliseconds; digest_id is NULL while the item waits for its batch to end.
const mysql::Migration DigestStore::kMigration{4,
                                               "create digest_items",
                                               {"CREATE TABLE digest_items ("
                                                " item_key VARCHAR(64) NOT NULL PRIMARY KEY,"
                                                " recipient VARCHAR(254) NOT NULL,"
                                                " job_id CHAR(24) NOT NULL,"
                                                " done TINYINT NOT NULL,"
                                                " filename VARCHAR(1024) NOT NULL,"
                                                " reason VARCHAR(1000) NOT NULL,"
                                                " mp3_size BIGINT UNSIGNED NOT NULL,"
                                                " duration_seconds DOUBLE NOT NULL,"
                                                " created_at BIGINT NOT NULL,"
                                                " digest_id CHAR(32) NULL,"
                                                " attempts INT NOT NULL DEFAULT 0,"
                                                " retry_at BIGINT NOT NULL DEFAULT 0,"
                                                " KEY digest_items_waiting (digest_id, recipient),"
                                                " KEY digest_items_due (retry_at)"
                                                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"}};

const mysql::Migration DigestStore::kPartsMigration{
    5, "digest parts", {"ALTER TABLE digest_items ADD COLUMN parts INT NOT NULL DEFAULT 0"}};

void DigestStore::add(const DigestItem& item) {
    pool_.with([&](mysql::Connection& c) {
        c.execute(
            "INSERT IGNORE INTO digest_items (item_key, recipient, job_id, done, filename, reason, mp3_size,"
            " duration_seconds, parts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            {item.key, item.recipient, item.job_id, int64_t{item.done ? 1 : 0},
             std::string(utf8_prefix(item.filename, 1024)), std::string(utf8_prefix(item.reason, 1000)), item.mp3_size,
             item.duration_seconds, int64_t{item.parts}, now_ms()});
    });
}

void DigestStore::close_batches(std::chrono::seconds quiet, std::chrono::seconds max_wait) {
    const int64_t now = now_ms();
    pool_.with([&](mysql::Connection& c) {
        auto ended = c.query(
            "SELECT recipient FROM digest_items WHERE digest_id IS NULL GROUP BY recipient"
            " HAVING MAX(created_at) <= ? OR MIN(created_at) <= ?",
            {now - quiet.count() * 1000, now - max_wait.count() * 1000});
        for (const auto& row : ended) {
            // Of two replicas doing this at once, the second finds nothing left (or only items added since).
            c.execute("UPDATE digest_items SET digest_id = ? WHERE recipient = ? AND digest_id IS NULL",
                      {crypto::random_hex(16), row.text(0)});
        }
    });
}

std::vector<std::string> DigestStore::due() {
    return pool_.with([&](mysql::Connection& c) {
        std::vector<std::string> out;
        for (const auto& row : c.query("SELECT DISTINCT digest_id FROM digest_items WHERE digest_id IS NOT NULL AND"
                                       " retry_at <= ? LIMIT 100",
                                       {now_ms()})) {
            out.push_back(row.text(0));
        }
        return out;
    });
}

std::optional<Digest> DigestStore::load(const std::string& digest_id) {
    return pool_.with([&](mysql::Connection& c) -> std::optional<Digest> {
        auto rows = c.query(
            "SELECT item_key, recipient, job_id, done, filename, reason, mp3_size, duration_seconds, attempts, parts"
            " FROM digest_items WHERE digest_id = ? ORDER BY created_at, item_key",
            {digest_id});
        if (rows.empty()) return std::nullopt;
        Digest d{.id = digest_id, .recipient = rows[0].text(1), .attempts = 0, .items = {}};
        for (const auto& row : rows) {
            d.items.push_back({.key = row.text(0),
                               .recipient = row.text(1),
                               .job_id = row.text(2),
                               .done = row.integer(3) != 0,
                               .filename = row.text(4),
                               .reason = row.text(5),
                               .mp3_size = row.unsigned_integer(6),
                               .duration_seconds = row.real(7),
                               .parts = static_cast<int>(row.integer(9))});
            d.attempts = std::max(d.attempts, static_cast<int>(row.integer(8)));
        }
        return d;
    });
}

void DigestStore::postpone(const std::string& digest_id, std::chrono::seconds delay) {
    pool_.with([&](mysql::Connection& c) {
        c.execute("UPDATE digest_items SET attempts = attempts + 1, retry_at = ? WHERE digest_id = ?",
                  {now_ms() + delay.count() * 1000, digest_id});
    });
}

void DigestStore::remove(const std::string& digest_id) {
    pool_.with([&](mysql::Connection& c) { c.execute("DELETE FROM digest_items WHERE digest_id = ?", {digest_id}); });
}

int64_t DigestStore::waiting() {
    return pool_.with([&](mysql::Connection& c) {
        return c.query("SELECT COUNT(*) FROM digest_items WHERE digest_id IS NULL").at(0).integer(0);
    });
}

}  // namespace mp3c::notification
