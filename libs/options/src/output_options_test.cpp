#include "mp3c/output_options.hpp"

#include <gtest/gtest.h>

#include "mp3c/callback_url.hpp"

namespace mp3c {
namespace {

std::string error_of(const std::map<std::string, std::string>& fields) {
    auto r = parse_output_options(fields);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : "";
}

TEST(OutputOptions, DefaultsAreNull) {
    auto r = parse_output_options({});
    ASSERT_TRUE(std::holds_alternative<OutputOptions>(r));
    auto j = std::get<OutputOptions>(r).to_json();
    EXPECT_TRUE(j["bitrate"].is_null());
    EXPECT_TRUE(j["quality"].is_null());
}

TEST(OutputOptions, ValidValues) {
    auto r = parse_output_options({{"bitrate", "128"}, {"channels", "1"}, {"sample_rate", "22050"}, {"other", "x"}});
    ASSERT_TRUE(std::holds_alternative<OutputOptions>(r)) << std::get<std::string>(r);
    auto j = std::get<OutputOptions>(r).to_json();
    EXPECT_EQ(j["bitrate"], 128);
    EXPECT_EQ(j["channels"], 1);
    EXPECT_EQ(j["sample_rate"], 22050);
    EXPECT_EQ(std::get<OutputOptions>(parse_output_options({{"quality", "0"}})).vbr_quality, 0);
}

TEST(OutputOptions, InvalidValuesAreNamed) {
    EXPECT_NE(error_of({{"bitrate", "100"}}).find("bitrate"), std::string::npos);
    EXPECT_NE(error_of({{"bitrate", "32"}}).find("bitrate"), std::string::npos);
    EXPECT_NE(error_of({{"bitrate", "abc"}}).find("bitrate"), std::string::npos);
    EXPECT_NE(error_of({{"quality", "10"}}).find("quality"), std::string::npos);
    EXPECT_NE(error_of({{"quality", "-1"}}).find("quality"), std::string::npos);
    EXPECT_NE(error_of({{"bitrate", "128"}, {"quality", "2"}}).find("not both"), std::string::npos);
    EXPECT_NE(error_of({{"channels", "6"}}).find("channels"), std::string::npos);
    EXPECT_NE(error_of({{"sample_rate", "96000"}}).find("sample_rate"), std::string::npos);
}

TEST(OutputOptions, JsonRoundTrip) {
    OutputOptions o;
    o.vbr_quality = 2;
    o.channels = 1;
    auto back = OutputOptions::from_json(o.to_json());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->vbr_quality, 2);
    EXPECT_EQ(back->channels, 1);
    EXPECT_FALSE(back->bitrate_kbps);
    EXPECT_TRUE(OutputOptions::from_json(nullptr));
    EXPECT_FALSE(OutputOptions::from_json({{"bitrate", "128"}}));
    EXPECT_FALSE(OutputOptions::from_json({{"bitrate", 100}}));
    EXPECT_FALSE(OutputOptions::from_json("text"));
}

}  // namespace
TEST(CallbackUrl, CallbackUrlsAreCheckedForShape) {
    EXPECT_EQ(callback_url_problem("https://hooks.example.com/mp3?x=1"), "");
    EXPECT_EQ(callback_url_problem("http://hooks.example.com:8080/"), "");
    EXPECT_NE(callback_url_problem(""), "");
    EXPECT_NE(callback_url_problem("ftp://example.com/"), "");
    EXPECT_NE(callback_url_problem("file:///etc/passwd"), "");
    EXPECT_NE(callback_url_problem("gopher://example.com/"), "");
    EXPECT_NE(callback_url_problem("https://user:secret@example.com/"), "");
    EXPECT_NE(callback_url_problem("not a url"), "");
    EXPECT_NE(callback_url_problem("https://example.com/" + std::string(2000, 'a')), "");
}

}  // namespace mp3c
