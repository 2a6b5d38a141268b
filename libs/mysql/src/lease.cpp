#include <cstdio>
#include <random>

#include "mp3c/mysql.hpp"

namespace mp3c::mysql {

namespace {

constexpr unsigned kNoSuchTable = 1146;

void create_table(Connection& c) {
    // Idempotent DDL; on Galera, replicated to every node in total order.
    c.run_ddl(
        "CREATE TABLE IF NOT EXISTS mp3c_leases ("
        " name VARCHAR(191) NOT NULL PRIMARY KEY,"
        " holder VARCHAR(64) NOT NULL,"
        " expires_at TIMESTAMP(3) NOT NULL"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
}

}  // namespace

bool try_lease(Connection& c, const std::string& name, const std::string& holder, std::chrono::seconds ttl) {
    // Taken when free or run out; renewed when ours. MariaDB runs the assignments left to right (as in UPDATE), so the
    // expiry moves only when the holder, already updated, is the taker.
    auto take = [&] {
        c.execute(
            "INSERT INTO mp3c_leases (name, holder, expires_at) VALUES (?, ?, NOW(3) + INTERVAL ? SECOND) "
            "ON DUPLICATE KEY UPDATE holder = IF(expires_at < NOW(3), VALUES(holder), holder), "
            "expires_at = IF(holder = VALUES(holder), VALUES(expires_at), expires_at)",
            {name, holder, int64_t{ttl.count()}});
    };
    try {
        try {
            take();
        } catch (const Error& e) {
            if (e.code() != kNoSuchTable) throw;
            create_table(
                c);  // the first lease of this database (DDL only then: on Galera it stops the cluster briefly)
            take();
        }
    } catch (const Error& e) {
        if (e.deadlock()) return false;  // another node's taker won the certification
        throw;
    }
    auto rows = c.query("SELECT holder FROM mp3c_leases WHERE name = ?", {name});
    return !rows.empty() && rows[0].text(0) == holder;
}

void release_lease(Connection& c, const std::string& name, const std::string& holder) {
    c.execute("DELETE FROM mp3c_leases WHERE name = ? AND holder = ?", {name, holder});
}

std::string new_lease_holder() {
    thread_local std::mt19937_64 random{std::random_device{}()};
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(random()),
                  static_cast<unsigned long long>(random()));
    return hex;
}

}  // namespace mp3c::mysql
