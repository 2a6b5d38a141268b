// Stops and restarts the harness's shared MariaDB: ctest runs this binary alone (RUN_SERIAL).
#include <gtest/gtest.h>

#include "mp3c/mysql.hpp"
#include "mp3c/testing/servers.hpp"

namespace mp3c::mysql {
namespace {

class MysqlOutageTest : public ::testing::Test {
  protected:
    MysqlOutageTest() : server_(testing::mysql_server()), database_(server_) {}
    void TearDown() override { testing::harness_ctl("start", "mariadb"); }  // whatever happened, leave it running

    Options options() { return database_.options(); }

    testing::MysqlServer server_;
    testing::TemporaryDatabase database_;
};

TEST_F(MysqlOutageTest, PoolRecoversAfterTheServerRestarts) {
    Pool pool(options());
    ASSERT_TRUE(pool.check());
    ASSERT_EQ(pool.open_connections(), 1u);

    testing::harness_ctl("stop", "mariadb");
    try {
        pool.with([](Connection& c) { c.query("SELECT 1"); });
        FAIL() << "query succeeded with the server stopped";
    } catch (const Error& e) {
        EXPECT_TRUE(e.unavailable()) << e.code() << " " << e.what();
    }
    EXPECT_FALSE(pool.check());
    EXPECT_EQ(pool.open_connections(), 0u);  // the dead connection was discarded, not returned

    testing::harness_ctl("start", "mariadb");
    auto checked = pool.check();
    EXPECT_TRUE(checked) << (checked ? "" : checked.error());
    EXPECT_EQ(pool.with([](Connection& c) { return c.query("SELECT 41 + 1").at(0).integer(0); }), 42);
}

TEST_F(MysqlOutageTest, SchemaGuardWaitsForTheServer) {
    testing::harness_ctl("stop", "mariadb");
    Pool pool(options());
    SchemaGuard guard(pool, {{1, "t", {"CREATE TABLE t (id INT)"}}});
    EXPECT_FALSE(guard.ready());
    testing::harness_ctl("start", "mariadb");
    EXPECT_TRUE(guard.wait_ready(std::chrono::seconds(60)));
}

}  // namespace
}  // namespace mp3c::mysql
