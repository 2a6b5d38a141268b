// The real `auth` and `mp3converter-admin` binaries against the harness's MariaDB: configuration errors, a database
// outage, SIGTERM during a request, and the admin tool. Stops the shared MariaDB, so ctest runs it alone.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>
#include <thread>

#include "mp3c/testing/eventually.hpp"
#include "mp3c/testing/http_client.hpp"
#include "mp3c/testing/process.hpp"
#include "mp3c/testing/servers.hpp"

namespace mp3c::auth {
namespace {

using namespace std::chrono_literals;
using testing::basic_auth;
using testing::http_request;
using testing::HttpConnection;
using testing::Process;

const std::string kAuthBinary = std::string(MP3C_BIN_DIR) + "/auth";
const std::string kAdminBinary = std::string(MP3C_BIN_DIR) + "/mp3converter-admin";

using testing::eventually;

class AuthProcessTest : public ::testing::Test {
  protected:
    AuthProcessTest() : server_(testing::mysql_server()), database_(server_) {}
    void TearDown() override { testing::harness_ctl("start", "mariadb"); }

    std::map<std::string, std::string> env() {
        return {{"MYSQL_HOST", server_.host},     {"MYSQL_PORT", std::to_string(server_.port)},
                {"MYSQL_USER", server_.user},     {"MYSQL_PASSWORD", server_.password},
                {"MYSQL_DB", database_.name()},   {"JWT_SECRET", "process-test-secret-0123456789abcdefgh"},
                {"ALLOW_REGISTRATION", "true"},   {"PASSWORD_HASH_OPS", "1"},
                {"PASSWORD_HASH_MEMORY", "8KiB"}, {"BIND_ADDRESS", "127.0.0.1"},
                {"PORT", std::to_string(port_)},  {"ADMIN_PORT", "0"},
                {"AMQP_URL", amqp_url()},         {"AMQP_NAME_PREFIX", "ap" + database_.name() + "."}};
    }

    std::unique_ptr<Process> start_auth(std::map<std::string, std::string> extra = {}) {
        auto e = env();
        for (auto& [k, v] : extra) e[k] = v;
        auto p = std::make_unique<Process>(kAuthBinary, std::vector<std::string>{}, e);
        EXPECT_TRUE(p->wait_for_output("\"listening\"", 30s)) << p->output();
        return p;
    }

    testing::CommandResult admin(const std::vector<std::string>& args, const std::string& input = {}) {
        auto e = env();
        e["PASSWORD_HASH_OPS"] = "1";
        return testing::run_command(kAdminBinary, args, e, input);
    }

    static std::string amqp_url() {
        const char* url = std::getenv("MP3C_TEST_AMQP_URL");
        if (url == nullptr) throw std::runtime_error("MP3C_TEST_AMQP_URL not set: run under scripts/with-servers");
        return url;
    }

    int register_user(const std::string& email, const std::string& password) {
        return http_request(port_, "POST", "/register", {{"Content-Type", "application/json"}},
                            nlohmann::json{{"email", email}, {"password", password}}.dump())
            .status;
    }

