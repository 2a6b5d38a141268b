// The login throttle's decisions (wait_before_login), on counts as the database gives them. The records themselves
// are tested against MariaDB in tests/auth_api_test.cpp and, through the gateway with clients on 127.0.0.2 and
// 127.0.0.3, in services/gateway/tests/gateway_login_test.cpp.
#include "login_throttle.hpp"

#include <gtest/gtest.h>

namespace mp3c::auth {
namespace {

using namespace std::chrono_literals;

const ThrottleConfig kConfig{.max_failures_per_account = 5,
                             .max_failures_per_client = 20,
                             .account_slowdown_after = 5,
                             .window = 900s,
                             .max_account_delay = 30s};
constexpr int64_t kNow = 1'000'000'000;

TEST(LoginThrottle, AFreshClientMayAlwaysTry) {
    EXPECT_FALSE(wait_before_login(kConfig, {.now_ms = kNow}));
    // However often the account failed elsewhere: the owner's own device is never held back.
    EXPECT_FALSE(wait_before_login(kConfig, {.now_ms = kNow, .account = 1000, .latest_account_ms = kNow - 10}));
}

TEST(LoginThrottle, AClientGuessingManyAccountsIsRefusedUntilItsOldestFailureAges) {
    auto wait = wait_before_login(kConfig, {.now_ms = kNow, .client = 20, .oldest_client_ms = kNow - 600'000});
    ASSERT_TRUE(wait);
    EXPECT_EQ(wait->reason, Wait::Reason::client);
    EXPECT_EQ(wait->seconds, 300s);
    EXPECT_FALSE(wait_before_login(kConfig, {.now_ms = kNow, .client = 19, .oldest_client_ms = kNow}));
}

TEST(LoginThrottle, OneClientGuessingOneAccountIsRefusedForThatAccount) {
    auto wait = wait_before_login(kConfig, {.now_ms = kNow, .pair = 5, .oldest_pair_ms = kNow - 899'500});
    ASSERT_TRUE(wait);
    EXPECT_EQ(wait->reason, Wait::Reason::account_from_client);
    EXPECT_EQ(wait->seconds, 1s) << "rounded up to a whole second, never 0";
}

TEST(LoginThrottle, AnAccountUnderAttackSlowsDownTheClientsThatFailedWithIt) {
    FailureCounts counts{.now_ms = kNow, .pair = 1, .account = 5, .latest_account_ms = kNow - 200};
    auto wait = wait_before_login(kConfig, counts);
    ASSERT_TRUE(wait);
    EXPECT_EQ(wait->reason, Wait::Reason::account_slowed);
    EXPECT_EQ(wait->seconds, 1s);
    counts.latest_account_ms = kNow - 1000;  // the delay has passed
    EXPECT_FALSE(wait_before_login(kConfig, counts));
    counts.account = 4;  // below the threshold: no delay at all
    counts.latest_account_ms = kNow;
    EXPECT_FALSE(wait_before_login(kConfig, counts));
}

TEST(LoginThrottle, TheAccountsDelayDoublesAndIsBounded) {
    EXPECT_EQ(account_delay(kConfig, 4), 0ms);
    EXPECT_EQ(account_delay(kConfig, 5), 1000ms);
    EXPECT_EQ(account_delay(kConfig, 6), 2000ms);
    EXPECT_EQ(account_delay(kConfig, 9), 16000ms);
    EXPECT_EQ(account_delay(kConfig, 10), 30000ms);
    EXPECT_EQ(account_delay(kConfig, 1'000'000), 30000ms) << "no overflow, however many failures";
}

}  // namespace
}  // namespace mp3c::auth
