#include "mp3c/output_options.hpp"

#include <gtest/gtest.h>

#include "mp3c/callback_url.hpp"

namespace mp3c {
namespace {

std::string error_of(const std::map<std::string, std::string>& fields) {
    auto r = parse_output_options(fields);
    return r ? "" : r.error();
}

TEST(OutputOptions, DefaultsAreNull) {
    auto r = parse_output_options({});
    ASSERT_TRUE(r);
    auto j = r.value().to_json();
    EXPECT_TRUE(j["bitrate"].is_null());
    EXPECT_TRUE(j["quality"].is_null());
}

TEST(OutputOptions, ValidValues) {
    auto r = parse_output_options({{"bitrate", "128"}, {"channels", "1"}, {"sample_rate", "22050"}, {"other", "x"}});
    ASSERT_TRUE(r) << r.error();
    auto j = r.value().to_json();
    EXPECT_EQ(j["bitrate"], 128);
    EXPECT_EQ(j["channels"], 1);
    EXPECT_EQ(j["sample_rate"], 22050);
    EXPECT_EQ(parse_output_options({{"quality", "0"}}).value().vbr_quality, 0);
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
    EXPECT_TRUE(check_callback_url("https://hooks.example.com/mp3?x=1"));
    EXPECT_TRUE(check_callback_url("http://hooks.example.com:8080/"));
    EXPECT_FALSE(check_callback_url(""));
    EXPECT_FALSE(check_callback_url("ftp://example.com/"));
    EXPECT_FALSE(check_callback_url("file:///etc/passwd"));
    EXPECT_FALSE(check_callback_url("gopher://example.com/"));
    EXPECT_FALSE(check_callback_url("https://user:secret@example.com/"));
    EXPECT_FALSE(check_callback_url("not a url"));
    EXPECT_FALSE(check_callback_url("https://example.com/" + std::string(2000, 'a')));
}

}  // namespace mp3c
