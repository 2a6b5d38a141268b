#include "mp3c/testing/servers.hpp"

#include <cstdlib>
#include <stdexcept>

#include "mp3c/crypto.hpp"
#include "mp3c/testing/process.hpp"

namespace mp3c::testing {
namespace {

std::string require_env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') {
        throw std::runtime_error(std::string(name) +
                                 " is not set: integration tests need the real servers; run them through "
                                 "scripts/with-servers (make test does this)");
    }
    return value;
}

}  // namespace

MysqlServer mysql_server() {
    MysqlServer s;
    s.host = require_env("MP3C_TEST_MYSQL_HOST");
    s.port = static_cast<uint16_t>(std::stoi(require_env("MP3C_TEST_MYSQL_PORT")));
    s.user = require_env("MP3C_TEST_MYSQL_USER");
    s.password = require_env("MP3C_TEST_MYSQL_PASSWORD");
    return s;
}

void harness_ctl(const std::string& action, const std::string& server) {
    auto result = run_command(require_env("MP3C_HARNESS_CTL"), {action, server}, {});
    if (result.status != 0) {
        throw std::runtime_error("harness-ctl " + action + " " + server + " failed: " + result.out);
    }
}

std::string mysql_admin(const MysqlServer& server, const std::string& sql) {
    auto result = run_command("/usr/bin/mariadb",
                              {"--no-defaults", "--protocol=TCP", "-h", server.host, "-P", std::to_string(server.port),
                               "-u", server.user, "-N", "-B", "-e", sql},
                              {{"MYSQL_PWD", server.password}});
    if (result.status != 0) throw std::runtime_error("mariadb client failed for `" + sql + "`: " + result.out);
    return result.out;
}

TemporaryDatabase::TemporaryDatabase(const MysqlServer& server)
    : server_(server), name_("test_" + crypto::random_hex(6)) {
    mysql_admin(server_, "CREATE DATABASE `" + name_ + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
}

TemporaryDatabase::~TemporaryDatabase() {
    try {
        mysql_admin(server_, "DROP DATABASE IF EXISTS `" + name_ + "`");
    } catch (const std::exception&) {
        // the server may be down in an outage test; the harness removes its whole data directory anyway
    }
}

}  // namespace mp3c::testing
