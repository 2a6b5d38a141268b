#include <mysql.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "mp3c/c_handle.hpp"
#include "mp3c/mysql.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::mysql {

namespace {

using ResultPtr = CHandle<MYSQL_RES, mysql_free_result>;

constexpr unsigned long kInitialColumnBuffer = 256;

}  // namespace

struct ConnectionHandles {
    CHandle<MYSQL, mysql_close> mysql;
};

struct Connection::Statement {
    CHandle<MYSQL_STMT, mysql_stmt_close> stmt;
};

bool Error::unavailable() const {
    switch (code_) {
        case kPoolExhausted:
        case kLockTimeout:
        case 1040:  // too many connections
        case 1044:  // access denied to the database
        case 1045:  // access denied
        case 1049:  // unknown database
        case 1053:  // server shutdown in progress
        case 1927:  // connection killed
        case 4031:  // disconnected by the server for inactivity
            return true;
        default:
            return code_ >= 2000;  // every client-side error: cannot connect, server gone, lost connection
    }
}

const std::string& Row::text(size_t i) const {
    const auto& column = columns_.at(i);
    if (!column) throw Error(Error::kMisuse, "column " + std::to_string(i) + " is NULL");
    return *column;
}

int64_t Row::integer(size_t i) const {
    const auto& t = text(i);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size())
        throw Error(Error::kMisuse, "column " + std::to_string(i) + " is not an integer");
    return v;
}

uint64_t Row::unsigned_integer(size_t i) const {
    const auto& t = text(i);
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size())
        throw Error(Error::kMisuse, "column " + std::to_string(i) + " is not an integer");
    return v;
}

double Row::real(size_t i) const { return std::stod(text(i)); }

