#include "rate_limits.hpp"

#include <gtest/gtest.h>

namespace mp3c::gateway {
namespace {

using namespace std::chrono_literals;

TEST(TokenBuckets, ABurstOfTheAllowanceThenOnePerInterval) {
    TokenBuckets limit(3, 60s);  // 3 a minute: one token back every 20 s
    auto t0 = TokenBuckets::Clock::time_point{} + 1000s;
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(limit.take("a", t0)) << i;
    auto refused = limit.take("a", t0);
    ASSERT_TRUE(refused);
    EXPECT_EQ(*refused, 20s);
    EXPECT_EQ(*limit.take("a", t0 + 15s), 5s);  // a refused request takes nothing
    EXPECT_FALSE(limit.take("a", t0 + 20s));
    EXPECT_TRUE(limit.take("a", t0 + 21s));
    EXPECT_FALSE(limit.take("b", t0)) << "another key has its own bucket";
}

TEST(TokenBuckets, ZeroMeansNoLimit) {
    TokenBuckets limit(0, 60s);
    for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limit.take("a"));
}

TEST(TokenBuckets, MemoryStaysBoundedAndIdleKeysAreForgottenFirst) {
    TokenBuckets limit(2, 60s, 3);
    auto t0 = TokenBuckets::Clock::time_point{} + 1000s;
    limit.take("busy", t0);
    limit.take("busy", t0);
    limit.take("idle1", t0);
    limit.take("idle2", t0);
    // A minute later the idle keys are full again and forgotten to make room; "busy" keeps its debt.
    auto later = t0 + 59s;
    EXPECT_FALSE(limit.take("new", later));
    EXPECT_FALSE(limit.take("busy", later));  // 59 s refilled ~1.97 tokens
    EXPECT_TRUE(limit.take("busy", later));
}

TEST(ClientKey, IPv6AddressesCountByTheirSlash64) {
    EXPECT_EQ(client_key("203.0.113.7"), "203.0.113.7");
    EXPECT_EQ(client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
    EXPECT_EQ(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:2:ffff::9")) << "one network, one allowance";
    EXPECT_NE(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:3::1"));
    EXPECT_EQ(client_key("::ffff:198.51.100.4"), "198.51.100.4");
    EXPECT_EQ(client_key("unknown"), "unknown");
}

TEST(Slots, AtMostMaxPerKeyAndGivenBackOnRelease) {
    Slots slots(2);
    auto a1 = slots.acquire("alice");
    auto a2 = slots.acquire("alice");
    ASSERT_TRUE(a1 && a2);
    EXPECT_FALSE(slots.acquire("alice"));
    EXPECT_TRUE(slots.acquire("bob")) << "one user's slots never count against another";
    a1.reset();
    EXPECT_EQ(slots.held("alice"), 1u);
    EXPECT_TRUE(slots.acquire("alice"));
}

TEST(Slots, ASlotMayOutliveItsSlots) {
    std::unique_ptr<Slots::Slot> kept;
    {
        Slots slots(1);
        kept = slots.acquire("alice");
    }
    kept.reset();  // gives back into the shared state, not into freed memory (ASan would say)
}

}  // namespace
}  // namespace mp3c::gateway
