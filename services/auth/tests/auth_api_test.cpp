// The auth API against a real MariaDB (from scripts/with-servers), the service running in-process.
#include <gtest/gtest.h>

#include "auth_app.hpp"
#include "auth_test_config.hpp"
#include "credentials.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/testing/eventually.hpp"
#include "mp3c/testing/http_client.hpp"
#include "mp3c/testing/servers.hpp"

namespace mp3c::auth {
namespace {

using namespace std::chrono_literals;
using testing::basic_auth;
using testing::HttpConnection;
using testing::HttpResponse;

const std::string kSecret = "integration-test-secret-0123456789abcdef";

std::string trim_newline(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
}

class AuthApiTest : public ::testing::Test {
  protected:
    AuthApiTest()
        : server_(testing::mysql_server()),
          database_(server_),
          topology_(amqp::Topology::with_prefix("au" + crypto::random_hex(4) + ".")) {}

    void SetUp() override { start({}); }

    void start(std::function<void(AuthConfig&)> adjust) {
        http_.reset();
        app_.reset();
        AuthConfig config = test::auth_test_config(mysql_options(), kSecret);
        config.allow_registration = true;
        config.amqp = amqp_options();
        config.topology = topology_;
        config.throttle = {.max_failures_per_account = 3,
                           .max_failures_per_client = 50,
                           .account_slowdown_after = 3,
                           .window = 2s,
                           .max_account_delay = 30s};
        if (adjust) adjust(config);
        app_ = std::make_unique<AuthApp>(config);
        ASSERT_TRUE(app_->schema().wait_ready(30s));
        http_ = std::make_unique<http::Server>(config.server, app_->router(), app_->registry(), app_->readiness());
        port_ = http_->start();
    }

    mysql::Options mysql_options() { return database_.options(); }

    static amqp::Options amqp_options() {
        const char* url = std::getenv("MP3C_TEST_AMQP_URL");
        if (url == nullptr) throw std::runtime_error("MP3C_TEST_AMQP_URL not set: run under scripts/with-servers");
        amqp::Options o;
        o.url = url;
        o.connection_name = "auth-test";
        return o;
    }

    // The account mails auth has published (what the notification service would send), oldest first: waits until
    // `count` have come, then a little longer for any more.
    std::vector<messages::AccountMail> account_mails(size_t count, std::chrono::milliseconds linger = 300ms) {
        if (!mail_reader_) {
            mail_reader_ = std::make_unique<amqp::Connection>(amqp_options());
            amqp::declare_topology(*mail_reader_, topology_);
            mail_reader_->consume(topology_.notification_account_queue, 100);
        }
        std::vector<messages::AccountMail> out;
        auto deadline = std::chrono::steady_clock::now() + 30s;
        while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
            if (auto d = mail_reader_->next(500ms)) take_mail(*d, out);
        }
        while (auto d = mail_reader_->next(linger)) take_mail(*d, out);
        return out;
    }

    void take_mail(const amqp::Delivery& d, std::vector<messages::AccountMail>& out) {
        mail_reader_->ack(d.delivery_tag);
        auto mail = messages::AccountMail::parse(d.body);
        ASSERT_TRUE(mail.ok()) << d.body;
        out.push_back(mail.value());
    }

    // The one mail that comes next, of the kind.
    messages::AccountMail next_mail(messages::AccountMail::Kind kind) {
        auto mails = account_mails(1);
        EXPECT_EQ(mails.size(), 1u);
        if (mails.empty()) return {};
        EXPECT_EQ(mails[0].kind, kind) << mails[0].to_body();
        return mails[0];
    }

    HttpResponse post_json(const std::string& target, const nlohmann::json& body,
                           std::map<std::string, std::string> headers = {}) {
        headers["Content-Type"] = "application/json";
        return post(target, headers, body.dump());
    }

    // Signs up through the API and follows the verification link, as a new user does.
    void sign_up(const std::string& email, const std::string& password) {
        ASSERT_EQ(register_user({{"email", email}, {"password", password}}).status, 202);
        auto mail = next_mail(messages::AccountMail::Kind::verify_email);
        ASSERT_EQ(post_json("/verify", {{"token", mail.token}}).status, 200);
    }

    std::string sql_scalar(const std::string& sql) {
        std::string text = testing::mysql_admin(server_, "USE `" + database_.name() + "`; " + sql);
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
        return text;
    }

    // Creates a user directly in the database, as the admin tool does.
    void add_user(const std::string& email, const std::string& password, Role role = Role::user) {
        mysql::Pool pool(mysql_options());
        UserStore store(pool);
        crypto::PasswordHasher hasher(crypto::PasswordHasher::minimum());
        ASSERT_TRUE(store.create(email, hasher.hash(password), role).ok());
    }

    HttpResponse post(const std::string& target, std::map<std::string, std::string> headers = {},
                      const std::string& body = {}) {
        return testing::http_request(port_, "POST", target, headers, body);
    }

    HttpResponse login(const std::string& user, const std::string& password,
                       std::map<std::string, std::string> headers = {}) {
        headers["Authorization"] = basic_auth(user, password);
        return post("/login", headers);
    }

