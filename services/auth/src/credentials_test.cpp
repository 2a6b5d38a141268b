#include "credentials.hpp"

#include <gtest/gtest.h>

#include "mp3c/crypto.hpp"

namespace mp3c::auth {
namespace {

std::string basic(const std::string& raw) { return "Basic " + crypto::base64_encode(raw); }

TEST(BasicAuthorization, ParsesUserAndPassword) {
    auto c = parse_basic_authorization(basic("a@b.c:pa:ss word"));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->username, "a@b.c");
    EXPECT_EQ(c->password, "pa:ss word");  // only the first colon separates
    auto lower = parse_basic_authorization("basic " + crypto::base64_encode("u:p"));
    ASSERT_TRUE(lower);
    EXPECT_EQ(lower->username, "u");
    auto empty_password = parse_basic_authorization(basic("u:"));
    ASSERT_TRUE(empty_password);
    EXPECT_EQ(empty_password->password, "");
}

TEST(BasicAuthorization, RejectsMalformedHeaders) {
    EXPECT_FALSE(parse_basic_authorization(basic("no-colon")));
    EXPECT_FALSE(parse_basic_authorization(basic(":password-without-user")));
    EXPECT_FALSE(parse_basic_authorization("Basic !!!not-base64!!!"));
    EXPECT_FALSE(parse_basic_authorization("Basic"));
    EXPECT_FALSE(parse_basic_authorization("Basic "));
    EXPECT_FALSE(parse_basic_authorization("Bearer abc"));
    EXPECT_FALSE(parse_basic_authorization("BasicdTpw"));
    EXPECT_FALSE(parse_basic_authorization(basic("u\xff:p")));
}

TEST(BearerAuthorization, ParsesToken) {
    EXPECT_EQ(parse_bearer_authorization("Bearer abc.def.ghi"), "abc.def.ghi");
    EXPECT_EQ(parse_bearer_authorization("bearer   tok "), "tok");
    EXPECT_FALSE(parse_bearer_authorization("Bearer"));
    EXPECT_FALSE(parse_bearer_authorization("Basic abc"));
    EXPECT_FALSE(parse_bearer_authorization("abc"));
}

TEST(Email, NormalisesAsciiCaseAndSpace) {
    EXPECT_EQ(normalize_email("  Alice@Example.COM "), "alice@example.com");
    EXPECT_EQ(normalize_email("JÖRG@Bücher.de"), "jÖrg@bücher.de");  // non-ASCII kept as written
}

TEST(Email, AcceptsUnicodeAndSqlMetacharacters) {
    EXPECT_TRUE(check_email("jörg@bücher.de"));
    EXPECT_TRUE(check_email("o'brien+tag@example.com"));
    EXPECT_TRUE(check_email("x';DROP_TABLE_users;--@example.com"));
    EXPECT_TRUE(check_email("dev@localhost"));
}

TEST(Email, RejectsInvalidAddresses) {
    for (const char* bad : {"", "plain", "two@@example.com", "a@b@example.com", "@example.com", "a@", "a@nodot",
                            "a b@example.com", "a@.example.com", "a@example..com", "a\n@example.com"}) {
        EXPECT_FALSE(check_email(bad)) << bad;
    }
    EXPECT_FALSE(check_email(std::string(65, 'a') + "@example.com"));
    EXPECT_FALSE(check_email("a@" + std::string(260, 'b') + ".com"));
    EXPECT_FALSE(check_email("\xff@example.com"));
}

TEST(Password, EnforcesLengthInCharacters) {
    EXPECT_FALSE(check_password("short"));
    EXPECT_FALSE(check_password("1234567"));
    EXPECT_TRUE(check_password("12345678"));
    EXPECT_TRUE(check_password("äöüäöüäö"));  // 8 characters, 16 bytes
    EXPECT_FALSE(check_password("äöüäöüä"));  // 7 characters
    EXPECT_FALSE(check_password(std::string(1025, 'x')));
    EXPECT_FALSE(check_password("bad utf8 \xff"));
}

}  // namespace
}  // namespace mp3c::auth
