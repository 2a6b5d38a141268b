#include "mail_preferences.hpp"

#include <gtest/gtest.h>

namespace mp3c::auth {
namespace {

TEST(UnsubscribeTokens, NameTheirUserAndNothingElse) {
    UnsubscribeTokens tokens("a-jwt-secret-of-the-right-length-0123456789");
    std::string token = tokens.make(42);
    EXPECT_EQ(tokens.user_of(token), 42u);
    EXPECT_EQ(tokens.user_of(tokens.make(43)), 43u);

    std::string other_user = "43" + token.substr(2);
    EXPECT_FALSE(tokens.user_of(other_user)) << "the signature is bound to the id";
    EXPECT_FALSE(tokens.user_of("042" + token.substr(2))) << "only the canonical id";
    std::string flipped = token;
    flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
    EXPECT_FALSE(tokens.user_of(flipped));
    EXPECT_FALSE(tokens.user_of(token.substr(0, token.size() - 1)));
    EXPECT_FALSE(tokens.user_of(""));
    EXPECT_FALSE(tokens.user_of("42"));
    EXPECT_FALSE(tokens.user_of(".abc"));
    EXPECT_FALSE(tokens.user_of("-1." + token.substr(3)));
    EXPECT_FALSE(tokens.user_of(std::string(200, '4') + "." + token.substr(3)));

    UnsubscribeTokens other_key("another-jwt-secret-of-the-right-length-0123");
    EXPECT_FALSE(other_key.user_of(token)) << "made with another secret";
}

}  // namespace
}  // namespace mp3c::auth
