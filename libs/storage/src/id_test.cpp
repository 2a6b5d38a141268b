#include <gtest/gtest.h>

#include <ctime>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "mp3c/storage.hpp"

namespace mp3c::storage {
namespace {

uint32_t hex_field(const std::string& id, size_t begin, size_t length) {
    return static_cast<uint32_t>(std::stoul(id.substr(begin, length), nullptr, 16));
}

TEST(IsValidId, AcceptsExactly24LowerCaseHexCharacters) {
    EXPECT_TRUE(is_valid_id("0123456789abcdef01234567"));
    EXPECT_TRUE(is_valid_id("ffffffffffffffffffffffff"));
    EXPECT_TRUE(is_valid_id("000000000000000000000000"));
}

TEST(IsValidId, RejectsEverythingElse) {
    EXPECT_FALSE(is_valid_id(""));
    EXPECT_FALSE(is_valid_id("0123456789abcdef0123456"));    // 23
    EXPECT_FALSE(is_valid_id("0123456789abcdef012345678"));  // 25
    EXPECT_FALSE(is_valid_id("0123456789ABCDEF01234567"));   // upper case
    EXPECT_FALSE(is_valid_id("0123456789abcdef0123456g"));
    EXPECT_FALSE(is_valid_id("ZZZZZZZZZZZZZZZZZZZZZZZZ"));
    EXPECT_FALSE(is_valid_id("../../etc/passwd"));
    EXPECT_FALSE(is_valid_id("../../../../etc/passwd.."));  // 24 characters
    EXPECT_FALSE(is_valid_id("0123456789abcdef0123456/"));
    EXPECT_FALSE(is_valid_id("0123456789abcdef0123456 "));
    EXPECT_FALSE(is_valid_id(std::string_view("0123456789abcdef012345\0a", 24)));
}

TEST(NewId, IsValidLowerCaseHex) {
    for (int i = 0; i < 1000; ++i) {
        std::string id = new_id();
        ASSERT_EQ(id.size(), 24u);
        ASSERT_TRUE(is_valid_id(id)) << id;
    }
}

TEST(NewId, HundredThousandIdsAreUnique) {
    std::unordered_set<std::string> seen;
    for (int i = 0; i < 100000; ++i) ASSERT_TRUE(seen.insert(new_id()).second);
}

TEST(NewId, UniqueAcrossThreads) {
    constexpr int kThreads = 4;
    constexpr int kPerThread = 20000;
    std::vector<std::vector<std::string>> ids(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&ids, t] {
            for (int i = 0; i < kPerThread; ++i) ids[t].push_back(new_id());
        });
    }
    for (auto& thread : threads) thread.join();
    std::unordered_set<std::string> seen;
    for (const auto& list : ids) {
        for (const auto& id : list) ASSERT_TRUE(seen.insert(id).second) << id;
    }
}

TEST(NewId, StartsWithTheCurrentTimeAndNeverGoesBack) {
    auto before = static_cast<uint32_t>(std::time(nullptr));
    uint32_t previous = 0;
    for (int i = 0; i < 10000; ++i) {
        uint32_t seconds = hex_field(new_id(), 0, 8);
        ASSERT_GE(seconds, previous);
        previous = seconds;
    }
    auto after = static_cast<uint32_t>(std::time(nullptr));
    EXPECT_GE(previous, before);
    EXPECT_LE(previous, after);
}

TEST(NewId, KeepsTheProcessPartAndCountsUp) {
    std::string a = new_id();
    std::string b = new_id();
    EXPECT_EQ(a.substr(8, 10), b.substr(8, 10));  // the 5 random bytes, chosen once per process
    EXPECT_EQ((hex_field(a, 18, 6) + 1) & 0xffffff, hex_field(b, 18, 6));
}

}  // namespace
}  // namespace mp3c::storage
