#pragma once

#include <cstdint>
#include <string>

#include "mp3c/mysql.hpp"

// The real servers that scripts/with-servers starts for integration tests, found through its environment variables.
namespace mp3c::testing {

struct MysqlServer {
    std::string host;
    uint16_t port = 0;
    std::string user;
    std::string password;
};

// The harness's MariaDB. Throws (failing the test with a message saying how to run it) when the harness is absent.
MysqlServer mysql_server();

// Stops or starts a harness server in place (same port and data): harness_ctl("stop", "mariadb").
void harness_ctl(const std::string& action, const std::string& server);

// Runs SQL through the mariadb command-line client as the harness's admin user; throws on failure.
std::string mysql_admin(const MysqlServer& server, const std::string& sql);

// A free TCP port on 127.0.0.1 for a server a test starts, picked at random below the kernel's ephemeral range (as
// scripts/lib/mp3c_local's free_port): an outgoing connection of a concurrent test never takes it as its local end,
// so the server can bind it, and bind it again after a restart. Throws when none is free.
uint16_t free_port();

// A database of its own for one test, dropped at the end.
class TemporaryDatabase {
  public:
    explicit TemporaryDatabase(const MysqlServer& server);
    ~TemporaryDatabase();
    const std::string& name() const { return name_; }
    // How a pool reaches it (pool size and timeouts at their defaults).
    mysql::Options options() const;

  private:
    MysqlServer server_;
    std::string name_;
};

}  // namespace mp3c::testing
