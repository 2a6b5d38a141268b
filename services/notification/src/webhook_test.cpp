#include "webhook.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace mp3c::notification {
namespace {

bool public_address(const std::string& text) {
    sockaddr_storage storage{};
    if (text.find(':') != std::string::npos) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
        a->sin6_family = AF_INET6;
        EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &a->sin6_addr), 1) << text;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&storage);
        a->sin_family = AF_INET;
        EXPECT_EQ(inet_pton(AF_INET, text.c_str(), &a->sin_addr), 1) << text;
    }
    return is_public_address(reinterpret_cast<sockaddr*>(&storage));
}

TEST(Webhook, InternalAddressesAreNotPublic) {
    for (const char* internal : {"127.0.0.1",
                                 "127.255.0.9",
                                 "10.1.2.3",
                                 "172.16.0.1",
                                 "172.31.255.255",
                                 "192.168.1.10",
                                 "169.254.169.254",
                                 "100.64.0.1",
                                 "0.0.0.0",
                                 "224.0.0.1",
                                 "255.255.255.255",
                                 "192.0.2.1",
                                 "::1",
                                 "::",
                                 "fe80::1",
                                 "fd00::5",
                                 "fc12::1",
                                 "ff02::1",
                                 "::ffff:127.0.0.1",
                                 "::ffff:10.0.0.1",
                                 "::ffff:169.254.169.254",
                                 "64:ff9b::a00:1",
                                 "2001:db8::1"}) {
        EXPECT_FALSE(public_address(internal)) << internal;
    }
    for (const char* external : {"93.184.216.34", "8.8.8.8", "172.32.0.1", "192.169.0.1", "100.128.0.1",
                                 "2606:2800:220:1::1", "::ffff:93.184.216.34"}) {
        EXPECT_TRUE(public_address(external)) << external;
    }
}

TEST(Webhook, SignatureIsHexHmacSha256OfTheBody) {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    EXPECT_EQ(webhook_signature("Jefe", "what do ya want for nothing?"),
              "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Webhook, LoopbackIsRefusedBeforeAnyConnection) {
    // Nothing listens on port 9 here; a refusal must come from the address check, not from the connection.
    auto r = deliver_webhook({.secret = "s"}, "http://127.0.0.1:9/hook", "{}");
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().address_refused) << r.error().detail;
    EXPECT_EQ(r.error().outcome, Outcome::permanent);
    EXPECT_NE(r.error().detail.find("127.0.0.1"), std::string::npos) << r.error().detail;
    auto named = deliver_webhook({.secret = "s"}, "http://localhost:9/hook", "{}");
    ASSERT_FALSE(named);
    EXPECT_TRUE(named.error().address_refused) << "a name that resolves inside is refused too";
    auto allowed = deliver_webhook({.secret = "s", .allow_private = true}, "http://127.0.0.1:9/hook", "{}");
    ASSERT_FALSE(allowed);
    EXPECT_FALSE(allowed.error().address_refused);
    EXPECT_EQ(allowed.error().outcome, Outcome::transient) << "allowed: tried, and nobody answered";
}

}  // namespace
}  // namespace mp3c::notification
