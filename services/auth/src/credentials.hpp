#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mp3c/result.hpp"

namespace mp3c::auth {

struct BasicCredentials {
    std::string username;
    std::string password;
};

// "Basic base64(user:password)"; nullopt for anything else (no colon, invalid base64, empty user, other scheme).
std::optional<BasicCredentials> parse_basic_authorization(std::string_view header);
// "Bearer <token>"; nullopt for another scheme or an empty token.
std::optional<std::string> parse_bearer_authorization(std::string_view header);

// E-mail addresses are compared case-insensitively in their ASCII letters and without surrounding space.
std::string normalize_email(std::string_view email);
// Ok when acceptable, else what is wrong (for the 400 message).
Check check_email(std::string_view email);

constexpr size_t kMinPasswordLength = 8;    // characters
constexpr size_t kMaxPasswordBytes = 1024;  // argon2 takes any length; this bounds the work per request
Check check_password(std::string_view password);

}  // namespace mp3c::auth
