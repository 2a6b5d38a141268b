#include <gtest/gtest.h>

#include "mp3c/http_address.hpp"

namespace mp3c::http {
namespace {

TEST(Cidr, MatchesIpv4AndIpv6Networks) {
    auto net = Cidr::parse("10.0.0.0/8");
    ASSERT_TRUE(net);
    EXPECT_TRUE(net->contains("10.1.2.3"));
    EXPECT_FALSE(net->contains("11.0.0.1"));
    EXPECT_FALSE(net->contains("::1"));
    auto odd = Cidr::parse("192.168.1.128/25");
    ASSERT_TRUE(odd);
    EXPECT_TRUE(odd->contains("192.168.1.200"));
    EXPECT_FALSE(odd->contains("192.168.1.100"));
    auto v6 = Cidr::parse("fd00::/8");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->contains("fd12::1"));
    auto single = Cidr::parse("127.0.0.1");
    ASSERT_TRUE(single);
    EXPECT_TRUE(single->contains("::ffff:127.0.0.1"));
    EXPECT_FALSE(single->contains("127.0.0.2"));
}

TEST(Cidr, RejectsGarbage) {
    EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
    EXPECT_FALSE(Cidr::parse("not-an-ip"));
    EXPECT_FALSE(Cidr::parse("10.0.0.0/"));
    EXPECT_FALSE(Cidr::parse("10.0.0.0/x"));
}

TEST(ClientAddress, BelievesForwardedForOnlyFromTrustedProxies) {
    std::vector<Cidr> trusted = {*Cidr::parse("10.0.0.0/8")};
    EXPECT_EQ(client_address("10.0.0.5", "203.0.113.7", trusted), "203.0.113.7");
    EXPECT_EQ(client_address("198.51.100.1", "203.0.113.7", trusted), "198.51.100.1");
    // A client can prepend anything; only the entry the trusted proxy appended counts.
    EXPECT_EQ(client_address("10.0.0.5", "1.2.3.4, 203.0.113.7, 10.0.0.9", trusted), "203.0.113.7");
    EXPECT_EQ(client_address("10.0.0.5", "junk", trusted), "10.0.0.5");
    EXPECT_EQ(client_address("10.0.0.5", std::nullopt, trusted), "10.0.0.5");
}

}  // namespace
}  // namespace mp3c::http