namespace {

CHandle<MYSQL, mysql_close> new_handle(const Options& options) {
    CHandle<MYSQL, mysql_close> m(mysql_init(nullptr));
    if (!m) throw Error(2008, "mysql_init: out of memory");
    unsigned connect_timeout = static_cast<unsigned>(options.connect_timeout.count());
    unsigned read_timeout = static_cast<unsigned>(options.read_timeout.count());
    unsigned write_timeout = static_cast<unsigned>(options.write_timeout.count());
    my_bool no_reconnect = 0;  // reconnecting silently would lose session state; the pool replaces connections
    mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(m.get(), MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    mysql_options(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
    mysql_options(m.get(), MYSQL_OPT_RECONNECT, &no_reconnect);
    mysql_options(m.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
    return m;
}

std::optional<std::string> single_value(MYSQL* m, const char* sql) {
    if (mysql_query(m, sql) != 0) return std::nullopt;
    CHandle<MYSQL_RES, mysql_free_result> result(mysql_store_result(m));
    if (!result) return std::nullopt;
    MYSQL_ROW row = mysql_fetch_row(result.get());
    if (row == nullptr || row[0] == nullptr) return std::string();
    return std::string(row[0]);
}

// A Galera node that is up but not part of the cluster's primary component (cut off, or still catching up after a
// restart) accepts connections and refuses every statement (1047), and a donor may be held by a snapshot: with other
// nodes to choose from, a node that is not Synced is passed over. A server without Galera has no such status: ready.
bool accepts_statements(MYSQL* m) {
    auto wsrep_on = single_value(m, "SELECT @@GLOBAL.wsrep_on");
    if (!wsrep_on || *wsrep_on != "1") return true;  // no Galera (or a build without it)
    // Synced (4), not only ready: a donor or a desynced node is ready too, and may be held by a snapshot's lock.
    return single_value(m,
                        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                        "WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'") == "4";
}

}  // namespace

Connection::Connection(const Options& options) : handles_(std::make_unique<ConnectionHandles>()) {
    auto servers = endpoints(options.host, options.port);
    if (!servers) throw Error(2005, "MariaDB: MYSQL_HOST is not a list of host or host:port");
    const char* database = options.database.empty() ? nullptr : options.database.c_str();
    std::string failures;
    for (const auto& server : *servers) {
        auto m = new_handle(options);
        std::string where = server.host + ":" + std::to_string(server.port);
        if (mysql_real_connect(m.get(), server.host.c_str(), options.user.c_str(), options.password.c_str(), database,
                               server.port, nullptr, 0) == nullptr) {
            handles_->mysql = std::move(m);
            // One server: its own error. A refused login or database (1044, 1045, 1049) would be refused by every
            // node alike; anything else (too many connections, shutting down, unreachable) is this node's.
            unsigned code = mysql_errno(handles_->mysql.get());
            if (servers->size() == 1 || code == 1044 || code == 1045 || code == 1049) fail("connect to " + where);
            failures += (failures.empty() ? "" : "; ") + where + ": " + mysql_error(handles_->mysql.get());
            continue;
        }
        if (servers->size() > 1 && !accepts_statements(m.get())) {
            failures += (failures.empty() ? "" : "; ") + where + ": not ready (its Galera state is not Synced)";
            continue;
        }
        handles_->mysql = std::move(m);
        // Timestamps are stored and read in UTC whatever the server's zone.
        run_ddl("SET time_zone = '+00:00'");
        last_used = std::chrono::steady_clock::now();
        return;
    }
    throw Error(2003, "MariaDB: no server of " + std::to_string(servers->size()) + " could be used: " + failures);
}

Connection::~Connection() = default;

std::optional<std::vector<Endpoint>> endpoints(const std::string& hosts, uint16_t default_port) {
    std::vector<Endpoint> list;
    for (auto part : split(hosts, ',')) {
        std::string one(trim(part));
        if (one.empty()) return std::nullopt;
        Endpoint e{one, default_port};
        // host:port; an IPv6 address has colons of its own and is written [address]:port, or bare without a port.
        size_t colon = one.rfind(':');
        bool bracketed = one.front() == '[';
        if (colon != std::string::npos && (bracketed ? one[colon - 1] == ']' : one.find(':') == colon)) {
            unsigned port = 0;
            auto digits = std::string_view(one).substr(colon + 1);
            auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
            if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || port == 0 ||
                port > 65535) {
                return std::nullopt;
            }
            e.port = static_cast<uint16_t>(port);
            e.host = one.substr(0, colon);
        }
        if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') {
            e.host = e.host.substr(1, e.host.size() - 2);
        }
        if (e.host.empty()) return std::nullopt;
        list.push_back(std::move(e));
    }
    return list;
}

void Connection::fail(const std::string& what) {
    MYSQL* m = handles_->mysql.get();
    throw Error(mysql_errno(m), "MariaDB: " + what + ": " + mysql_error(m));
}

Connection::Statement& Connection::prepare(const std::string& sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return *it->second;
    auto statement = std::make_unique<Statement>();
    statement->stmt.reset(mysql_stmt_init(handles_->mysql.get()));
    if (!statement->stmt) fail("mysql_stmt_init");
    if (mysql_stmt_prepare(statement->stmt.get(), sql.data(), sql.size()) != 0) {
        throw Error(mysql_stmt_errno(statement->stmt.get()),
                    std::string("MariaDB: prepare failed: ") + mysql_stmt_error(statement->stmt.get()));
    }
    return *statements_.emplace(sql, std::move(statement)).first->second;
}

namespace {

[[noreturn]] void statement_fail(MYSQL_STMT* stmt, const char* what) {
    throw Error(mysql_stmt_errno(stmt), std::string("MariaDB: ") + what + ": " + mysql_stmt_error(stmt));
}

void bind_and_execute(MYSQL_STMT* stmt, const Params& params) {
    if (params.size() != mysql_stmt_param_count(stmt)) {
        throw Error(Error::kMisuse, "statement expects " + std::to_string(mysql_stmt_param_count(stmt)) +
                                        " parameters, got " + std::to_string(params.size()));
    }
    std::vector<MYSQL_BIND> binds(params.size());
    std::vector<unsigned long> lengths(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
        MYSQL_BIND& b = binds[i];
        std::memset(&b, 0, sizeof b);
        std::visit(
            [&](const auto& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::nullptr_t>) {
                    b.buffer_type = MYSQL_TYPE_NULL;
                } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>) {
                    b.buffer_type = MYSQL_TYPE_LONGLONG;
                    b.buffer = const_cast<T*>(&v);
                    b.is_unsigned = std::is_same_v<T, uint64_t>;
                } else if constexpr (std::is_same_v<T, double>) {
                    b.buffer_type = MYSQL_TYPE_DOUBLE;
                    b.buffer = const_cast<double*>(&v);
                } else {
                    b.buffer_type = MYSQL_TYPE_STRING;
                    b.buffer = const_cast<char*>(v.data());
                    b.buffer_length = v.size();
                    lengths[i] = v.size();
                    b.length = &lengths[i];
                }
            },
            params[i]);
    }
    if (!binds.empty() && mysql_stmt_bind_param(stmt, binds.data()) != 0) statement_fail(stmt, "bind");
    if (mysql_stmt_execute(stmt) != 0) statement_fail(stmt, "execute");
}

}  // namespace

