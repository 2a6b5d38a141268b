#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "mp3c/config.hpp"

namespace mp3c::config {
namespace {

using namespace std::chrono_literals;

Lookup from(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
    EXPECT_EQ(parse_duration("1500ms"), 1500ms);
    EXPECT_EQ(parse_duration("30"), 30s);
    EXPECT_EQ(parse_duration("15m"), 15min);
    EXPECT_EQ(parse_duration("24h"), 24h);
    EXPECT_EQ(parse_duration("2d"), 48h);
    EXPECT_EQ(parse_duration(" 5s "), 5s);
    EXPECT_FALSE(parse_duration("5 parsecs"));
    EXPECT_FALSE(parse_duration("-5s"));
    EXPECT_FALSE(parse_duration("h"));
    EXPECT_FALSE(parse_duration("99999999999999999999d"));
}

TEST(ParseBytes, AcceptsBinaryAndDecimalUnits) {
    EXPECT_EQ(parse_bytes("1048576"), 1048576u);
    EXPECT_EQ(parse_bytes("64MiB"), 64u << 20);
    EXPECT_EQ(parse_bytes("2GiB"), 2ull << 30);
    EXPECT_EQ(parse_bytes("1k"), 1000u);
    EXPECT_FALSE(parse_bytes("2 gigs"));
    EXPECT_FALSE(parse_bytes("99999999999999TiB"));
}

TEST(Env, ReturnsTypedValuesAndFallbacks) {
    Env env(from({{"PORT", "8080"}, {"FLAG", "on"}, {"TTL", "2h"}, {"LIMIT", "1GiB"}, {"EMPTY", ""}}));
    EXPECT_EQ(env.port("PORT", 5000), 8080);
    EXPECT_TRUE(env.boolean("FLAG", false));
    EXPECT_EQ(env.duration("TTL", 24h), 2h);
    EXPECT_EQ(env.bytes("LIMIT", 0), 1ull << 30);
    EXPECT_EQ(env.string("EMPTY", "fallback"), "fallback");
    EXPECT_EQ(env.string("MISSING", "x"), "x");
    EXPECT_EQ(env.number("MISSING", 0.5, 0, 1), 0.5);
    EXPECT_NO_THROW(env.check());
    Env numbers(from({{"RATIO", " 0.25 "}, {"WHOLE", "3"}}));
    EXPECT_EQ(numbers.number("RATIO", 1, 0, 1000), 0.25);
    EXPECT_EQ(numbers.number("WHOLE", 1, 0, 1000), 3.0);
}

TEST(Env, ReportsEveryProblemNamingTheVariable) {
    Env env(from({{"PORT", "80x"}, {"THREADS", "0"}, {"FLAG", "maybe"}, {"RATIO", "1e9"}, {"SHARE", "-0.5"}}));
    env.port("PORT", 5000);
    env.number("RATIO", 0.5, 0, 1000);
    env.number("SHARE", 0.5, 0, 1000);
    env.integer("THREADS", 4, 1, 64);
    env.boolean("FLAG", false);
    env.string("MYSQL_HOST");
    try {
        env.check();
        FAIL() << "check() should throw";
    } catch (const Error& e) {
        std::string message = e.what();
        EXPECT_NE(message.find("PORT: '80x' is not a whole number"), std::string::npos) << message;
        EXPECT_NE(message.find("THREADS: '0' is out of range (1 to 64)"), std::string::npos) << message;
        EXPECT_NE(message.find("FLAG: 'maybe' is not a boolean"), std::string::npos) << message;
        EXPECT_NE(message.find("RATIO: '1e9' is not a number"), std::string::npos) << message;
        EXPECT_NE(message.find("SHARE: '-0.5' is out of range (0 to 1000)"), std::string::npos) << message;
        EXPECT_NE(message.find("MYSQL_HOST: is required but not set"), std::string::npos) << message;
    }
}

class SecretFile : public ::testing::Test {
  protected:
    void SetUp() override {
        path_ = std::filesystem::temp_directory_path() /
                ("mp3c-secret-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
    void TearDown() override { std::filesystem::remove(path_); }
    void write(const std::string& content) { std::ofstream(path_, std::ios::binary) << content; }
    std::filesystem::path path_;
};

TEST_F(SecretFile, ReadsSecretFromFileDroppingOneTrailingNewline) {
    write("s3cret-value\n");
    Env env(from({{"JWT_SECRET_FILE", path_.string()}}));
    EXPECT_EQ(env.secret("JWT_SECRET"), "s3cret-value");
    EXPECT_NO_THROW(env.check());
}

TEST_F(SecretFile, RejectsBothVariableAndFile) {
    write("x");
    Env env(from({{"JWT_SECRET", "a"}, {"JWT_SECRET_FILE", path_.string()}}));
    env.secret("JWT_SECRET");
    ASSERT_EQ(env.problems().size(), 1u);
    EXPECT_NE(env.problems()[0].find("not both"), std::string::npos);
}

TEST(Env, MissingSecretFileIsNamed) {
    Env env(from({{"MYSQL_PASSWORD_FILE", "/nonexistent/mp3c/password"}}));
    env.secret("MYSQL_PASSWORD");
    ASSERT_EQ(env.problems().size(), 1u);
    EXPECT_NE(env.problems()[0].find("MYSQL_PASSWORD_FILE: cannot read '/nonexistent/mp3c/password'"),
              std::string::npos)
        << env.problems()[0];
}

TEST(Env, ShortSecretIsRejected) {
    Env env(from({{"JWT_SECRET", "short"}}));
    env.secret("JWT_SECRET", std::nullopt, 32);
    ASSERT_EQ(env.problems().size(), 1u);
    EXPECT_NE(env.problems()[0].find("at least 32 characters"), std::string::npos);
}

TEST(Env, ExamplePlaceholderSecretIsRefused) {
    // The example secrets.env's values, directly and inside a URL built from them.
    Env env(from({{"JWT_SECRET", "change-me-jwt-secret-at-least-32-characters"},
                  {"AMQP_URL", "amqp://gateway:Change-Me-rabbitmq@rabbitmq:5672/"},
                  {"MYSQL_PASSWORD", "a-real-secret-3f9a1c"}}));
    env.secret("JWT_SECRET", std::nullopt, 32);
    env.secret("AMQP_URL");
    env.secret("MYSQL_PASSWORD");
    ASSERT_EQ(env.problems().size(), 2u);
    EXPECT_NE(env.problems()[0].find("JWT_SECRET: holds a placeholder"), std::string::npos) << env.problems()[0];
    EXPECT_NE(env.problems()[1].find("AMQP_URL: holds a placeholder"), std::string::npos) << env.problems()[1];
    EXPECT_THROW(env.check(), Error);
}

TEST(Env, PlaceholderInATextIsRefused) {
    Env env(from({{"STORAGE_URL", "mongodb://mp3converter:change-me-mongo-app@mongodb:27017/admin"}}));
    env.string("STORAGE_URL");
    ASSERT_EQ(env.problems().size(), 1u);
    EXPECT_NE(env.problems()[0].find("STORAGE_URL: holds a placeholder"), std::string::npos) << env.problems()[0];
}

TEST(Env, RequiredSecretMissing) {
    Env env(from({}));
    env.secret("JWT_SECRET");
    ASSERT_EQ(env.problems().size(), 1u);
    EXPECT_NE(env.problems()[0].find("JWT_SECRET: is required"), std::string::npos);
}

}  // namespace
}  // namespace mp3c::config
