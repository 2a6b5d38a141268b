// Sign-in through the gateway, with auth running beside it: a stranger's guesses from one address must not lock the
// owner out on another. The clients are bound to 127.0.0.2 and 127.0.0.3, so that each side is told the real
// address: the gateway sees the socket's peer and passes it to auth in X-Forwarded-For, which auth believes only
// because the gateway (127.0.0.1) is its trusted proxy.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "auth_app.hpp"
#include "auth_test_config.hpp"
#include "gateway_fixture.hpp"
#include "mp3c/crypto.hpp"
#include "user_store.hpp"

namespace mp3c::gateway::test {
namespace {

constexpr const char* kStranger = "127.0.0.2";
constexpr const char* kOwner = "127.0.0.3";

class GatewayLoginTest : public GatewayTest {
  protected:
    GatewayLoginTest() : auth_database_(server_) {}
    ~GatewayLoginTest() override {
        stop();
        auth_http_.reset();
        auth_.reset();
    }

    void SetUp() override {
        auth::AuthConfig config = auth::test::auth_test_config(auth_database_.options(), kSecret);
        config.allow_registration = true;
        config.amqp.url = amqp_url();
        config.topology = topology_;
        config.throttle = {.max_failures_per_account = 5,
                           .max_failures_per_client = 20,
                           .account_slowdown_after = 5,
                           .window = 900s,
                           .max_account_delay = 30s};
        auth_ = std::make_unique<auth::AuthApp>(config);
        ASSERT_TRUE(auth_->schema().wait_ready(30s));
        auth_http_ =
            std::make_unique<http::Server>(config.server, auth_->router(), auth_->registry(), auth_->readiness());
        auth_url_ = "http://127.0.0.1:" + std::to_string(auth_http_->start());
        start([this](GatewayConfig& c) {
            c.auth_url = auth_url_;
            c.revocation_poll_interval = 200ms;
        });

        mysql::Pool pool(auth_database_.options());
        auth::UserStore users(pool);
        crypto::PasswordHasher hasher(crypto::PasswordHasher::minimum());
        ASSERT_TRUE(users.create("owner@example.com", hasher.hash("the-owners-password"), auth::Role::user).ok());
    }

    HttpResponse login(const char* from, const std::string& password) {
        testing::HttpConnection c("127.0.0.1", port_, 30s, from);
        return c.request("POST", "/login", {{"Authorization", testing::basic_auth("owner@example.com", password)}});
    }

    std::string signed_in() {
        auto r = login(kOwner, "the-owners-password");
        EXPECT_EQ(r.status, 200) << r.body;
        return r.body;
    }

    // How long until the gateway refuses a token auth has ended (it polls auth every 200 ms here).
    std::chrono::milliseconds time_until_refused(const std::string& tok, std::chrono::steady_clock::time_point since) {
        EXPECT_TRUE(eventually([&] { return get("/jobs", tok).status == 401; }, 10s))
            << "the gateway did not refuse the ended token";
        EXPECT_EQ(get("/jobs", tok).json()["error"], "token_revoked");
        auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since);
        std::printf("revocation reached the gateway after %lld ms\n", static_cast<long long>(delay.count()));
        return delay;
    }

    // The link of the next account mail auth publishes (the notification service would mail it).
    std::string next_link() {
        std::vector<nlohmann::json> mails;
        EXPECT_TRUE(eventually([&] {
            try {
                for (auto& m : drain(topology_.notification_account_queue)) mails.push_back(m);
            } catch (const amqp::Error&) {  // not declared until auth's first mail
            }
            return !mails.empty();
        }));
        return mails.empty() ? "" : mails[0].value("token", "");
    }

    HttpResponse post_json(const std::string& target, const nlohmann::json& body) {
        return testing::http_request(port_, "POST", target, {{"Content-Type", "application/json"}}, body.dump());
    }

