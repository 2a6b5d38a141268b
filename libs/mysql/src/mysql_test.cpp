#include "mp3c/mysql.hpp"

#include <gtest/gtest.h>

#include <future>

#include "mp3c/testing/servers.hpp"

namespace mp3c::mysql {
namespace {

class MysqlTest : public ::testing::Test {
  protected:
    MysqlTest() : server_(testing::mysql_server()), database_(server_) {}

    Options options(size_t pool_size = 4) {
        Options o = database_.options();
        o.pool_size = pool_size;
        return o;
    }

    testing::MysqlServer server_;
    testing::TemporaryDatabase database_;
};

TEST_F(MysqlTest, PreparedStatementsRoundTripEveryType) {
    Pool pool(options());
    pool.with([](Connection& c) {
        c.run_ddl(
            "CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(255), n BIGINT, u BIGINT UNSIGNED, d "
            "DOUBLE,"
            " big TEXT)");
        std::string long_text(5000, 'x');
        c.execute(
            "INSERT INTO t (s, n, u, d, big) VALUES (?, ?, ?, ?, ?)",
            {std::string("jörg'; DROP TABLE t; --"), int64_t{-42}, uint64_t{18446744073709551615ull}, 2.5, long_text});
        EXPECT_EQ(c.last_insert_id(), 1u);
        c.execute("INSERT INTO t (s, n, u, d, big) VALUES (?, ?, ?, ?, ?)",
                  {nullptr, nullptr, nullptr, nullptr, nullptr});
        auto rows = c.query("SELECT s, n, u, d, big FROM t ORDER BY id");
        ASSERT_EQ(rows.size(), 2u);
        EXPECT_EQ(rows[0].text(0), "jörg'; DROP TABLE t; --");
        EXPECT_EQ(rows[0].integer(1), -42);
        EXPECT_EQ(rows[0].unsigned_integer(2), 18446744073709551615ull);
        EXPECT_DOUBLE_EQ(rows[0].real(3), 2.5);
        EXPECT_EQ(rows[0].text(4), long_text);
        for (size_t i = 0; i < 5; ++i) EXPECT_TRUE(rows[1].is_null(i));
        EXPECT_THROW(rows[1].text(0), Error);
    });
}

TEST_F(MysqlTest, StatementsAreReusedAndParameterCountChecked) {
    Pool pool(options());
    pool.with([](Connection& c) {
        for (int64_t i = 0; i < 3; ++i) {
            auto rows = c.query("SELECT ? + 1", {i});
            EXPECT_EQ(rows.at(0).integer(0), i + 1);
        }
        try {
            c.query("SELECT ?", {});
            FAIL() << "a missing parameter must throw";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Error::kMisuse);
            EXPECT_FALSE(e.unavailable()) << "a bug is a 500, not a 503";
        }
    });
}

TEST_F(MysqlTest, DuplicateKeyIsRecognisable) {
    Pool pool(options());
    pool.with([](Connection& c) {
        c.run_ddl("CREATE TABLE u (email VARCHAR(100) PRIMARY KEY)");
        c.execute("INSERT INTO u VALUES (?)", {std::string("a@b.c")});
        try {
            c.execute("INSERT INTO u VALUES (?)", {std::string("a@b.c")});
            FAIL() << "expected a duplicate key error";
        } catch (const Error& e) {
            EXPECT_TRUE(e.duplicate_key());
            EXPECT_FALSE(e.unavailable());
        }
    });
    // The connection stays usable after a statement error.
    EXPECT_EQ(pool.with([](Connection& c) { return c.query("SELECT COUNT(*) FROM u").at(0).integer(0); }), 1);
}

TEST_F(MysqlTest, SyntaxErrorThrowsWithServerMessage) {
    Pool pool(options());
    try {
        pool.with([](Connection& c) { c.query("SELEC nonsense"); });
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), 1064u);
        EXPECT_NE(std::string(e.what()).find("syntax"), std::string::npos) << e.what();
    }
}

TEST_F(MysqlTest, TransactionsCommitAndRollBack) {
    Pool pool(options());
    pool.with([](Connection& c) {
        c.run_ddl("CREATE TABLE tx (v INT) ENGINE=InnoDB");
        c.begin();
        c.execute("INSERT INTO tx VALUES (?)", {int64_t{1}});
        c.rollback();
        c.begin();
        c.execute("INSERT INTO tx VALUES (?)", {int64_t{2}});
        c.commit();
        auto rows = c.query("SELECT v FROM tx");
        ASSERT_EQ(rows.size(), 1u);
        EXPECT_EQ(rows[0].integer(0), 2);
    });
}