    HttpResponse validate(const std::string& token) {
        return post("/validate", {{"Authorization", "Bearer " + token}});
    }

    HttpResponse register_user(const nlohmann::json& body) {
        return post("/register", {{"Content-Type", "application/json"}}, body.dump());
    }

    testing::MysqlServer server_;
    testing::TemporaryDatabase database_;
    amqp::Topology topology_;
    std::unique_ptr<amqp::Connection> mail_reader_;
    std::unique_ptr<AuthApp> app_;
    std::unique_ptr<http::Server> http_;
    uint16_t port_ = 0;
};

void expect_error(const HttpResponse& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json") << r.body;
    auto body = r.json();
    EXPECT_EQ(body["error"], code) << r.body;
    EXPECT_TRUE(body["message"].is_string()) << r.body;
}

TEST_F(AuthApiTest, LoginReturnsTheRawTokenAndValidateReturnsItsClaims) {
    add_user("alice@example.com", "correct horse battery");
    auto r = login("alice@example.com", "correct horse battery");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "text/plain; charset=utf-8");
    EXPECT_EQ(std::count(r.body.begin(), r.body.end(), '.'), 2) << "the body is the bare JWT: " << r.body;

    auto v = validate(r.body);
    ASSERT_EQ(v.status, 200) << v.body;
    auto claims = v.json();
    EXPECT_EQ(claims["username"], "alice@example.com");
    EXPECT_TRUE(claims["sub"].is_string());
    EXPECT_EQ(claims["admin"], false);
    EXPECT_EQ(claims["exp"].get<int64_t>() - claims["iat"].get<int64_t>(), 24 * 3600);
}

