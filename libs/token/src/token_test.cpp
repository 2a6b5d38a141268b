#include "mp3c/token.hpp"

#include <gtest/gtest.h>

#include "mp3c/crypto.hpp"

namespace mp3c::token {
namespace {

using namespace std::chrono_literals;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test";

std::string b64(std::string_view s) { return crypto::base64_encode(s, crypto::Base64::url_no_padding); }

// Builds a token by hand, signed with HMAC-SHA-256 over header.payload, so tests can forge any header.
std::string forge(const nlohmann::json& header, const nlohmann::json& payload, const std::string& key) {
    std::string signing_input = b64(header.dump()) + "." + b64(payload.dump());
    return signing_input + "." + b64(crypto::hmac_sha256(key, signing_input));
}

long long seconds(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

TEST(Token, IssuedTokenVerifiesWithClaims) {
    Signer signer(kSecret);
    auto now = Clock::now();
    std::string token = signer.issue({{"username", "a@b.c"}, {"sub", "42"}, {"admin", false}}, now + 1h, now);
    auto result = signer.verify(token, now);
    ASSERT_TRUE(result.ok()) << to_string(result.error());
    EXPECT_EQ(result.value()["username"], "a@b.c");
    EXPECT_EQ(result.value()["sub"], "42");
    EXPECT_EQ(result.value()["admin"], false);
    EXPECT_EQ(result.value()["exp"], seconds(now + 1h));
    EXPECT_EQ(result.value()["iat"], seconds(now));
}

TEST(Token, ExpiredTokenIsRefused) {
    Signer signer(kSecret);
    auto now = Clock::now();
    std::string token = signer.issue({{"username", "a@b.c"}}, now + 10s, now);
    EXPECT_TRUE(signer.verify(token, now + 9s).ok());
    auto later = signer.verify(token, now + 11s);
    ASSERT_FALSE(later.ok());
    EXPECT_EQ(later.error(), VerifyError::expired);
}

TEST(Token, TamperedPayloadIsRefused) {
    Signer signer(kSecret);
    std::string token = signer.issue({{"username", "a@b.c"}, {"admin", false}}, Clock::now() + 1h);
    auto parts = token.substr(0, token.find('.'));
    std::string forged_payload =
        b64(nlohmann::json{{"username", "a@b.c"}, {"admin", true}, {"exp", 4102444800}}.dump());
    std::string tampered = parts + "." + forged_payload + token.substr(token.rfind('.'));
    auto result = signer.verify(tampered);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error(), VerifyError::bad_signature);
}

TEST(Token, WrongKeyIsRefused) {
    Signer signer(kSecret);
    std::string token = forge({{"alg", "HS256"}, {"typ", "JWT"}}, {{"username", "x"}, {"exp", 4102444800}},
                              "another-secret-another-secret-another");
    auto result = signer.verify(token);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error(), VerifyError::bad_signature);
}

TEST(Token, ForgedWithTheRightKeyVerifies) {
    // Shows the forging helper is faithful, so the refusals above are about what they change.
    Signer signer(kSecret);
    auto result = signer.verify(forge({{"alg", "HS256"}, {"typ", "JWT"}}, {{"exp", 4102444800}}, kSecret));
    EXPECT_TRUE(result.ok());
}

TEST(Token, AlgNoneIsRefused) {
    Signer signer(kSecret);
    std::string unsigned_token =
        b64(R"({"alg":"none","typ":"JWT"})") + "." + b64(R"({"username":"a@b.c","admin":true,"exp":4102444800})") + ".";
    auto result = signer.verify(unsigned_token);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error(), VerifyError::alg_none);
    auto upper = signer.verify(forge({{"alg", "NONE"}}, {{"exp", 4102444800}}, kSecret));
    ASSERT_FALSE(upper.ok());
    EXPECT_EQ(upper.error(), VerifyError::alg_none);
}

TEST(Token, OtherAlgorithmsAreRefused) {
    Signer signer(kSecret);
    for (const char* alg : {"HS512", "HS384", "RS256", "ES256"}) {
        auto result = signer.verify(forge({{"alg", alg}}, {{"exp", 4102444800}}, kSecret));
        ASSERT_FALSE(result.ok()) << alg;
        EXPECT_EQ(result.error(), VerifyError::wrong_algorithm) << alg;
    }
}

TEST(Token, MissingOrNonNumericExpIsRefused) {
    Signer signer(kSecret);
    auto missing = signer.verify(forge({{"alg", "HS256"}}, {{"username", "a"}}, kSecret));
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error(), VerifyError::missing_exp);
    auto text = signer.verify(forge({{"alg", "HS256"}}, {{"exp", "tomorrow"}}, kSecret));
    ASSERT_FALSE(text.ok());
    EXPECT_EQ(text.error(), VerifyError::missing_exp);
}

TEST(Token, MalformedTokensAreRefused) {
    Signer signer(kSecret);
    for (std::string bad :
         {std::string(""), std::string("abc"), std::string("a.b"), std::string("a.b.c.d"), std::string("!!!.???.sig"),
          b64("not json") + "." + b64("{}") + ".sig", b64("[1,2]") + "." + b64("{}") + ".sig",
          b64(R"({"typ":"JWT"})") + "." + b64("{}") + ".x", std::string(10000, 'a'), std::string("a\nb.c.d")}) {
        auto result = signer.verify(bad);
        ASSERT_FALSE(result.ok()) << bad;
        EXPECT_EQ(result.error(), VerifyError::malformed) << bad;
    }
}

TEST(Token, ShortSecretIsRejected) { EXPECT_THROW(Signer("too short"), std::invalid_argument); }

}  // namespace
}  // namespace mp3c::token
