#include "mp3c/log.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <vector>

namespace mp3c::log {
namespace {

class LogTest : public ::testing::Test {
  protected:
    void SetUp() override {
        init("test-service", Level::info);
        set_sink([this](std::string_view line) { lines_.emplace_back(line); });
    }
    void TearDown() override { set_sink(nullptr); }
    std::vector<std::string> lines_;
};

TEST_F(LogTest, WritesOneJsonObjectPerLineWithEnvelopeAndFields) {
    info("user logged in", {{"request_id", "abc123"}, {"user_id", 7}});
    ASSERT_EQ(lines_.size(), 1u);
    EXPECT_EQ(lines_[0].find('\n'), std::string::npos);
    auto parsed = nlohmann::json::parse(lines_[0]);
    EXPECT_EQ(parsed["level"], "info");
    EXPECT_EQ(parsed["service"], "test-service");
    EXPECT_EQ(parsed["message"], "user logged in");
    EXPECT_EQ(parsed["request_id"], "abc123");
    EXPECT_EQ(parsed["user_id"], 7);
    std::string time = parsed["time"];
    ASSERT_EQ(time.size(), 24u) << time;
    EXPECT_EQ(time.back(), 'Z');
}

TEST_F(LogTest, EscapesQuotesNewlinesAndControlCharacters) {
    warn("quote \" backslash \\ newline \n tab \t bell \x07", {{"path", "/a\"b\r\n"}});
    ASSERT_EQ(lines_.size(), 1u);
    EXPECT_EQ(lines_[0].find('\n'), std::string::npos);
    auto parsed = nlohmann::json::parse(lines_[0]);
    EXPECT_EQ(parsed["message"], "quote \" backslash \\ newline \n tab \t bell \x07");
    EXPECT_EQ(parsed["path"], "/a\"b\r\n");
}

TEST_F(LogTest, InvalidUtf8IsReplacedNotThrown) {
    EXPECT_NO_THROW(error("bad bytes \xff\xfe", {{"value", "\xc3"}}));
    ASSERT_EQ(lines_.size(), 1u);
    EXPECT_FALSE(nlohmann::json::parse(lines_[0], nullptr, false).is_discarded());
}

TEST_F(LogTest, FieldsCannotOverwriteTheEnvelope) {
    info("real message", {{"message", "forged"}, {"level", "error"}});
    auto parsed = nlohmann::json::parse(lines_.at(0));
    EXPECT_EQ(parsed["message"], "real message");
    EXPECT_EQ(parsed["level"], "info");
    EXPECT_EQ(parsed["field_message"], "forged");
}

TEST_F(LogTest, LevelsBelowTheMinimumAreDropped) {
    debug("hidden");
    init("test-service", Level::debug);
    debug("shown");
    ASSERT_EQ(lines_.size(), 1u);
    EXPECT_EQ(nlohmann::json::parse(lines_[0])["message"], "shown");
}

TEST(LogLevel, Parses) {
    EXPECT_EQ(parse_level("warn"), Level::warn);
    EXPECT_EQ(parse_level("debug"), Level::debug);
    EXPECT_FALSE(parse_level("loud"));
}

}  // namespace
}  // namespace mp3c::log