TEST_F(AuthApiTest, LoginWithAcceptJsonReturnsTokenAndExpiry) {
    add_user("bob@example.com", "password-bob");
    auto r = login("bob@example.com", "password-bob", {{"Accept", "application/json"}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto body = r.json();
    EXPECT_EQ(body["token_type"], "Bearer");
    EXPECT_EQ(body["expires_in"], 24 * 3600);
    std::string expires_at = body["expires_at"];
    EXPECT_EQ(expires_at.size(), 20u) << expires_at;  // 2026-11-29T05:00:00Z
    EXPECT_EQ(validate(body["token"]).status, 200);
}

TEST_F(AuthApiTest, EmailIsMatchedCaseInsensitively) {
    add_user("carol@example.com", "password-carol");
    EXPECT_EQ(login("  Carol@EXAMPLE.com", "password-carol").status, 200);
}

TEST_F(AuthApiTest, OnlyAdminsGetTheAdminClaim) {
    add_user("root@example.com", "password-admin", Role::admin);
    add_user("user@example.com", "password-user");
    EXPECT_EQ(validate(login("root@example.com", "password-admin").body).json()["admin"], true);
    EXPECT_EQ(validate(login("user@example.com", "password-user").body).json()["admin"], false);
}

TEST_F(AuthApiTest, MissingOrMalformedCredentialsGet401MissingCredentials) {
    expect_error(post("/login"), 401, "missing_credentials");
    EXPECT_EQ(post("/login").json()["message"], "missing credentials");
    EXPECT_EQ(post("/login").header("www-authenticate"), "Basic realm=\"mp3converter\", charset=\"UTF-8\"");
    // No Basic challenge for clients asking for JSON: browsers would open their own login dialog.
    EXPECT_EQ(post("/login", {{"Accept", "application/json"}}).header("www-authenticate"), "");
    EXPECT_EQ(post("/validate").header("www-authenticate"), "Bearer realm=\"mp3converter\", charset=\"UTF-8\"");
    for (std::string header :
         {"Basic " + crypto::base64_encode("no-colon-here"), std::string("Basic !!!notbase64"), std::string("Basic"),
          std::string("Bearer abc"), std::string("Digest x=y"), "Basic " + crypto::base64_encode(":only-password")}) {
        expect_error(post("/login", {{"Authorization", header}}), 401, "missing_credentials");
    }
}

TEST_F(AuthApiTest, HugeAuthorizationHeaderIsRefusedWith431) {
    auto r = post("/login", {{"Authorization", "Basic " + std::string(100 * 1024, 'Q')}});
    expect_error(r, 431, "header_too_large");
    EXPECT_EQ(testing::http_request(port_, "GET", "/healthz").status, 200);  // and the server is fine
}

TEST_F(AuthApiTest, UnknownUserAndWrongPasswordGetTheSameAnswer) {
    add_user("dave@example.com", "password-dave");
    auto unknown = login("nobody@example.com", "password-dave");
    auto wrong = login("dave@example.com", "wrong-password");
    expect_error(unknown, 401, "invalid_credentials");
    expect_error(wrong, 401, "invalid_credentials");
    EXPECT_EQ(unknown.body, wrong.body);
    EXPECT_EQ(unknown.json()["message"], "invalid credentials");
}

TEST_F(AuthApiTest, StoredPasswordIsAnArgon2idHash) {
    sign_up("erin@example.com", "erin-secret-pw");
    auto stored = testing::mysql_admin(
        server_, "SELECT password_hash FROM `" + database_.name() + "`.users WHERE email = 'erin@example.com'");
    std::string hash(trim_newline(stored));
    EXPECT_EQ(hash.rfind("$argon2id$v=19$", 0), 0u) << hash;
    EXPECT_EQ(hash.find("erin-secret-pw"), std::string::npos);
    EXPECT_TRUE(crypto::PasswordHasher().verify(hash, "erin-secret-pw"));
    EXPECT_FALSE(crypto::PasswordHasher().verify(hash, "erin-secret-pX"));
}

TEST_F(AuthApiTest, ValidateRefusesEveryBadToken) {
    add_user("frank@example.com", "password-frank");
    std::string good = login("frank@example.com", "password-frank").body;
    ASSERT_EQ(validate(good).status, 200);

    expect_error(post("/validate"), 401, "missing_credentials");
    expect_error(post("/validate", {{"Authorization", "Basic " + crypto::base64_encode("a:b")}}), 403,
                 "not_authorized");

    auto b64 = [](const std::string& s) { return crypto::base64_encode(s, crypto::Base64::url_no_padding); };
    auto forge = [&](const nlohmann::json& header, const nlohmann::json& payload, const std::string& key) {
        std::string input = b64(header.dump()) + "." + b64(payload.dump());
        return input + "." + b64(crypto::hmac_sha256(key, input));
    };
    auto far_future = int64_t{4102444800};
    nlohmann::json admin_claims = {{"username", "frank@example.com"}, {"admin", true}, {"exp", far_future}};

    // Tampered: frank's signature on a payload that makes him admin.
    std::string tampered =
        good.substr(0, good.find('.')) + "." + b64(admin_claims.dump()) + good.substr(good.rfind('.'));
    // Expired, but otherwise perfectly signed.
    token::Signer signer(kSecret);
    auto past = std::chrono::system_clock::now() - 2h;
    std::string expired = signer.issue({{"username", "frank@example.com"}}, past + 1h, past);

    struct Case {
        std::string token;
        std::string reason;
    };
    std::vector<Case> cases = {
        {tampered, "invalid token signature"},
        {expired, "token expired"},
        {b64(R"({"alg":"none","typ":"JWT"})") + "." + b64(admin_claims.dump()) + ".", "unsigned token (alg none)"},
        {forge({{"alg", "HS512"}, {"typ", "JWT"}}, admin_claims, kSecret),
         "token signed with an algorithm other than HS256"},
        {forge({{"alg", "HS256"}}, {{"username", "frank@example.com"}}, kSecret), "token has no expiry"},
        {forge({{"alg", "HS256"}}, admin_claims, "some-other-secret-that-is-long-enough!!"), "invalid token signature"},
        {"not-a-token", "malformed token"},
    };
    for (const auto& c : cases) {
        auto r = validate(c.token);
        expect_error(r, 403, "not_authorized");
        EXPECT_EQ(r.json()["message"], "not authorized");
        EXPECT_EQ(r.json()["reason"], c.reason) << c.token;
    }
}

TEST_F(AuthApiTest, SignUpNeedsTheMailedLinkWhichWorksOnce) {
    auto answer = register_user({{"email", "Gina@Example.com"}, {"password", "gina-password"}});
    ASSERT_EQ(answer.status, 202) << answer.body;
    EXPECT_EQ(answer.json()["status"], "check_email");
    auto mail = next_mail(messages::AccountMail::Kind::verify_email);
    EXPECT_EQ(mail.email, "gina@example.com");
    EXPECT_EQ(mail.token.size(), 43u) << "32 random bytes, base64url";
    EXPECT_GT(mail.expires_at, std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch() + 23h)
                                   .count());
    EXPECT_EQ(sql_scalar("SELECT COUNT(*) FROM account_links WHERE token_hash = '" + mail.token + "'"), "0")
        << "only a digest of the link's secret is stored";

    expect_error(login("gina@example.com", "gina-password"), 403, "email_not_verified");
    // Only the right password learns that the account waits for its verification.
    expect_error(login("gina@example.com", "wrong-password"), 401, "invalid_credentials");
    auto verified = post_json("/verify", {{"token", mail.token}});
    ASSERT_EQ(verified.status, 200) << verified.body;
    EXPECT_EQ(verified.json()["email"], "gina@example.com");
    EXPECT_EQ(login("gina@example.com", "gina-password").status, 200);
    expect_error(post_json("/verify", {{"token", mail.token}}), 410, "link_used");
    expect_error(post_json("/verify", {{"token", mail.token + "x"}}), 400, "invalid_link");
    expect_error(post_json("/verify", {{"token", ""}}), 400, "invalid_link");
    expect_error(post_json("/verify", {{"token", 7}}), 400, "invalid_token");

    expect_error(register_user({{"email", "not-an-email"}, {"password", "long-enough-pw"}}), 400, "invalid_email");
    expect_error(register_user({{"email", "h@example.com"}, {"password", "short"}}), 400, "invalid_password");
    expect_error(register_user({{"email", "h@example.com"}}), 400, "invalid_password");
    expect_error(register_user({{"password", "long-enough-pw"}}), 400, "invalid_email");
    expect_error(register_user({{"email", 42}, {"password", "long-enough-pw"}}), 400, "invalid_email");
    expect_error(post("/register", {{"Content-Type", "application/json"}}, "{not json"), 400, "invalid_json");
    expect_error(post("/register", {}, std::string(20 * 1024, '{')), 413, "body_too_large");
    EXPECT_TRUE(account_mails(0).empty()) << "refused sign-ups mail nobody";
}

TEST_F(AuthApiTest, SignUpAnswersTheSameForATakenAddressAndMailsItsOwnerANotice) {
    add_user("owner@example.com", "owner-password");
    auto fresh = register_user({{"email", "newcomer@example.com"}, {"password", "newcomer-pw"}});
    auto taken = register_user({{"email", "OWNER@example.com"}, {"password", "stranger-pw"}});
    EXPECT_EQ(fresh.status, taken.status);
    EXPECT_EQ(fresh.body, taken.body) << "the answer must not tell whether the address has an account";
    EXPECT_EQ(fresh.header("content-type"), taken.header("content-type"));

    auto mails = account_mails(2);
    ASSERT_EQ(mails.size(), 2u);
    std::map<std::string, messages::AccountMail> by_address;
    for (auto& m : mails) by_address[m.email] = m;
    EXPECT_EQ(by_address["newcomer@example.com"].kind, messages::AccountMail::Kind::verify_email);
    EXPECT_EQ(by_address["owner@example.com"].kind, messages::AccountMail::Kind::registration_attempt);
    EXPECT_TRUE(by_address["owner@example.com"].token.empty()) << "a notice carries no link";
    EXPECT_EQ(sql_scalar("SELECT COUNT(*) FROM users WHERE email = 'owner@example.com'"), "1");
    EXPECT_EQ(login("owner@example.com", "owner-password").status, 200) << "the owner's password is unchanged";
    expect_error(login("owner@example.com", "stranger-pw"), 401, "invalid_credentials");
}

TEST_F(AuthApiTest, AStrangerWhoRegisteredTheAddressFirstDoesNotKeepIt) {
    ASSERT_EQ(register_user({{"email", "dana@example.com"}, {"password", "stranger-pw"}}).status, 202);
    auto strangers = next_mail(messages::AccountMail::Kind::verify_email);  // lands in Dana's mailbox, unused
    ASSERT_EQ(register_user({{"email", "dana@example.com"}, {"password", "dana-password"}}).status, 202);
    auto danas = next_mail(messages::AccountMail::Kind::verify_email);
    ASSERT_EQ(post_json("/verify", {{"token", danas.token}}).status, 200);
    EXPECT_EQ(login("dana@example.com", "dana-password").status, 200);
    expect_error(login("dana@example.com", "stranger-pw"), 401, "invalid_credentials");
    // Following one link ends the account's other verification links.
    expect_error(post_json("/verify", {{"token", strangers.token}}), 410, "link_used");
}

TEST_F(AuthApiTest, ExpiredLinksAreRefusedAndANewOneCanBeAsked) {
    ASSERT_EQ(register_user({{"email", "eli@example.com"}, {"password", "eli-password"}}).status, 202);
    auto first = next_mail(messages::AccountMail::Kind::verify_email);
    sql_scalar("UPDATE account_links SET expires_at = 1");  // as if a day had passed
    expect_error(post_json("/verify", {{"token", first.token}}), 410, "link_expired");

    auto resend = post_json("/verify/resend", {{"email", "eli@example.com"}});
    auto unknown = post_json("/verify/resend", {{"email", "nobody@example.com"}});
    ASSERT_EQ(resend.status, 202) << resend.body;
    EXPECT_EQ(resend.body, unknown.body);
    auto second = next_mail(messages::AccountMail::Kind::verify_email);
    ASSERT_EQ(post_json("/verify", {{"token", second.token}}).status, 200);
    EXPECT_EQ(login("eli@example.com", "eli-password").status, 200);
    ASSERT_EQ(post_json("/verify/resend", {{"email", "eli@example.com"}}).status, 202);
    EXPECT_TRUE(account_mails(0, 1s).empty()) << "a verified account gets no more verification links";
    expect_error(post_json("/verify/resend", {{"email", "nope"}}), 400, "invalid_email");
}

TEST_F(AuthApiTest, PasswordResetAnswersTheSameForEveryAddressAndItsLinkWorksOnce) {
    add_user("fay@example.com", "fay-old-password");
    std::string old_token = login("fay@example.com", "fay-old-password").body;
    auto known = post_json("/password-reset", {{"email", "Fay@example.com"}});
    auto unknown = post_json("/password-reset", {{"email", "nobody@example.com"}});
    ASSERT_EQ(known.status, 202) << known.body;
    EXPECT_EQ(known.status, unknown.status);
    EXPECT_EQ(known.body, unknown.body);
    auto mails = account_mails(1);
    ASSERT_EQ(mails.size(), 1u) << "only the address with an account gets a mail";
    EXPECT_EQ(mails[0].kind, messages::AccountMail::Kind::reset_password);
    EXPECT_EQ(mails[0].email, "fay@example.com");
    const std::string link = mails[0].token;

    expect_error(post_json("/password-reset/confirm", {{"token", link}, {"new_password", "short"}}), 400,
                 "invalid_password");
    auto cutoffs_before = testing::http_request(port_, "GET", "/revocations").json()["cutoffs"].size();
    auto reset = post_json("/password-reset/confirm", {{"token", link}, {"new_password", "fay-new-password"}});
    ASSERT_EQ(reset.status, 200) << reset.body << " (a refused password must not cost the link)";
    EXPECT_EQ(reset.json()["email"], "fay@example.com");
    expect_error(login("fay@example.com", "fay-old-password"), 401, "invalid_credentials");
    EXPECT_EQ(login("fay@example.com", "fay-new-password").status, 200);
    auto cutoffs = testing::http_request(port_, "GET", "/revocations").json()["cutoffs"];
    EXPECT_EQ(cutoffs.size(), cutoffs_before + 1) << "the old tokens are ended";
    EXPECT_LT(validate(old_token).json()["iat"].get<int64_t>(), cutoffs.back()["valid_after"].get<int64_t>());
    expect_error(post_json("/password-reset/confirm", {{"token", link}, {"new_password", "another-password"}}), 410,
                 "link_used");

    ASSERT_EQ(post_json("/password-reset", {{"email", "fay@example.com"}}).status, 202);
    auto later = next_mail(messages::AccountMail::Kind::reset_password);
    sql_scalar("UPDATE account_links SET expires_at = 1 WHERE purpose = 'reset_password'");
    expect_error(post_json("/password-reset/confirm", {{"token", later.token}, {"new_password", "another-password"}}),
                 410, "link_expired");
    expect_error(post_json("/password-reset", {{"email", 5}}), 400, "invalid_email");
}

TEST_F(AuthApiTest, AStrangerCannotFloodAMailbox) {
    start([](AuthConfig& c) { c.account_mails_per_hour = 3; });
    add_user("gus@example.com", "gus-password");
    for (int i = 0; i < 6; ++i) {
        ASSERT_EQ(post_json("/password-reset", {{"email", "gus@example.com"}}).status, 202);
        ASSERT_EQ(register_user({{"email", "gus@example.com"}, {"password", "stranger-pw"}}).status, 202);
    }
    EXPECT_EQ(account_mails(3, 1s).size(), 3u) << "ACCOUNT_MAILS_PER_HOUR, whatever is asked";
}

TEST_F(AuthApiTest, EachUserHasAWebhookSecretThatRotatesWithAnOverlap) {
    add_user("hal@example.com", "hal-password");
    add_user("ida@example.com", "ida-password");
    auto bearer = [&](const std::string& who, const std::string& password) {
        return std::map<std::string, std::string>{{"Authorization", "Bearer " + login(who, password).body}};
    };
    auto hal = bearer("hal@example.com", "hal-password");
    auto first = testing::http_request(port_, "GET", "/account/webhook-secret", hal);
    ASSERT_EQ(first.status, 200) << first.body;
    std::string secret = first.json()["secret"];
    EXPECT_EQ(secret.rfind("whsec_", 0), 0u) << secret;
    EXPECT_EQ(crypto::base64_decode(secret.substr(6)).value_or("").size(), 24u);
    EXPECT_TRUE(first.json()["previous_secret_valid_until"].is_null());
    EXPECT_EQ(testing::http_request(port_, "GET", "/account/webhook-secret", hal).json()["secret"], secret)
        << "stable until rotated";
    auto ida =
        testing::http_request(port_, "GET", "/account/webhook-secret", bearer("ida@example.com", "ida-password"));
    EXPECT_NE(ida.json()["secret"], secret) << "a secret per user";

    auto rotated = post("/account/webhook-secret/rotate", hal);
    ASSERT_EQ(rotated.status, 200) << rotated.body;
    std::string next = rotated.json()["secret"];
    EXPECT_NE(next, secret);
    EXPECT_TRUE(rotated.json()["previous_secret_valid_until"].is_string());
    auto signing = messages::WebhookSecrets::parse(
        testing::http_request(port_, "GET", "/webhook-secrets?username=hal%40example.com").body);
    ASSERT_TRUE(signing.ok());
    EXPECT_EQ(signing.value().secrets, (std::vector<std::string>{next, secret})) << "both sign during the overlap";
    sql_scalar("UPDATE webhook_secrets SET previous_valid_until = 1");
    signing = messages::WebhookSecrets::parse(
        testing::http_request(port_, "GET", "/webhook-secrets?username=hal%40example.com").body);
    EXPECT_EQ(signing.value().secrets, std::vector<std::string>{next}) << "then the new one alone";
    EXPECT_EQ(testing::http_request(port_, "GET", "/webhook-secrets?username=nobody%40example.com").status, 404);
    expect_error(testing::http_request(port_, "GET", "/account/webhook-secret"), 401, "missing_credentials");
}

TEST_F(AuthApiTest, EachUserChoosesTheirJobMailsAndOneClickTurnsThemOff) {
    add_user("joe@example.com", "joe-password");
    add_user("kim@example.com", "kim-password");
    auto bearer = [&](const std::string& who, const std::string& password) {
        return std::map<std::string, std::string>{{"Authorization", "Bearer " + login(who, password).body},
                                                  {"Content-Type", "application/json"}};
    };
    auto joe = bearer("joe@example.com", "joe-password");
    auto preferences = [&](const std::string& method, const std::string& body = {}) {
        return testing::http_request(port_, method, "/account/preferences", joe, body);
    };
    EXPECT_EQ(preferences("GET").json(), (nlohmann::json{{"job_mails", "each"}})) << "one mail per job by default";
    auto changed = preferences("PATCH", R"({"job_mails":"summary"})");
    ASSERT_EQ(changed.status, 200) << changed.body;
    EXPECT_EQ(changed.json()["job_mails"], "summary");
    EXPECT_EQ(preferences("GET").json()["job_mails"], "summary");
    for (const char* bad : {R"({"job_mails":"weekly"})", R"({"job_mails":true})", R"({})", "not json", "[]"}) {
        auto refused = preferences("PATCH", bad);
        EXPECT_EQ(refused.status, 400) << bad;
        if (refused.json().value("error", "") == "invalid_preference") {
            EXPECT_NE(refused.json()["message"].get<std::string>().find("each, summary, off"), std::string::npos);
        }
    }
    EXPECT_EQ(preferences("PATCH", R"({"job_mails":"off","admin":true})").json()["error"], "unknown_preference");
    EXPECT_EQ(preferences("GET").json()["job_mails"], "summary") << "a refused change changes nothing";
    EXPECT_EQ(testing::http_request(port_, "GET", "/account/preferences").status, 401);
    EXPECT_EQ(testing::http_request(port_, "GET", "/account/preferences", bearer("kim@example.com", "kim-password"))
                  .json()["job_mails"],
              "each")
        << "one user's choice is theirs only";

    // What the notification service asks: the choice and the token of the one-click link.
    auto internal = messages::MailPreferences::parse(
        testing::http_request(port_, "GET", "/mail-preferences?username=JOE%40example.com").body);
    ASSERT_TRUE(internal.ok());
    EXPECT_EQ(internal.value().job_mails, messages::JobMails::summary);
    EXPECT_EQ(testing::http_request(port_, "GET", "/mail-preferences?username=nobody%40example.com").json()["error"],
              "unknown_user");
    auto kim = messages::MailPreferences::parse(
        testing::http_request(port_, "GET", "/mail-preferences?username=kim%40example.com").body);
    ASSERT_TRUE(kim.ok());
    EXPECT_NE(kim.value().unsubscribe_token, internal.value().unsubscribe_token);

    // The one-click POST: no sign-in, only the token. Anything but a token auth made turns nothing off.
    std::string token = internal.value().unsubscribe_token;
    for (const std::string& forged : {std::string(), "1" + token, token + "x",
                                      kim.value().unsubscribe_token.substr(0, 2) + token.substr(token.find('.'))}) {
        auto refused =
            post("/unsubscribe", {{"Content-Type", "application/json"}}, nlohmann::json{{"token", forged}}.dump());
        EXPECT_EQ(refused.status, 403) << forged;
        EXPECT_EQ(refused.json()["error"], "invalid_link");
    }
    EXPECT_EQ(preferences("GET").json()["job_mails"], "summary");
    auto off = post("/unsubscribe", {{"Content-Type", "application/json"}}, nlohmann::json{{"token", token}}.dump());
    ASSERT_EQ(off.status, 200) << off.body;
    EXPECT_EQ(preferences("GET").json()["job_mails"], "off");
    EXPECT_EQ(
        post("/unsubscribe", {{"Content-Type", "application/json"}}, nlohmann::json{{"token", token}}.dump()).status,
        200)
        << "again: the same answer";
    EXPECT_EQ(testing::http_request(port_, "GET", "/account/preferences", bearer("kim@example.com", "kim-password"))
                  .json()["job_mails"],
              "each");
    EXPECT_EQ(preferences("PATCH", R"({"job_mails":"each"})").json()["job_mails"], "each") << "and back on";
}

TEST_F(AuthApiTest, RegistrationIsOffByDefault) {
    start([](AuthConfig& c) { c.allow_registration = false; });
    expect_error(register_user({{"email", "i@example.com"}, {"password", "long-enough-pw"}}), 404, "not_found");
}

TEST_F(AuthApiTest, SqlMetacharactersAndUnicodeInEmailsAreStoredLiterally) {
    std::vector<std::string> emails = {"o'brien\";DROP_TABLE_users;--@example.com", "jörg@bücher.de",
                                       "x%_\\'@example.com", "日本語@例え.jp"};
    for (const auto& email : emails) {
        ASSERT_EQ(register_user({{"email", email}, {"password", "metachar-password"}}).status, 202) << email;
        auto mail = next_mail(messages::AccountMail::Kind::verify_email);
        EXPECT_EQ(mail.email, normalize_email(email));  // ASCII letters lower-cased, nothing else
        ASSERT_EQ(post_json("/verify", {{"token", mail.token}}).status, 200) << email;
    }
    for (const auto& email : emails) {
        auto r = login(email, "metachar-password");
        ASSERT_EQ(r.status, 200) << email;
        EXPECT_EQ(validate(r.body).json()["username"], normalize_email(email));
    }
    // LIKE wildcards in an address match nothing else.
    expect_error(login("x%%@example.com", "metachar-password"), 401, "invalid_credentials");
    auto count = testing::mysql_admin(server_, "SELECT COUNT(*) FROM `" + database_.name() + "`.users");
    EXPECT_EQ(trim_newline(count), "4");
}

TEST_F(AuthApiTest, AClientGuessingOneAccountIsThrottledButTheOwnerElsewhereIsNot) {
    add_user("henry@example.com", "henry-password");
    add_user("other@example.com", "other-password");
    auto from = [](const std::string& ip) { return std::map<std::string, std::string>{{"X-Forwarded-For", ip}}; };
    for (int i = 0; i < 3; ++i) expect_error(login("henry@example.com", "wrong"), 401, "invalid_credentials");

    auto blocked = login("henry@example.com", "henry-password");  // even the right password, from that client
    expect_error(blocked, 429, "too_many_attempts");
    int retry_after = std::stoi(blocked.header("retry-after"));
    EXPECT_GE(retry_after, 1);
    EXPECT_LE(retry_after, 2);
    EXPECT_EQ(login("other@example.com", "other-password").status, 200) << "other users are not locked out";
    // The owner, from a client that has not failed: signed in at once, the stranger's failures notwithstanding.
    EXPECT_EQ(login("henry@example.com", "henry-password", from("198.51.100.7")).status, 200);
    // The throttle is in the database: another replica (a second app on the same database) sees the same failures.
    EXPECT_EQ(trim_newline(
                  testing::mysql_admin(server_, "SELECT COUNT(*) >= 3 FROM `" + database_.name() + "`.login_failures")),
              "1");

    // The window is 2 s: the account is released by itself.
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (status != 200 && std::chrono::steady_clock::now() < deadline) {
        status = login("henry@example.com", "henry-password").status;
        if (status != 200) std::this_thread::sleep_for(100ms);  // polling the release, bounded by the deadline
    }
    EXPECT_EQ(status, 200);
}

TEST_F(AuthApiTest, AnAccountFailingFromManyClientsOnlySlowsThemDown) {
    start([](AuthConfig& c) {
        c.throttle = {.max_failures_per_account = 3,
                      .max_failures_per_client = 50,
                      .account_slowdown_after = 2,
                      .window = 60s,
                      .max_account_delay = 30s};
    });
    add_user("jack@example.com", "jack-password");
    auto from = [](const std::string& ip) { return std::map<std::string, std::string>{{"X-Forwarded-For", ip}}; };
    // A spread-out guess: one failure each from four addresses.
    for (const char* ip : {"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"}) {
        expect_error(login("jack@example.com", "wrong", from(ip)), 401, "invalid_credentials");
    }
    // A client that failed must now wait between attempts (4 failures, 2 over the threshold: 4 s), even with the
    // right password...
    auto slowed = login("jack@example.com", "jack-password", from("203.0.113.1"));
    expect_error(slowed, 429, "too_many_attempts");
    int retry_after = std::stoi(slowed.header("retry-after"));
    EXPECT_GE(retry_after, 1);
    EXPECT_LE(retry_after, 4);
    // ...while the owner's device, which never failed, signs in.
    EXPECT_EQ(login("jack@example.com", "jack-password", from("192.0.2.50")).status, 200);
}

TEST_F(AuthApiTest, RepeatedFailuresFromOneClientAreThrottledForThatClientOnly) {
    start([](AuthConfig& c) {
        c.throttle = {.max_failures_per_account = 100, .max_failures_per_client = 3, .window = 60s};
    });
    add_user("ivy@example.com", "ivy-password");
    auto from = [](const std::string& ip) { return std::map<std::string, std::string>{{"X-Forwarded-For", ip}}; };
    for (int i = 0; i < 3; ++i) login("guess" + std::to_string(i) + "@example.com", "x", from("203.0.113.9"));
    expect_error(login("ivy@example.com", "ivy-password", from("203.0.113.9")), 429, "too_many_attempts");
    EXPECT_EQ(login("ivy@example.com", "ivy-password", from("198.51.100.4")).status, 200);
}

TEST_F(AuthApiTest, SignOutAndAPasswordChangeAreListedForTheGateway) {
    add_user("kim@example.com", "kim-password");
    std::string first = login("kim@example.com", "kim-password").body;
    std::string second = login("kim@example.com", "kim-password").body;
    auto claims = validate(first).json();
    ASSERT_TRUE(claims.contains("jti")) << "every token has an id to be ended by";
    EXPECT_NE(claims["jti"], validate(second).json()["jti"]);

    auto before = testing::http_request(port_, "GET", "/revocations").json();
    EXPECT_EQ(before["tokens"].size(), 0u);
    EXPECT_EQ(post("/logout", {{"Authorization", "Bearer " + first}}).status, 204);
    auto after = testing::http_request(port_, "GET", "/revocations").json();
    ASSERT_EQ(after["tokens"].size(), 1u);
    EXPECT_EQ(after["tokens"][0]["jti"], claims["jti"]);
    EXPECT_EQ(after["tokens"][0]["expires_at"], claims["exp"]);
    // Asked again from its cursor, long after: nothing new.
    auto later =
        testing::http_request(port_, "GET",
                              "/revocations?since_ms=" + std::to_string(after["cursor_ms"].get<int64_t>() + 60'000))
            .json();
    EXPECT_EQ(later["tokens"].size(), 0u);
    expect_error(post("/logout"), 401, "missing_credentials");

    auto bearer =
        std::map<std::string, std::string>{{"Authorization", "Bearer " + second}, {"Content-Type", "application/json"}};
    expect_error(post("/account/password", bearer, R"({"current_password":"nope","new_password":"kim-new-password"})"),
                 403, "wrong_password");
    expect_error(post("/account/password", bearer, R"({"current_password":"kim-password","new_password":"short"})"),
                 400, "invalid_password");
    auto changed =
        post("/account/password", bearer, R"({"current_password":"kim-password","new_password":"kim-new-password"})");
    ASSERT_EQ(changed.status, 200) << changed.body;
    auto fresh = validate(changed.body).json();
    auto cutoffs = testing::http_request(port_, "GET", "/revocations").json()["cutoffs"];
    ASSERT_EQ(cutoffs.size(), 1u);
    EXPECT_EQ(cutoffs[0]["user_id"].get<uint64_t>(), std::stoull(claims["sub"].get<std::string>()));
    EXPECT_LT(claims["iat"].get<int64_t>(), cutoffs[0]["valid_after"].get<int64_t>()) << "older tokens are ended";
    EXPECT_GE(fresh["iat"].get<int64_t>(), cutoffs[0]["valid_after"].get<int64_t>()) << "the new one is not";
    expect_error(login("kim@example.com", "kim-password"), 401, "invalid_credentials");
    EXPECT_EQ(login("kim@example.com", "kim-new-password").status, 200);
}

TEST_F(AuthApiTest, AStolenTokenCannotBeUsedToGuessThePassword) {
    start([](AuthConfig& c) { c.throttle.window = 60s; });  // the refusal must outlast a slow machine
    add_user("lee@example.com", "lee-password");
    auto bearer =
        std::map<std::string, std::string>{{"Authorization", "Bearer " + login("lee@example.com", "lee-password").body},
                                           {"Content-Type", "application/json"}};
    for (int i = 0; i < 3; ++i) {
        expect_error(post("/account/password", bearer,
                          R"({"current_password":"guess-)" + std::to_string(i) + R"(","new_password":"stolen-1234"})"),
                     403, "wrong_password");
    }
    // Counted as failed logins: this client is now refused for the account, even with the right password.
    expect_error(
        post("/account/password", bearer, R"({"current_password":"lee-password","new_password":"stolen-1234"})"), 429,
        "too_many_attempts");
    expect_error(login("lee@example.com", "lee-password"), 429, "too_many_attempts");
    expect_error(post("/account/password", bearer, std::string(20'000, 'x')), 413, "body_too_large");
}

TEST_F(AuthApiTest, ReadinessAndMetrics) {
    EXPECT_EQ(testing::http_request(port_, "GET", "/readyz").status, 200);
    EXPECT_EQ(testing::http_request(port_, "GET", "/healthz").status, 200);
    // One connection: a request's metrics are recorded after its answer is sent, before the next is read.
    HttpConnection c("127.0.0.1", port_);
    c.request("POST", "/login", {{"Authorization", basic_auth("nobody@example.com", "whatever-pw")}});
    auto metrics = c.request("GET", "/metrics");
    EXPECT_NE(metrics.body.find("auth_logins_total{result=\"invalid\"} 1"), std::string::npos) << metrics.body;
    EXPECT_NE(metrics.body.find("http_requests_total{route=\"/login\",method=\"POST\",status=\"401\"} 1"),
              std::string::npos);
    EXPECT_NE(metrics.body.find("auth_schema_ready 1"), std::string::npos);
}

TEST_F(AuthApiTest, UnknownRoutesAndMethods) {
    expect_error(testing::http_request(port_, "GET", "/login"), 405, "method_not_allowed");
    expect_error(testing::http_request(port_, "GET", "/nothing"), 404, "not_found");
}

}  // namespace
}  // namespace mp3c::auth
