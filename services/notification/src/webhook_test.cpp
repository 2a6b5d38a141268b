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
    auto r = deliver_webhook({.secret = "s"}, "http://127.0.0.1:9/hook", "{}", {});
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().address_refused) << r.error().detail;
    EXPECT_EQ(r.error().outcome, Outcome::permanent);
    EXPECT_NE(r.error().detail.find("127.0.0.1"), std::string::npos) << r.error().detail;
    auto named = deliver_webhook({.secret = "s"}, "http://localhost:9/hook", "{}", {});
    ASSERT_FALSE(named);
    EXPECT_TRUE(named.error().address_refused) << "a name that resolves inside is refused too";
    auto allowed = deliver_webhook({.secret = "s", .allow_private = true}, "http://127.0.0.1:9/hook", "{}", {});
    ASSERT_FALSE(allowed);
    EXPECT_FALSE(allowed.error().address_refused);
    EXPECT_EQ(allowed.error().outcome, Outcome::transient) << "allowed: tried, and nobody answered";
}

// The example of the Standard Webhooks specification and its reference libraries.
constexpr const char* kSpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kSpecId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kSpecTimestamp = 1614265330;
constexpr const char* kSpecBody = R"({"test": 2432232314})";
constexpr const char* kSpecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

TEST(StandardWebhooks, SignatureMatchesTheSpecificationsExample) {
    EXPECT_EQ(standard_signature(kSpecSecret, kSpecId, kSpecTimestamp, kSpecBody), kSpecSignature);
    EXPECT_FALSE(standard_signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", kSpecId, kSpecTimestamp, kSpecBody))
        << "a secret without whsec_ is refused, not used as is";
    EXPECT_FALSE(standard_signature("whsec_not base64!", kSpecId, kSpecTimestamp, kSpecBody));
}

TEST(StandardWebhooks, VerifierAcceptsAGenuineDeliveryOnly) {
    const std::vector<std::string> secrets = {kSpecSecret};
    const int64_t now = kSpecTimestamp + 10;
    EXPECT_TRUE(verify_standard_webhook(secrets, kSpecId, "1614265330", kSpecSignature, kSpecBody, now));
    // Any of several signatures may match (a rotation's overlap sends two).
    std::string two = std::string("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ") + kSpecSignature;
    EXPECT_TRUE(verify_standard_webhook(secrets, kSpecId, "1614265330", two, kSpecBody, now));

    auto refused = [&](std::string_view id, std::string_view ts, std::string_view sig, std::string_view body,
                       int64_t at) { return verify_standard_webhook(secrets, id, ts, sig, body, at).error(); };
    EXPECT_EQ(refused(kSpecId, "1614265330", kSpecSignature, kSpecBody, kSpecTimestamp + 3600),
              "too old: a replay, or a clock far off")
        << "a captured delivery replayed an hour later";
    EXPECT_EQ(refused(kSpecId, "1614265330", kSpecSignature, kSpecBody, kSpecTimestamp - 3600),
              "timestamp in the future");
    EXPECT_EQ(refused(kSpecId, "1614265331", kSpecSignature, kSpecBody, now), "no signature matches")
        << "the timestamp is signed: changing it to pass the window breaks the signature";
    EXPECT_EQ(refused("msg_other", "1614265330", kSpecSignature, kSpecBody, now), "no signature matches");
    EXPECT_EQ(refused(kSpecId, "1614265330", kSpecSignature, R"({"test": 1})", now), "no signature matches");
    EXPECT_EQ(refused(kSpecId, "12x", kSpecSignature, kSpecBody, now), "webhook-timestamp is not a number");
    EXPECT_EQ(refused(kSpecId, "1614265330", "", kSpecBody, now), "missing webhook headers");
    // Another user's secret does not verify this user's deliveries.
    EXPECT_FALSE(verify_standard_webhook({"whsec_" + std::string("QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")}, kSpecId,
                                         "1614265330", kSpecSignature, kSpecBody, now));
}

TEST(ReceiverGate, OneDeliveryPerReceiverAndARestAfterAFailure) {
    ReceiverGate gate(std::chrono::seconds(30));
    auto t0 = ReceiverGate::Clock::time_point{} + std::chrono::hours(1);
    EXPECT_TRUE(gate.enter("https://slow.example:443", t0));
    EXPECT_FALSE(gate.enter("https://slow.example:443", t0)) << "one in flight per receiver";
    EXPECT_TRUE(gate.enter("https://fast.example:443", t0)) << "another receiver is not held back";
    gate.leave("https://fast.example:443", false, t0);
    EXPECT_TRUE(gate.enter("https://fast.example:443", t0));
    gate.leave("https://fast.example:443", false, t0);

    gate.leave("https://slow.example:443", true, t0);  // timed out
    EXPECT_FALSE(gate.enter("https://slow.example:443", t0 + std::chrono::seconds(29))) << "resting";
    EXPECT_TRUE(gate.enter("https://fast.example:443", t0 + std::chrono::seconds(29)));
    EXPECT_TRUE(gate.enter("https://slow.example:443", t0 + std::chrono::seconds(30)));
}

TEST(ReceiverGate, ReceiverIsSchemeHostAndPort) {
    EXPECT_EQ(receiver_of("https://Hooks.Example.com/a?b=c"), "https://hooks.example.com:443");
    EXPECT_EQ(receiver_of("http://hooks.example.com:8080/x"), "http://hooks.example.com:8080");
    EXPECT_EQ(receiver_of("http://hooks.example.com/x"), receiver_of("http://hooks.example.com:80/y"));
}

}  // namespace
}  // namespace mp3c::notification
