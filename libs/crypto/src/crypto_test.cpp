#include "mp3c/crypto.hpp"

#include <gtest/gtest.h>

namespace mp3c::crypto {
namespace {

TEST(Base64, RoundTripsBothVariants) {
    std::string bytes = "any\xff\xfe bytes\n";
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
    EXPECT_EQ(base64_decode(base64_encode(bytes, Base64::url_no_padding), Base64::url_no_padding), bytes);
    EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
}

TEST(Base64, RejectsInvalidInput) {
    EXPECT_FALSE(base64_decode("not base64!"));
    EXPECT_FALSE(base64_decode("dXNlcjpwYXNz=="));  // wrong padding
    EXPECT_FALSE(base64_decode("abc", Base64::standard));
    EXPECT_FALSE(base64_decode("ab+/", Base64::url_no_padding));
}

TEST(Hmac, MatchesRfc4231TestCase2) {
    EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Sha256, MatchesKnownDigest) {
    EXPECT_EQ(to_hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
    EXPECT_FALSE(constant_time_equal("abc", "abcd"));
    EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(RandomHex, HasRequestedLengthAndDiffers) {
    auto a = random_hex(12);
    auto b = random_hex(12);
    EXPECT_EQ(a.size(), 24u);
    EXPECT_NE(a, b);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(PasswordHasher, ProducesVerifiableArgon2idHashes) {
    PasswordHasher hasher(PasswordHasher::minimum());
    std::string hash = hasher.hash("correct horse");
    EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
    EXPECT_TRUE(hasher.verify(hash, "correct horse"));
    EXPECT_FALSE(hasher.verify(hash, "correct horsE"));
    EXPECT_FALSE(hasher.verify("not a hash", "correct horse"));
    EXPECT_NE(hasher.hash("correct horse"), hash);  // salted
}

TEST(PasswordHasher, NeedsRehashWhenCostChanges) {
    PasswordHasher weak(PasswordHasher::minimum());
    PasswordHasher strong(PasswordHasher::interactive());
    std::string hash = weak.hash("pw");
    EXPECT_FALSE(weak.needs_rehash(hash));
    EXPECT_TRUE(strong.needs_rehash(hash));
    EXPECT_TRUE(strong.verify(hash, "pw"));  // parameters travel with the hash
}

}  // namespace
}  // namespace mp3c::crypto