    testing::MysqlServer server_;
    testing::TemporaryDatabase database_;
    uint16_t port_ = testing::free_port();
};

TEST_F(AuthProcessTest, InvalidConfigurationExitsWithTheVariableNamed) {
    auto e = env();
    e["JWT_SECRET"] = "weak";
    e["TOKEN_TTL"] = "forever";
    Process p(kAuthBinary, {}, e);
    EXPECT_EQ(p.wait(30s), 2);
    EXPECT_NE(p.output().find("JWT_SECRET: the secret is too short"), std::string::npos) << p.output();
    EXPECT_NE(p.output().find("TOKEN_TTL: 'forever' is not a duration"), std::string::npos) << p.output();
}

TEST_F(AuthProcessTest, TheExampleJwtSecretIsRefused) {
    auto e = env();
    e["JWT_SECRET"] = "change-me-jwt-secret-at-least-32-characters";  // deploy/kubernetes/base/secrets.env.example
    Process p(kAuthBinary, {}, e);
    EXPECT_EQ(p.wait(30s), 2);
    EXPECT_NE(p.output().find("JWT_SECRET: holds a placeholder"), std::string::npos) << p.output();
}

TEST_F(AuthProcessTest, LogsAreOneJsonObjectPerLine) {
    auto auth = start_auth();
    http_request(port_, "GET", "/healthz");
    http_request(port_, "POST", "/login");
    auth->signal(SIGTERM);
    ASSERT_EQ(auth->wait(30s), 0) << auth->output();
    std::istringstream lines(auth->output());
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) {
        auto parsed = nlohmann::json::parse(line, nullptr, false);
        ASSERT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
        EXPECT_EQ(parsed["service"], "auth");
        EXPECT_TRUE(parsed.contains("time") && parsed.contains("level") && parsed.contains("message"));
        ++count;
    }
    EXPECT_GE(count, 3);
}

TEST_F(AuthProcessTest, DatabaseOutageGives503AndServiceRecovers) {
    auto auth = start_auth();
    ASSERT_TRUE(eventually([&] { return http_request(port_, "GET", "/readyz").status == 200; }));
    ASSERT_EQ(admin({"user", "add", "--email", "outage@example.com"}, "outage-password\n").status, 0);
    ASSERT_EQ(
        http_request(port_, "POST", "/login", {{"Authorization", basic_auth("outage@example.com", "outage-password")}})
            .status,
        200);

    testing::harness_ctl("stop", "mariadb");
    auto during =
        http_request(port_, "POST", "/login", {{"Authorization", basic_auth("outage@example.com", "outage-password")}});
    EXPECT_EQ(during.status, 503) << during.body;
    EXPECT_EQ(during.json()["error"], "database_unavailable");
    EXPECT_EQ(during.header("retry-after"), "5");
    auto ready = http_request(port_, "GET", "/readyz");
    EXPECT_EQ(ready.status, 503);
    EXPECT_EQ(ready.json()["error"], "not_ready");
    EXPECT_EQ(register_user("new@example.com", "new-password"), 503);
    EXPECT_EQ(http_request(port_, "GET", "/healthz").status, 200) << "alive, just not ready";

    testing::harness_ctl("start", "mariadb");
    EXPECT_TRUE(eventually([&] {
        return http_request(port_, "POST", "/login",
                            {{"Authorization", basic_auth("outage@example.com", "outage-password")}})
                   .status == 200;
    }));
    EXPECT_EQ(http_request(port_, "GET", "/readyz").status, 200);
    auth->signal(SIGTERM);
    EXPECT_EQ(auth->wait(30s), 0);
}

TEST_F(AuthProcessTest, StartsWhileTheDatabaseIsDownAndBecomesReadyWhenItReturns) {
    testing::harness_ctl("stop", "mariadb");
    auto auth = start_auth();
    EXPECT_EQ(http_request(port_, "GET", "/readyz").status, 503);
    EXPECT_EQ(register_user("early@example.com", "early-password"), 503);
    testing::harness_ctl("start", "mariadb");
    EXPECT_TRUE(eventually([&] { return http_request(port_, "GET", "/readyz").status == 200; }, 60s));
    EXPECT_EQ(register_user("early@example.com", "early-password"), 202);
}

TEST_F(AuthProcessTest, SigtermLetsAnInFlightRequestFinishThenExitsZero) {
    auto auth = start_auth();
    ASSERT_TRUE(eventually([&] { return http_request(port_, "GET", "/readyz").status == 200; }));
    std::string body = nlohmann::json{{"email", "sigterm@example.com"}, {"password", "sigterm-password"}}.dump();
    HttpConnection c("127.0.0.1", port_);
    ASSERT_TRUE(
        c.send_raw("POST /register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: "
                   "100-continue\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
    ASSERT_TRUE(c.read_continue()) << "the server has read the header: the request is in flight";
    auth->signal(SIGTERM);
    // A new connection is refused once the listener closes; the in-flight request still completes.
    EXPECT_TRUE(eventually([&] {
        try {
            HttpConnection probe("127.0.0.1", port_);
            return false;
        } catch (const std::exception&) {
            return true;
        }
    }));
    ASSERT_TRUE(c.send_raw(body));
    auto response = c.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 202) << response->body;
    EXPECT_EQ(response->header("connection"), "close");
    EXPECT_EQ(auth->wait(30s), 0) << auth->output();
    EXPECT_NE(auth->output().find("\"stopped\""), std::string::npos);
}

TEST_F(AuthProcessTest, AdminToolManagesUsers) {
    auto added = admin({"user", "add", "--email", "Admin@Example.com", "--admin"}, "admin-password\n");
    ASSERT_EQ(added.status, 0) << added.out;
    EXPECT_NE(added.out.find("created admin admin@example.com"), std::string::npos) << added.out;
    EXPECT_EQ(admin({"user", "add", "--email", "admin@example.com"}, "admin-password\n").status, 1);
    EXPECT_EQ(admin({"user", "add", "--email", "x@example.com"}, "short\n").status, 1);
    EXPECT_EQ(admin({"user", "add", "--email", "not an email"}, "long-enough\n").status, 1);
    EXPECT_EQ(admin({"user", "add", "--email", "plain@example.com"}, "plain-password\n").status, 0);

    auto listed = admin({"user", "list", "--json"});
    ASSERT_EQ(listed.status, 0) << listed.out;
    auto users = nlohmann::json::parse(listed.out);
    ASSERT_EQ(users.size(), 2u);
    EXPECT_EQ(users[0]["email"], "admin@example.com");
    EXPECT_EQ(users[0]["role"], "admin");
    EXPECT_EQ(users[1]["role"], "user");

    auto auth = start_auth();
    ASSERT_TRUE(eventually([&] { return http_request(port_, "GET", "/readyz").status == 200; }));
    auto token =
        http_request(port_, "POST", "/login", {{"Authorization", basic_auth("admin@example.com", "admin-password")}});
    ASSERT_EQ(token.status, 200);
    EXPECT_EQ(http_request(port_, "POST", "/validate", {{"Authorization", "Bearer " + token.body}}).json()["admin"],
              true);

    EXPECT_EQ(admin({"user", "set-password", "--email", "plain@example.com"}, "changed-password\n").status, 0);
    EXPECT_EQ(
        http_request(port_, "POST", "/login", {{"Authorization", basic_auth("plain@example.com", "plain-password")}})
            .status,
        401);
    EXPECT_EQ(
        http_request(port_, "POST", "/login", {{"Authorization", basic_auth("plain@example.com", "changed-password")}})
            .status,
        200);

    EXPECT_EQ(admin({"user", "set-role", "--email", "plain@example.com", "--role", "admin"}).status, 0);
    EXPECT_EQ(admin({"user", "set-role", "--email", "plain@example.com", "--role", "king"}).status, 2);
    EXPECT_EQ(admin({"user", "delete", "--email", "plain@example.com"}).status, 0);
    EXPECT_EQ(admin({"user", "delete", "--email", "plain@example.com"}).status, 1);
    EXPECT_EQ(admin({"user", "frobnicate"}).status, 2);
    EXPECT_EQ(admin({"user", "add", "--email", "p@example.com", "--password", "on-the-command-line"}).status, 2)
        << "passwords are never taken from the command line";
    auto table = admin({"user", "list"});
    EXPECT_NE(table.out.find("admin@example.com"), std::string::npos);
    EXPECT_EQ(table.out.find("plain@example.com"), std::string::npos);
}

}  // namespace
}  // namespace mp3c::auth
