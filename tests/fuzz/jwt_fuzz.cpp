// libFuzzer target for the HS256 token verifier (libs/token); bench/fuzz-campaign builds and runs it.
//
// 1. The input as a token must never verify: it was not signed with the target's secret (the seeds carry other
//    signatures), so a pass would be a forgery.
// 2. Claims from the input (a JSON object, else the input as a username) are signed here: the token must verify to
//    exactly those claims plus iat and exp, and fail once expired, truncated, re-labelled alg "none", or with any byte
//    of its signature or one byte of its header and payload changed.
//
// Nothing here compares the signed token with other bytes: libFuzzer would learn it from the comparison and feed it
// back as an input, which would then verify (a false forgery).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/token.hpp"

namespace {

using mp3c::token::Clock;
using mp3c::token::Signer;
using mp3c::token::VerifyError;

using mp3c::fuzz::check;

// A fixed clock: a run must give the same answer every time.
const Clock::time_point kNow{std::chrono::seconds(1'717'000'000)};
const Clock::time_point kExpires = kNow + std::chrono::hours(1);
// What verify() reads at most (token.cpp): claims made from a 4 KiB input can sign into more ("1e9" is written
// 1000000000.0), which only has to be refused.
constexpr size_t kMaxTokenLength = 8192;

int64_t unix_seconds(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

bool fails_with(const Signer& signer, const std::string& token, VerifyError expected) {
    auto result = signer.verify(token, kNow);
    return !result.ok() && result.error() == expected;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const Signer signer("fuzz-only secret: 0123456789abcdef0123456789abcdef");
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    const auto forged = signer.verify(input, kNow);
    check(!forged.ok(), "an input verified without the secret: a forged token");
    check(!mp3c::token::to_string(forged.error()).empty(), "a refusal without words");

    nlohmann::json claims = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
    if (claims.is_discarded() || !claims.is_object()) {
        std::string username;
        for (char c : input.substr(0, 200)) username += (c >= 0x20 && c <= 0x7e) ? c : '?';
        claims = {{"username", username}, {"sub", std::to_string(size)}};
    }
    std::string token;
    try {
        token = signer.issue(claims, kExpires, kNow);
    } catch (const std::runtime_error&) {
        return 0;  // libjwt's JSON parser refuses some of what nlohmann takes (integers past 2^63, "\u0000")
    }

    const auto verified = signer.verify(token, kNow);
    if (token.size() > kMaxTokenLength) {
        check(!verified.ok() && verified.error() == VerifyError::malformed, "an over-long token was read");
        return 0;
    }
    check(verified.ok(), "a token just issued does not verify");
    nlohmann::json expected = claims;
    expected["iat"] = unix_seconds(kNow);
    expected["exp"] = unix_seconds(kExpires);
    check(verified.value() == expected, "the verified claims differ from the signed ones");
    const auto late = signer.verify(token, kExpires);
    check(!late.ok() && late.error() == VerifyError::expired, "a token verified at its expiry");

    const size_t signature = token.rfind('.') + 1;
    check(fails_with(signer, token.substr(0, signature), VerifyError::bad_signature), "a token without a signature");
    const std::string payload = token.substr(token.find('.') + 1);
    const std::string none =
        mp3c::crypto::base64_encode(R"({"alg":"none","typ":"JWT"})", mp3c::crypto::Base64::url_no_padding);
    check(fails_with(signer, none + "." + payload, VerifyError::alg_none), "a token re-labelled alg none");
    for (size_t i = signature; i < token.size(); ++i) {
        std::string tampered = token;
        tampered[i] = tampered[i] == 'A' ? 'B' : 'A';  // another base64url digit, so the signature still decodes
        check(!signer.verify(tampered, kNow).ok(), "a token verified after a change to its signature");
    }
    std::string tampered = token;
    const size_t at = size % (signature - 1);  // a byte of the header or the payload, or the dot between them
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    check(!signer.verify(tampered, kNow).ok(), "a token verified after a change to its header or payload");
    return 0;
}