TEST_F(MysqlTest, OnlyADeadlockVictimIsRunAgainAndOnlyAFewTimes) {
    Pool pool(options());
    pool.with([](Connection& c) { c.run_ddl("CREATE TABLE attempts (n INT) ENGINE=InnoDB"); });
    int attempts = 0;
    EXPECT_THROW(pool.with([&](Connection& c) {
        return in_transaction(c, [&]() -> int {
            c.execute("INSERT INTO attempts VALUES (?)", {int64_t{++attempts}});
            throw Error(1213, "deadlock, always");
        });
    }),
                 Error);
    EXPECT_EQ(attempts, 3) << "bounded";
    EXPECT_TRUE(pool.with([](Connection& c) { return c.query("SELECT n FROM attempts"); }).empty())
        << "each attempt rolled back";
    attempts = 0;
    EXPECT_THROW(pool.with([&](Connection& c) {
        return in_transaction(c, [&]() -> int {
            ++attempts;
            throw Error(1062, "duplicate");
        });
    }),
                 Error);
    EXPECT_EQ(attempts, 1) << "only a deadlock is retried";
    attempts = 0;
    int result = pool.with([&](Connection& c) {
        return in_transaction(c, [&] {
            c.execute("INSERT INTO attempts VALUES (?)", {int64_t{++attempts}});
            if (attempts == 1) throw Error(1213, "deadlock, once");
            return attempts;
        });
    });
    EXPECT_EQ(result, 2);
    auto rows = pool.with([](Connection& c) { return c.query("SELECT n FROM attempts"); });
    ASSERT_EQ(rows.size(), 1u) << "the second run committed, the first left nothing";
    EXPECT_EQ(rows[0].integer(0), 2);
}

TEST_F(MysqlTest, PoolReusesConnectionsAndBoundsThem) {
    auto o = options(2);
    o.acquire_timeout = std::chrono::milliseconds(300);
    Pool pool(o);
    for (int i = 0; i < 10; ++i) pool.with([](Connection& c) { c.query("SELECT 1"); });
    EXPECT_EQ(pool.open_connections(), 1u);
    {
        auto a = pool.acquire();
        auto b = pool.acquire();
        EXPECT_EQ(pool.open_connections(), 2u);
        try {
            pool.acquire();
            FAIL() << "a third lease should time out";
        } catch (const Error& e) {
            EXPECT_TRUE(e.unavailable());
        }
    }
    EXPECT_NO_THROW(pool.acquire());
}

TEST_F(MysqlTest, UnreachableServerThrowsUnavailable) {
    auto o = options();
    o.port = 1;  // nothing listens there
    Pool pool(o);
    try {
        pool.acquire();
        FAIL();
    } catch (const Error& e) {
        EXPECT_TRUE(e.unavailable()) << e.code();
    }
    EXPECT_FALSE(pool.check());
    EXPECT_EQ(pool.open_connections(), 0u);
}

TEST_F(MysqlTest, WrongPasswordIsReported) {
    auto o = options();
    o.password = "wrong";
    Pool pool(o);
    try {
        pool.acquire();
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), 1045u);
    }
}

std::vector<Migration> sample_migrations() {
    return {
        {1, "create things", {"CREATE TABLE things (id INT PRIMARY KEY)"}},
        {2, "add name", {"ALTER TABLE things ADD COLUMN name VARCHAR(50)"}},
    };
}

TEST_F(MysqlTest, MigrationsApplyOnceInOrder) {
    Pool pool(options());
    auto migrations = sample_migrations();
    std::swap(migrations[0], migrations[1]);  // order of the list does not matter, versions do
    migrate(pool, migrations);
    migrate(pool, migrations);  // idempotent
    pool.with([](Connection& c) {
        auto versions = c.query("SELECT version, name FROM schema_migrations ORDER BY version");
        ASSERT_EQ(versions.size(), 2u);
        EXPECT_EQ(versions[0].integer(0), 1);
        EXPECT_EQ(versions[1].text(1), "add name");
        c.execute("INSERT INTO things (id, name) VALUES (?, ?)", {int64_t{1}, std::string("x")});
    });
}

TEST_F(MysqlTest, ConcurrentMigratorsApplyEachMigrationOnce) {
    Pool pool(options(4));
    auto a = std::async(std::launch::async, [&] { migrate(pool, sample_migrations()); });
    auto b = std::async(std::launch::async, [&] { migrate(pool, sample_migrations()); });
    EXPECT_NO_THROW(a.get());
    EXPECT_NO_THROW(b.get());
    EXPECT_EQ(
        pool.with([](Connection& c) { return c.query("SELECT COUNT(*) FROM schema_migrations").at(0).integer(0); }), 2);
}

