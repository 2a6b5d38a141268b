#include "mp3c/strings.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "mp3c/result.hpp"

namespace mp3c {

TEST(Strings, FormatUtcIsInUtcWhateverTheLocalZone) {
    auto t = std::chrono::system_clock::time_point(std::chrono::seconds(2000000000));
    EXPECT_EQ(format_utc(t, "%Y-%m-%dT%H:%M:%SZ"), "2033-05-18T03:33:20Z");
    EXPECT_EQ(format_utc(t, "%Y-%m-%d %H:%M UTC"), "2033-05-18 03:33 UTC");
}

TEST(Strings, ClockDurationRoundsToTheSecond) {
    EXPECT_EQ(clock_duration(3909), "1:05:09");
    EXPECT_EQ(clock_duration(187.4), "3:07");
    EXPECT_EQ(clock_duration(2.4), "0:02");
    EXPECT_EQ(clock_duration(1.6), "0:02");
    EXPECT_EQ(clock_duration(-3), "0:00");
    EXPECT_EQ(clock_duration(std::nan("")), "0:00");
}

TEST(Strings, TrimRemovesSurroundingWhitespaceOnly) {
    EXPECT_EQ(trim("  a b \r\n"), "a b");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim(" \t "), "");
}

TEST(Strings, CaseInsensitiveComparisonIsAsciiOnly) {
    EXPECT_TRUE(iequals("Content-Type", "content-type"));
    EXPECT_FALSE(iequals("abc", "abd"));
    EXPECT_FALSE(iequals("abc", "abcd"));
    EXPECT_EQ(to_lower_ascii("MiXeD Ä"), "mixed Ä");
}

TEST(Strings, SplitKeepsEmptyParts) {
    auto parts = split("a..b.", '.');
    ASSERT_EQ(parts.size(), 4u);
    EXPECT_EQ(parts[0], "a");
    EXPECT_EQ(parts[1], "");
    EXPECT_EQ(parts[2], "b");
    EXPECT_EQ(parts[3], "");
}

TEST(Strings, Utf8Validation) {
    EXPECT_TRUE(is_valid_utf8("plain"));
    EXPECT_TRUE(is_valid_utf8("jörg@bücher.de 日本 🎵"));
    EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
    EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
    EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
    EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(is_valid_utf8("\xff"));
}

TEST(Strings, PrintableAscii) {
    EXPECT_TRUE(is_printable_ascii("abc-123 ~"));
    EXPECT_FALSE(is_printable_ascii("a\nb"));
    EXPECT_FALSE(is_printable_ascii("\x7f"));
    EXPECT_FALSE(is_printable_ascii("é"));
}

TEST(ResultType, HoldsValueOrError) {
    Result<int, std::string> good = 5;
    Result<int, std::string> bad = std::string("nope");
    ASSERT_TRUE(good.ok());
    EXPECT_EQ(good.value(), 5);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error(), "nope");
}

TEST(Strings, Utf8PrefixNeverCutsACharacter) {
    const std::string e_acute = "\xc3\xa9", note = "\xf0\x9f\x8e\xb5";  // two bytes, four bytes
    EXPECT_EQ(utf8_prefix("abc", 10), "abc");
    EXPECT_EQ(utf8_prefix("abc", 2), "ab");
    EXPECT_EQ(utf8_prefix("a" + e_acute + "b", 2), "a");
    EXPECT_EQ(utf8_prefix("a" + e_acute + "b", 3), "a" + e_acute);
    EXPECT_EQ(utf8_prefix(note + "x", 3), "");
    EXPECT_EQ(utf8_prefix("", 5), "");
}

}  // namespace mp3c
