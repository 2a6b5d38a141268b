#include "mp3c/testing/servers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
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

uint16_t free_port() {
    int ephemeral_low = 32768;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
    std::random_device seed;
    std::mt19937 random(seed());
    std::uniform_int_distribution<int> candidates(20000, std::max(20001, ephemeral_low - 1));
    for (int attempt = 0; attempt < 1000; ++attempt) {
        int port = candidates(random);
        if (port == 25672) continue;  // RabbitMQ's default distribution port
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::runtime_error("free_port: socket failed");
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(static_cast<uint16_t>(port));
        bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
        ::close(fd);
        if (free) return static_cast<uint16_t>(port);
    }
    throw std::runtime_error("free_port: no free port below the ephemeral range");
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

mysql::Options TemporaryDatabase::options() const {
    mysql::Options o;
    o.host = server_.host;
    o.port = server_.port;
    o.user = server_.user;
    o.password = server_.password;
    o.database = name_;
    return o;
}

}  // namespace mp3c::testing
