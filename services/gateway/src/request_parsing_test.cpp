#include "request_parsing.hpp"

#include <gtest/gtest.h>

namespace mp3c::gateway {
namespace {

TEST(CleanFilename, StripsDirectoriesAndControlCharacters) {
    EXPECT_EQ(clean_filename("../../etc/passwd"), "passwd");
    EXPECT_EQ(clean_filename("C:\\Users\\me\\clip.mp4"), "clip.mp4");
    EXPECT_EQ(clean_filename("a\nb\r\x01.mp4"), "ab.mp4");
    EXPECT_EQ(clean_filename(""), "upload");
    EXPECT_EQ(clean_filename(".."), "upload");
    EXPECT_EQ(clean_filename("Zürich 🎵.mov"), "Zürich 🎵.mov");
    EXPECT_EQ(clean_filename(std::string(300, 'a')).size(), 200u);
    EXPECT_EQ(clean_filename(std::string(199, 'a') + "é").size(), 199u);  // no half character
}

TEST(ContentDisposition, AsciiFallbackAndUtf8Name) {
    EXPECT_EQ(mp3_content_disposition("holiday.mp4"),
              "attachment; filename=\"holiday.mp3\"; filename*=UTF-8''holiday.mp3");
    EXPECT_EQ(mp3_content_disposition("Zürich \"best\".mov"),
              "attachment; filename=\"Zurich _best_.mp3\"; filename*=UTF-8''Z%C3%BCrich%20%22best%22.mp3");
    EXPECT_EQ(mp3_content_disposition("noext"), "attachment; filename=\"noext.mp3\"; filename*=UTF-8''noext.mp3");
    EXPECT_EQ(mp3_content_disposition("a;b%c.avi"),
              "attachment; filename=\"a_b_c.mp3\"; filename*=UTF-8''a%3Bb%25c.mp3");
}

TEST(ContentDisposition, TheAsciiNameDropsAccentsAndLeavesOutTheRest) {
    EXPECT_EQ(ascii_filename("Café déjà vu 🎵.mp3"), "Cafe deja vu.mp3");
    EXPECT_EQ(ascii_filename("Straße – Łódź Æon.mp3"), "Strasse Lodz AEon.mp3");
    EXPECT_EQ(ascii_filename("東京.mp3"), "audio.mp3");
    EXPECT_EQ(ascii_filename("a\x01"
                             "b.mp3"),
              "a_b.mp3");
    EXPECT_EQ(ascii_filename("\xff\xfe broken.mp3"), "broken.mp3") << "invalid UTF-8 is left out, never passed on";
}

TEST(Range, ParsesSingleRanges) {
    auto r = parse_range("bytes=0-99", 1000);
    ASSERT_TRUE(r.range);
    EXPECT_EQ(r.range->offset, 0u);
    EXPECT_EQ(r.range->length, 100u);
    r = parse_range("bytes=900-", 1000);
    EXPECT_EQ(r.range->offset, 900u);
    EXPECT_EQ(r.range->length, 100u);
    r = parse_range("bytes=-10", 1000);
    EXPECT_EQ(r.range->offset, 990u);
    EXPECT_EQ(r.range->length, 10u);
    r = parse_range("bytes=990-5000", 1000);
    EXPECT_EQ(r.range->length, 10u);
    r = parse_range("bytes=-5000", 1000);
    EXPECT_EQ(r.range->offset, 0u);
    EXPECT_EQ(r.range->length, 1000u);
}

TEST(Range, UnusableOrUnsatisfiable) {
    EXPECT_FALSE(parse_range(std::nullopt, 10).range);
    EXPECT_FALSE(parse_range("items=0-1", 10).range);
    EXPECT_FALSE(parse_range("bytes=0-1,3-4", 10).range);
    EXPECT_FALSE(parse_range("bytes=5-1", 10).range);
    EXPECT_FALSE(parse_range("bytes=x-1", 10).range);
    EXPECT_TRUE(parse_range("bytes=10-", 10).unsatisfiable);
    EXPECT_TRUE(parse_range("bytes=-0", 10).unsatisfiable);
}

}  // namespace
}  // namespace mp3c::gateway