    testing::TemporaryDatabase auth_database_;
    std::string auth_url_;
    std::unique_ptr<auth::AuthApp> auth_;
    std::unique_ptr<http::Server> auth_http_;
};

TEST_F(GatewayLoginTest, AStrangersGuessesDoNotLockTheOwnerOut) {
    // Eight wrong passwords from the stranger's address: the issue's attack.
    int refused = 0;
    for (int i = 0; i < 8; ++i) {
        auto r = login(kStranger, "guess-" + std::to_string(i));
        ASSERT_TRUE(r.status == 401 || r.status == 429) << r.status << " " << r.body;
        refused += r.status == 429;
    }
    EXPECT_GE(refused, 3) << "the stranger's address is refused for this account after 5 failures";
    auto stranger = login(kStranger, "the-owners-password");
    EXPECT_EQ(stranger.status, 429) << "even the right password, from the guessing address";
    EXPECT_FALSE(stranger.header("retry-after").empty());

    auto owner = login(kOwner, "the-owners-password");
    ASSERT_EQ(owner.status, 200) << owner.body;
    EXPECT_FALSE(owner.body.empty());
}

TEST_F(GatewayLoginTest, SigningOutEndsTheTokenAtTheGateway) {
    std::string tok = signed_in();
    std::string other = signed_in();  // another device of the same user
    ASSERT_EQ(get("/jobs", tok).status, 200);
    auto out = testing::http_request(port_, "POST", "/logout", bearer(tok));
    ASSERT_EQ(out.status, 204) << out.body;
    time_until_refused(tok, std::chrono::steady_clock::now());
    EXPECT_EQ(get("/jobs", other).status, 200) << "only the token that signed out is ended";
}

TEST_F(GatewayLoginTest, ChangingThePasswordEndsEveryOlderToken) {
    std::string tok = signed_in();
    std::string other = signed_in();
    auto refused = testing::http_request(port_, "POST", "/account/password", bearer(tok),
                                         R"({"current_password":"not-it","new_password":"a-new-password-1"})");
    EXPECT_EQ(refused.status, 403) << refused.body;
    auto changed =
        testing::http_request(port_, "POST", "/account/password", bearer(tok),
                              R"({"current_password":"the-owners-password","new_password":"a-new-password-1"})");
    ASSERT_EQ(changed.status, 200) << changed.body;
    std::string fresh = changed.body;
    time_until_refused(tok, std::chrono::steady_clock::now());
    EXPECT_EQ(get("/jobs", other).status, 401) << "every older token, on every device";
    EXPECT_EQ(get("/jobs", fresh).status, 200) << "the token handed out with the change goes on";
    EXPECT_EQ(login(kOwner, "the-owners-password").status, 401);
    EXPECT_EQ(login(kOwner, "a-new-password-1").status, 200);
}

// "Keep me signed in": an HttpOnly cookie for /session only, traded for a token and a new cookie at each use; a copy
// of an old value does not work; signing out in that browser or changing the password ends it.
TEST_F(GatewayLoginTest, KeepMeSignedInIsARevocableCookieTradedForTokens) {
    std::string tok = signed_in();
    auto session_cookie = [](const HttpResponse& r) {
        std::string set = r.header("set-cookie");
        auto start = set.find("mp3c_session=");
        return set.substr(start + 13, set.find(';') - start - 13);
    };
    auto resume = [&](const std::string& cookie) {
        return testing::http_request(port_, "POST", "/session",
                                     {{"Cookie", "other=1; mp3c_session=" + cookie}, {"Accept", "application/json"}});
    };
    EXPECT_EQ(testing::http_request(port_, "POST", "/session/remember", {}).status, 401) << "only with a token";
    auto remembered = testing::http_request(port_, "POST", "/session/remember", bearer(tok));
    ASSERT_EQ(remembered.status, 204) << remembered.body;
    std::string set = remembered.header("set-cookie");
    for (const char* attribute : {"Path=/session", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age="}) {
        EXPECT_NE(set.find(attribute), std::string::npos) << set;
    }
    std::string first = session_cookie(remembered);
    ASSERT_EQ(first.size(), 65u) << set;

    auto resumed = resume(first);
    ASSERT_EQ(resumed.status, 200) << resumed.body;
    std::string token = resumed.json()["token"];
    EXPECT_EQ(get("/jobs", token).status, 200) << "a working access token";
    std::string second = session_cookie(resumed);
    EXPECT_NE(second, first) << "each use replaces the secret";
    auto stale = resume(first);
    EXPECT_EQ(stale.status, 401) << "a copy of an old value works no more";
    EXPECT_EQ(stale.json()["error"], "no_session");
    EXPECT_NE(stale.header("set-cookie").find("Max-Age=0"), std::string::npos) << "and the browser forgets it";
    EXPECT_EQ(resume("0123").status, 401);
    EXPECT_EQ(testing::http_request(port_, "POST", "/session", {}).status, 401);

    // Signing out in that browser ends it.
    auto ended = testing::http_request(port_, "DELETE", "/session", {{"Cookie", "mp3c_session=" + second}});
    EXPECT_EQ(ended.status, 204);
    EXPECT_EQ(resume(second).status, 401);

    // A password change ends every remembered session of the user.
    std::string third = session_cookie(testing::http_request(port_, "POST", "/session/remember", bearer(tok)));
    ASSERT_EQ(resume(third).status, 200);
    std::string fourth = session_cookie(resume(third));  // third was replaced by the call above: refused, no cookie
    EXPECT_TRUE(fourth.empty());
    std::string fifth = session_cookie(testing::http_request(port_, "POST", "/session/remember", bearer(tok)));
    auto changed =
        testing::http_request(port_, "POST", "/account/password", bearer(tok),
                              R"({"current_password":"the-owners-password","new_password":"a-new-password-1"})");
    ASSERT_EQ(changed.status, 200) << changed.body;
    EXPECT_EQ(resume(fifth).status, 401) << "ended by the password change";
    // The token from before the change starts no new one (it is revoked at the gateway once the list has it).
    ASSERT_TRUE(eventually([&] { return get("/jobs", tok).status == 401; }));
    EXPECT_EQ(testing::http_request(port_, "POST", "/session/remember", bearer(tok)).status, 401);
}

TEST_F(GatewayLoginTest, DeletingTheUserEndsTheirTokens) {
    std::string tok = signed_in();
    ASSERT_EQ(get("/jobs", tok).status, 200);
    mysql::Pool pool(auth_database_.options());
    auth::UserStore users(pool);  // as mp3converter-admin delete does
    auto since = std::chrono::steady_clock::now();
    ASSERT_TRUE(users.remove("owner@example.com"));
    time_until_refused(tok, since);
}

TEST_F(GatewayLoginTest, TheVerificationLinkActivatesTheAccountAndOpensThePage) {
    auto signed_up = post_json("/register", {{"email", "newcomer@example.com"}, {"password", "newcomer-password"}});
    ASSERT_EQ(signed_up.status, 202) << signed_up.body;
    std::string token = next_link();
    ASSERT_FALSE(token.empty());
    auto early =
        testing::http_request(port_, "POST", "/login",
                              {{"Authorization", testing::basic_auth("newcomer@example.com", "newcomer-password")},
                               {"Accept", "application/json"}});
    EXPECT_EQ(early.status, 403);
    EXPECT_EQ(early.json()["error"], "email_not_verified");

    auto followed = testing::http_request(port_, "GET", "/verify?token=" + token);
    EXPECT_EQ(followed.status, 303) << followed.body;
    EXPECT_EQ(followed.header("location"), "/#verified");
    EXPECT_EQ(followed.header("referrer-policy"), "no-referrer");
    EXPECT_EQ(
        testing::http_request(port_, "POST", "/login",
                              {{"Authorization", testing::basic_auth("newcomer@example.com", "newcomer-password")}})
            .status,
        200);
    auto again = testing::http_request(port_, "GET", "/verify?token=" + token);
    EXPECT_EQ(again.header("location"), "/#verify-failed=link_used");
    auto forged = testing::http_request(port_, "GET", "/verify?token=%3Cscript%3E");
    EXPECT_EQ(forged.header("location"), "/#verify-failed=invalid_link") << "nothing of the request in the address";
    auto as_json = testing::http_request(port_, "GET", "/verify?token=" + token, {{"Accept", "application/json"}});
    EXPECT_EQ(as_json.status, 410);
    EXPECT_EQ(as_json.json()["error"], "link_used");
}

TEST_F(GatewayLoginTest, AForgottenPasswordIsResetThroughTheMailedLink) {
    std::string tok = signed_in();
    auto asked = post_json("/password-reset", {{"email", "owner@example.com"}});
    ASSERT_EQ(asked.status, 202) << asked.body;
    EXPECT_EQ(post_json("/password-reset", {{"email", "stranger@example.com"}}).body, asked.body);
    std::string link = next_link();
    auto reset = post_json("/password-reset/confirm", {{"token", link}, {"new_password", "a-brand-new-password"}});
    ASSERT_EQ(reset.status, 200) << reset.body;
    auto at_once = login(kOwner, "a-brand-new-password");  // as the page does, most likely within the same second
    ASSERT_EQ(at_once.status, 200) << at_once.body;
    time_until_refused(tok, std::chrono::steady_clock::now());
    EXPECT_EQ(get("/jobs", at_once.body).status, 200) << "a sign-in right after the reset is not ended by it";
    EXPECT_EQ(login(kOwner, "the-owners-password").status, 401);
    EXPECT_EQ(post_json("/password-reset/confirm", {{"token", link}, {"new_password", "yet-another-password"}}).status,
              410);
}

TEST_F(GatewayLoginTest, TheWebhookSecretIsHandedOnlyToAValidToken) {
    std::string tok = signed_in();
    auto secret = get("/account/webhook-secret", tok);
    ASSERT_EQ(secret.status, 200) << secret.body;
    EXPECT_EQ(secret.json()["secret"].get<std::string>().rfind("whsec_", 0), 0u);
    auto rotated = testing::http_request(port_, "POST", "/account/webhook-secret/rotate", bearer(tok));
    ASSERT_EQ(rotated.status, 200) << rotated.body;
    EXPECT_NE(rotated.json()["secret"], secret.json()["secret"]);
    ASSERT_EQ(testing::http_request(port_, "POST", "/logout", bearer(tok)).status, 204);
    time_until_refused(tok, std::chrono::steady_clock::now());
    EXPECT_EQ(get("/account/webhook-secret", tok).status, 401) << "a signed-out token gets no secret";
    EXPECT_EQ(testing::http_request(port_, "GET", "/webhook-secrets?username=owner%40example.com").status, 404)
        << "auth's internal list of secrets is not reachable through the gateway";
}

TEST_F(GatewayLoginTest, JobMailsAreChosenHereAndTheMailsOneClickLinkTurnsThemOff) {
    std::string tok = signed_in();
    auto patch = [&](const std::string& body) {
        auto headers = bearer(tok);
        headers["Content-Type"] = "application/json";
        return testing::http_request(port_, "PATCH", "/account/preferences", headers, body);
    };
    EXPECT_EQ(get("/account/preferences", tok).json()["job_mails"], "each");
    ASSERT_EQ(patch(R"({"job_mails":"summary"})").status, 200);
    EXPECT_EQ(get("/account/preferences", tok).json()["job_mails"], "summary");
    EXPECT_EQ(patch(R"({"job_mails":"never"})").json()["error"], "invalid_preference");
    EXPECT_EQ(testing::http_request(port_, "GET", "/mail-preferences?username=owner%40example.com").status, 404)
        << "auth's internal answer (with the link's token) is not reachable through the gateway";

    // The token the notification service puts in the mail's List-Unsubscribe address.
    auto preferences = messages::MailPreferences::parse(
        testing::http_request(auth_http_->port(), "GET", "/mail-preferences?username=owner%40example.com").body);
    ASSERT_TRUE(preferences.ok());
    const std::string link = "/unsubscribe?token=" + preferences.value().unsubscribe_token;

    // Opening the link (a person, or a mail scanner fetching it) changes nothing: the page asks first.
    auto opened = testing::http_request(port_, "GET", link);
    EXPECT_EQ(opened.status, 303);
    EXPECT_EQ(opened.header("location"), "/#unsubscribe=" + preferences.value().unsubscribe_token);
    EXPECT_EQ(get("/account/preferences", tok).json()["job_mails"], "summary");
    auto hostile = testing::http_request(port_, "GET", "/unsubscribe?token=%22%3E%3Cscript%3E");
    EXPECT_EQ(hostile.header("location"), "/#unsubscribe-failed") << "only a token's characters reach the page";

    // A forged token is refused; the mail client's one-click POST (RFC 8058) turns the mails off without a sign-in.
    EXPECT_EQ(testing::http_request(port_, "POST", link + "x", {{"Content-Type", "application/x-www-form-urlencoded"}},
                                    "List-Unsubscribe=One-Click")
                  .status,
              403);
    auto clicked = testing::http_request(port_, "POST", link, {{"Content-Type", "application/x-www-form-urlencoded"}},
                                         "List-Unsubscribe=One-Click");
    ASSERT_EQ(clicked.status, 200) << clicked.body;
    EXPECT_EQ(get("/account/preferences", tok).json()["job_mails"], "off");

    ASSERT_EQ(testing::http_request(port_, "POST", "/logout", bearer(tok)).status, 204);
    time_until_refused(tok, std::chrono::steady_clock::now());
    EXPECT_EQ(get("/account/preferences", tok).status, 401) << "a signed-out token changes nothing";
    EXPECT_EQ(patch(R"({"job_mails":"each"})").status, 401);
}

TEST_F(GatewayLoginTest, SignInsArePerAddressRateLimitedSuccessfulOnesIncluded) {
    start([this](GatewayConfig& c) {
        c.auth_url = auth_url_;
        c.login_rate_per_minute = 3;
    });
    for (int i = 0; i < 3; ++i) EXPECT_EQ(login(kOwner, "the-owners-password").status, 200) << i;
    auto refused = login(kOwner, "the-owners-password");
    EXPECT_EQ(refused.status, 429) << refused.body;
    EXPECT_EQ(refused.json()["error"], "login_rate_limited");
    EXPECT_EQ(refused.json()["limit"]["name"], "LOGIN_RATE_PER_MINUTE");
    EXPECT_EQ(refused.json()["limit"]["value"], 3);
    EXPECT_EQ(refused.header("retry-after"), "20") << "one sign-in comes back every 20 s";
    EXPECT_EQ(login(kStranger, "a-guess").status, 401) << "another address has its own allowance";
}

TEST_F(GatewayLoginTest, RequestsThatSendAccountMailsArePerAddressRateLimited) {
    start([this](GatewayConfig& c) {
        c.auth_url = auth_url_;
        c.account_requests_per_hour = 2;
    });
    auto from = [&](const char* address, const char* path, const nlohmann::json& body) {
        testing::HttpConnection c("127.0.0.1", port_, 30s, address);
        return c.request("POST", path, {{"Content-Type", "application/json"}}, body.dump());
    };
    EXPECT_EQ(from(kStranger, "/password-reset", {{"email", "a@example.com"}}).status, 202);
    EXPECT_EQ(from(kStranger, "/register", {{"email", "b@example.com"}, {"password", "a-long-password"}}).status, 202);
    auto refused = from(kStranger, "/verify/resend", {{"email", "c@example.com"}});
    EXPECT_EQ(refused.status, 429) << refused.body;
    EXPECT_EQ(refused.json()["error"], "account_rate_limited");
    EXPECT_EQ(refused.json()["limit"]["name"], "ACCOUNT_REQUESTS_PER_HOUR");
    EXPECT_EQ(refused.header("retry-after"), "1800");
    EXPECT_EQ(from(kOwner, "/password-reset", {{"email", "owner@example.com"}}).status, 202);
}

// An auth that accepts connections and never answers: every call to it hangs until the gateway's timeout.
class Tarpit {
  public:
    Tarpit() {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
            ::listen(listener_, 128) != 0) {
            throw std::runtime_error("tarpit: cannot listen");
        }
        socklen_t length = sizeof address;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] {
            for (;;) {
                int fd = ::accept(listener_, nullptr, nullptr);
                if (fd < 0) return;  // closed
                // Sign-ins are counted; the gateway's revocation poll hangs here too but is not one.
                char start[16] = {};
                ssize_t n = ::recv(fd, start, sizeof start - 1, MSG_WAITALL);
                std::lock_guard lock(mutex_);
                held_.push_back(fd);
                if (n > 0 && std::string_view(start).starts_with("POST /login")) ++logins_;
                cv_.notify_all();
            }
        });
    }
    ~Tarpit() {
        ::shutdown(listener_, SHUT_RDWR);
        ::close(listener_);
        thread_.join();
        for (int fd : held_) ::close(fd);
    }
    uint16_t port() const { return port_; }
    bool wait_logins(size_t n) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, 30s, [&] { return logins_ >= n; });
    }

  private:
    int listener_ = -1;
    uint16_t port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<int> held_;
    size_t logins_ = 0;
};