std::vector<Row> Connection::query(const std::string& sql, const Params& params) {
    last_used = std::chrono::steady_clock::now();
    MYSQL_STMT* stmt = prepare(sql).stmt.get();
    bind_and_execute(stmt, params);
    ResultPtr meta(mysql_stmt_result_metadata(stmt));
    if (!meta) {
        if (mysql_stmt_field_count(stmt) == 0) return {};
        statement_fail(stmt, "result metadata");
    }
    if (mysql_stmt_store_result(stmt) != 0) statement_fail(stmt, "store result");
    unsigned columns = mysql_num_fields(meta.get());
    std::vector<MYSQL_BIND> binds(columns);
    std::vector<std::string> buffers(columns, std::string(kInitialColumnBuffer, '\0'));
    std::vector<unsigned long> lengths(columns);
    std::vector<my_bool> nulls(columns), errors(columns);
    for (unsigned i = 0; i < columns; ++i) {
        std::memset(&binds[i], 0, sizeof(MYSQL_BIND));
        binds[i].buffer_type = MYSQL_TYPE_STRING;
        binds[i].buffer = buffers[i].data();
        binds[i].buffer_length = kInitialColumnBuffer;
        binds[i].length = &lengths[i];
        binds[i].is_null = &nulls[i];
        binds[i].error = &errors[i];
    }
    if (mysql_stmt_bind_result(stmt, binds.data()) != 0) statement_fail(stmt, "bind result");
    std::vector<Row> rows;
    for (;;) {
        int rc = mysql_stmt_fetch(stmt);
        if (rc == MYSQL_NO_DATA) break;
        if (rc == 1) {
            mysql_stmt_free_result(stmt);
            statement_fail(stmt, "fetch");
        }
        std::vector<std::optional<std::string>> values(columns);
        for (unsigned i = 0; i < columns; ++i) {
            if (nulls[i]) continue;
            if (lengths[i] <= kInitialColumnBuffer) {
                values[i] = std::string(buffers[i].data(), lengths[i]);
                continue;
            }
            // Longer than the first buffer (MYSQL_DATA_TRUNCATED): fetch this column again at its full length.
            std::string full(lengths[i], '\0');
            MYSQL_BIND b;
            std::memset(&b, 0, sizeof b);
            unsigned long full_length = 0;
            b.buffer_type = MYSQL_TYPE_STRING;
            b.buffer = full.data();
            b.buffer_length = full.size();
            b.length = &full_length;
            if (mysql_stmt_fetch_column(stmt, &b, i, 0) != 0) statement_fail(stmt, "fetch column");
            values[i] = std::move(full);
        }
        rows.emplace_back(std::move(values));
    }
    mysql_stmt_free_result(stmt);
    return rows;
}

uint64_t Connection::execute(const std::string& sql, const Params& params) {
    last_used = std::chrono::steady_clock::now();
    MYSQL_STMT* stmt = prepare(sql).stmt.get();
    bind_and_execute(stmt, params);
    uint64_t affected = mysql_stmt_affected_rows(stmt);
    last_insert_id_ = mysql_stmt_insert_id(stmt);
    if (mysql_stmt_field_count(stmt) > 0) {
        mysql_stmt_store_result(stmt);
        mysql_stmt_free_result(stmt);
    }
    return affected;
}

void Connection::run_ddl(const std::string& sql) {
    last_used = std::chrono::steady_clock::now();
    MYSQL* m = handles_->mysql.get();
    if (mysql_real_query(m, sql.data(), sql.size()) != 0) fail("statement failed");
    ResultPtr result(mysql_store_result(m));  // DDL has none; drain in case
}

bool Connection::ping() {
    bool ok = mysql_ping(handles_->mysql.get()) == 0;
    if (ok) last_used = std::chrono::steady_clock::now();
    return ok;
}

void Connection::begin() { run_ddl("START TRANSACTION"); }

void Connection::commit() {
    if (mysql_commit(handles_->mysql.get()) != 0) fail("commit");
}

void Connection::rollback() {
    if (mysql_rollback(handles_->mysql.get()) != 0) fail("rollback");
}

}  // namespace mp3c::mysql
