#include "webhook.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace mp3c::notification {
namespace {

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
