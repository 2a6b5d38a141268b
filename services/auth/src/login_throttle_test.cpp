#include "login_throttle.hpp"

#include <gtest/gtest.h>

namespace mp3c::auth {
namespace {

using namespace std::chrono_literals;

class ThrottleTest : public ::testing::Test {
  protected:
    LoginThrottle make(ThrottleConfig config) {
        return LoginThrottle(config, [this] { return now_; });
    }
    LoginThrottle::Clock::time_point now_{};
};

TEST_F(ThrottleTest, AccountIsBlockedAfterTooManyFailuresAndReleasedAfterTheWindow) {
    auto throttle = make({.max_failures_per_account = 3, .max_failures_per_client = 100, .window = 60s});
    for (int i = 0; i < 3; ++i) {
        EXPECT_FALSE(throttle.retry_after("alice", "1.1.1.1"));
        throttle.record_failure("alice", "1.1.1.1");
        now_ += 1s;
    }
    auto wait = throttle.retry_after("alice", "2.2.2.2");  // from anywhere
    ASSERT_TRUE(wait);
    EXPECT_EQ(*wait, 57s);  // the first failure (t=0) ages out at t=60; now t=3
    EXPECT_FALSE(throttle.retry_after("bob", "1.1.1.1")) << "other accounts are not locked out";
    now_ += 57s;
    EXPECT_FALSE(throttle.retry_after("alice", "1.1.1.1"));
}

TEST_F(ThrottleTest, ClientIsBlockedAcrossAccounts) {
    auto throttle = make({.max_failures_per_account = 100, .max_failures_per_client = 4, .window = 30s});
    for (int i = 0; i < 4; ++i) throttle.record_failure("user" + std::to_string(i), "6.6.6.6");
    EXPECT_TRUE(throttle.retry_after("someone-else", "6.6.6.6"));
    EXPECT_FALSE(throttle.retry_after("someone-else", "7.7.7.7"));
    now_ += 30s;
    EXPECT_FALSE(throttle.retry_after("someone-else", "6.6.6.6"));
}

TEST_F(ThrottleTest, SuccessClearsTheAccountsFailures) {
    auto throttle = make({.max_failures_per_account = 3, .max_failures_per_client = 100, .window = 60s});
    throttle.record_failure("alice", "1.1.1.1");
    throttle.record_failure("alice", "1.1.1.1");
    throttle.record_success("alice");
    throttle.record_failure("alice", "1.1.1.1");
    throttle.record_failure("alice", "1.1.1.1");
    EXPECT_FALSE(throttle.retry_after("alice", "1.1.1.1"));
    throttle.record_failure("alice", "1.1.1.1");
    EXPECT_TRUE(throttle.retry_after("alice", "1.1.1.1"));
}

TEST_F(ThrottleTest, MemoryStaysBounded) {
    auto throttle =
        make({.max_failures_per_account = 3, .max_failures_per_client = 3, .window = 60s, .max_tracked_keys = 100});
    for (int i = 0; i < 1000; ++i) {
        throttle.record_failure("user" + std::to_string(i), "10.0.0." + std::to_string(i % 250));
        now_ += 10ms;
    }
    EXPECT_LE(throttle.tracked_keys(), 100u);
}

TEST_F(ThrottleTest, ExpiredEntriesAreForgotten) {
    auto throttle = make({.max_failures_per_account = 3, .max_failures_per_client = 3, .window = 10s});
    throttle.record_failure("alice", "1.1.1.1");
    EXPECT_EQ(throttle.tracked_keys(), 2u);
    now_ += 11s;
    EXPECT_FALSE(throttle.retry_after("alice", "1.1.1.1"));
    EXPECT_EQ(throttle.tracked_keys(), 0u);
}

}  // namespace
}  // namespace mp3c::auth
