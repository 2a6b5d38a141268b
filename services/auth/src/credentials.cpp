#include "credentials.hpp"

#include "mp3c/crypto.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::auth {

namespace {

std::optional<std::string_view> after_scheme(std::string_view header, std::string_view scheme) {
    header = trim(header);
    if (header.size() <= scheme.size() || !iequals(header.substr(0, scheme.size()), scheme) ||
        header[scheme.size()] != ' ') {
        return std::nullopt;
    }
    auto rest = trim(header.substr(scheme.size()));
    if (rest.empty()) return std::nullopt;
    return rest;
}

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (char c : s)
        if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
    return n;
}

}  // namespace

std::optional<BasicCredentials> parse_basic_authorization(std::string_view header) {
    auto encoded = after_scheme(header, "Basic");
    if (!encoded) return std::nullopt;
    auto decoded = crypto::base64_decode(*encoded);
    if (!decoded) return std::nullopt;
    auto colon = decoded->find(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    BasicCredentials c{decoded->substr(0, colon), decoded->substr(colon + 1)};
    if (!is_valid_utf8(c.username) || !is_valid_utf8(c.password)) return std::nullopt;
    return c;
}

std::optional<std::string> parse_bearer_authorization(std::string_view header) {
    auto token = after_scheme(header, "Bearer");
    if (!token) return std::nullopt;
    return std::string(*token);
}

std::string normalize_email(std::string_view email) { return to_lower_ascii(trim(email)); }

Check check_email(std::string_view email) {
    if (email.empty()) return std::string("e-mail address is empty");
    if (email.size() > 254) return std::string("e-mail address is longer than 254 bytes");
    if (!is_valid_utf8(email)) return std::string("e-mail address is not valid UTF-8");
    for (unsigned char c : email) {
        if (c <= 0x20 || c == 0x7f) return std::string("e-mail address contains spaces or control characters");
    }
    auto at = email.rfind('@');
    if (at == std::string_view::npos || email.find('@') != at)
        return std::string("e-mail address needs exactly one '@'");
    auto local = email.substr(0, at), domain = email.substr(at + 1);
    if (local.empty() || local.size() > 64) return std::string("the part before '@' must be 1 to 64 bytes");
    if (domain.empty() || domain.front() == '.' || domain.back() == '.' ||
        domain.find("..") != std::string_view::npos) {
        return std::string("the domain after '@' is not valid");
    }
    if (domain.find('.') == std::string_view::npos && domain != "localhost")
        return std::string("the domain after '@' needs a dot");
    return Ok{};
}

Check check_password(std::string_view password) {
    if (!is_valid_utf8(password)) return std::string("password is not valid UTF-8");
    if (utf8_length(password) < kMinPasswordLength) {
        return std::string("password must be at least " + std::to_string(kMinPasswordLength) + " characters");
    }
    if (password.size() > kMaxPasswordBytes) {
        return std::string("password must be at most " + std::to_string(kMaxPasswordBytes) + " bytes");
    }
    return Ok{};
}

}  // namespace mp3c::auth
