// libFuzzer target for the auth service's Authorization header parsers (services/auth/src/credentials.hpp);
// bench/fuzz-campaign builds and runs it.
//
// The input is used three ways: as a whole header; as the decoded "user:password" of a Basic header built here, which
// must be accepted exactly when the contract says and give the same pair back; and as the token after "Bearer ".

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "credentials.hpp"
#include "fuzz_check.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/strings.hpp"

namespace {

using mp3c::auth::parse_basic_authorization;
using mp3c::auth::parse_bearer_authorization;

using mp3c::fuzz::check;

// What mp3c::trim removes around a header value.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    // 1. The input as the whole header.
    const auto basic = parse_basic_authorization(input);
    if (basic) {
        check(!basic->username.empty(), "Basic: an empty username was accepted");
        check(basic->username.find(':') == std::string::npos, "Basic: the username contains ':'");
        check(mp3c::is_valid_utf8(basic->username) && mp3c::is_valid_utf8(basic->password),
              "Basic: credentials that are not UTF-8 were accepted");
        // What a client sends for the same pair must give the same pair back.
        const auto again =
            parse_basic_authorization("Basic " + mp3c::crypto::base64_encode(basic->username + ":" + basic->password));
        check(again && again->username == basic->username && again->password == basic->password,
              "Basic: re-encoding the credentials changed them");
    }
    const auto bearer = parse_bearer_authorization(input);
    if (bearer) {
        check(!bearer->empty(), "Bearer: an empty token was accepted");
        check(!is_space(bearer->front()) && !is_space(bearer->back()), "Bearer: the token keeps surrounding space");
        check(input.find(*bearer) != std::string_view::npos, "Bearer: the token is not part of the header");
        const auto again = parse_bearer_authorization("Bearer " + *bearer);
        check(again && *again == *bearer, "Bearer: the token changed when sent again");
    }
    check(!(basic && bearer), "a header parsed as both Basic and Bearer");

    // 2. The input as decoded credentials: acceptable when a colon follows a non-empty username and both halves are
    // UTF-8; the scheme's case and the space around the value do not matter.
    const size_t colon = input.find(':');
    const bool acceptable = colon != std::string_view::npos && colon > 0 &&
                            mp3c::is_valid_utf8(input.substr(0, colon)) && mp3c::is_valid_utf8(input.substr(colon + 1));
    const std::string encoded = mp3c::crypto::base64_encode(input);
    const auto built = parse_basic_authorization("Basic " + encoded);
    check(built.has_value() == acceptable, "Basic: accepted or refused against the contract");
    if (built) {
        check(built->username == input.substr(0, colon) && built->password == input.substr(colon + 1),
              "Basic: the credentials did not survive base64");
    }
    const auto spaced = parse_basic_authorization(" \tbASIC  " + encoded + " \r\n");
    check(spaced.has_value() == built.has_value() &&
              (!spaced || (spaced->username == built->username && spaced->password == built->password)),
          "Basic: the scheme's case or surrounding space changed the result");

    // 3. The input as a token: accepted, trimmed, whenever anything but space is left.
    const auto token = parse_bearer_authorization("Bearer " + std::string(input));
    const std::string_view trimmed = mp3c::trim(input);
    check(token.has_value() == !trimmed.empty(), "Bearer: accepted or refused against the contract");
    check(!token || *token == trimmed, "Bearer: the token is not the trimmed value");
    return 0;
}