// GET_LOCK is refused on a Galera cluster (MDEV-30473): the migrations and the sweeper hold leases, rows that every
// node sees.
TEST_F(MysqlTest, ALeaseHasOneHolderUntilReleasedOrRunOut) {
    Pool pool(options());
    std::string a = new_lease_holder(), b = new_lease_holder();
    ASSERT_NE(a, b);
    pool.with([&](Connection& c) {
        EXPECT_TRUE(try_lease(c, "sweep", a, std::chrono::seconds(60)));
        EXPECT_FALSE(try_lease(c, "sweep", b, std::chrono::seconds(60)));
        EXPECT_TRUE(try_lease(c, "other", b, std::chrono::seconds(60))) << "names are apart";
        EXPECT_TRUE(try_lease(c, "sweep", a, std::chrono::seconds(60))) << "its holder renews it";
        release_lease(c, "sweep", b);
        EXPECT_FALSE(try_lease(c, "sweep", b, std::chrono::seconds(60))) << "only its holder releases it";
        release_lease(c, "sweep", a);
        EXPECT_TRUE(try_lease(c, "sweep", b, std::chrono::seconds(60)));
        // b dies holding it: once its time has passed, another takes it.
        c.execute("UPDATE mp3c_leases SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE name = 'sweep'");
        EXPECT_TRUE(try_lease(c, "sweep", a, std::chrono::seconds(60)));
        EXPECT_FALSE(try_lease(c, "sweep", b, std::chrono::seconds(60)));
    });
}

TEST_F(MysqlTest, AMigratorWaitsForTheLeaseOfAnother) {
    Pool pool(options());
    std::string other = new_lease_holder();
    pool.with([&](Connection& c) { ASSERT_TRUE(try_lease(c, "schema migration", other, std::chrono::seconds(60))); });
    auto migrating = std::async(std::launch::async, [&] { migrate(pool, sample_migrations()); });
    EXPECT_EQ(migrating.wait_for(std::chrono::milliseconds(700)), std::future_status::timeout)
        << "it must not migrate while another holds the lease";
    EXPECT_EQ(pool.with([](Connection& c) {
        return c
            .query(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name = 'things'")[0]
            .integer(0);
    }),
              0);
    pool.with([&](Connection& c) { release_lease(c, "schema migration", other); });
    EXPECT_NO_THROW(migrating.get());
    EXPECT_EQ(
        pool.with([](Connection& c) { return c.query("SELECT COUNT(*) FROM schema_migrations").at(0).integer(0); }), 2);
    EXPECT_EQ(pool.with([](Connection& c) { return c.query("SELECT COUNT(*) FROM mp3c_leases")[0].integer(0); }), 0)
        << "released after migrating";
}

// MYSQL_HOST may list a Galera cluster's nodes: the first that accepts, in order, so that every replica writes
// through the same node.
TEST_F(MysqlTest, AConnectionTakesTheFirstServerOfTheListThatAccepts) {
    auto o = options();
    std::string live = o.host + ":" + std::to_string(o.port);
    o.host = "127.0.0.1:1, " + live + ", 127.0.0.1:2";
    Pool pool(o);
    EXPECT_EQ(pool.with([](Connection& c) { return c.query("SELECT @@port")[0].integer(0); }), o.port);
    o.host = "127.0.0.1:1,127.0.0.1:2";
    try {
        Connection none(o);
        ADD_FAILURE() << "connected to nothing";
    } catch (const Error& e) {
        EXPECT_TRUE(e.unavailable());
        EXPECT_NE(std::string(e.what()).find("no server of 2"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:2:"), std::string::npos) << e.what();
    }
    o.host = live + ",127.0.0.1:1";
    o.password = "wrong";
    try {
        Connection refused(o);
        ADD_FAILURE() << "a wrong password was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), 1045u) << "a refused login is final, not a reason to try the next node: " << e.what();
    }
}

TEST(MysqlOptions, TheHostListIsHostsOrHostPortsSeparatedByCommas) {
    using E = std::vector<Endpoint>;
    EXPECT_EQ(endpoints("db", 3306), (E{{"db", 3306}}));
    EXPECT_EQ(endpoints(" a:3307 , b,c:1 ", 3306), (E{{"a", 3307}, {"b", 3306}, {"c", 1}}));
    EXPECT_EQ(endpoints("[::1]:3307,::1", 3306), (E{{"::1", 3307}, {"::1", 3306}}));
    for (const char* bad : {"", "a,,b", "a:", "a:0", "a:65536", "a:x", ":3306", "a,"}) {
        EXPECT_FALSE(endpoints(bad, 3306)) << bad;
    }
}

TEST_F(MysqlTest, SchemaGuardBecomesReady) {
    Pool pool(options());
    SchemaGuard guard(pool, sample_migrations());
    EXPECT_TRUE(guard.wait_ready(std::chrono::seconds(30)));
}

}  // namespace
}  // namespace mp3c::mysql