TEST_F(GatewayLoginTest, ASignInFloodHoldsNoHandlerThreadAndIsBounded) {
    Tarpit auth;
    start([&](GatewayConfig& c) {
        c.auth_url = "http://127.0.0.1:" + std::to_string(auth.port());
        c.auth_timeout = 60s;
        c.auth_max_in_flight = 8;
        c.server.worker_threads = 1;  // were a sign-in held by a worker, nothing else could be answered
    });
    std::vector<std::future<HttpResponse>> flood;
    for (int i = 0; i < 8; ++i) flood.push_back(std::async(std::launch::async, [&] { return login(kStranger, "x"); }));
    ASSERT_TRUE(auth.wait_logins(8)) << "the eight sign-ins are waiting on auth";
    auto tok = token(1, "owner@example.com");
    for (int i = 0; i < 5; ++i) EXPECT_EQ(get("/jobs", tok).status, 200) << "other requests are answered meanwhile";
    auto busy = login(kOwner, "the-owners-password");
    EXPECT_EQ(busy.status, 503);
    EXPECT_EQ(busy.json()["error"], "auth_busy");
    EXPECT_EQ(busy.header("retry-after"), "1");
    stop();  // the gateway goes; the sign-ins still waiting are answered or cut, none hangs
    for (auto& f : flood) EXPECT_EQ(f.wait_for(30s), std::future_status::ready);
}

}  // namespace
}  // namespace mp3c::gateway::test
