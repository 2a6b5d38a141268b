// libFuzzer target for the webhook address check (libs/options/include/mp3c/callback_url.hpp); bench/fuzz-campaign
// builds and runs it.
//
// The input is the callback_url form field, every byte of it (NUL included: a form field can hold one). An accepted
// address is stored, signed into the job's ticket, logged and called, so it must be what the contract says: at most
// 2000 characters, http:// or https://, a host, no user name or password, nothing that is space or a control
// character. The same address with a user name added, or with another scheme, must be refused.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "mp3c/callback_url.hpp"
#include "mp3c/strings.hpp"

namespace {

using mp3c::fuzz::check;

// Schemes are case-insensitive (RFC 3986), the "//" before the authority is not.
bool starts_with_scheme(const std::string& url, std::string_view scheme) {
    return url.size() >= scheme.size() && mp3c::iequals(std::string_view(url).substr(0, scheme.size()), scheme);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string url(reinterpret_cast<const char*>(data), size);
    const mp3c::Check checked = mp3c::check_callback_url(url);
    if (!checked) {
        check(!checked.error().empty(), "a refusal without a reason");
        return 0;
    }
    check(url.size() <= 2000, "accepted an address over 2000 characters");
    check(starts_with_scheme(url, "http://") || starts_with_scheme(url, "https://"),
          "accepted an address that does not start with http:// or https://");
    for (unsigned char c : url) {
        check(c > 0x20 && c != 0x7f, "accepted an address with space or a control character (NUL included)");
    }
    // The authority runs from "//" to the first '/', '?' or '#', as libcurl reads it.
    const size_t start = url.find("//") + 2;
    const size_t end = url.find_first_of("/?#", start);
    const std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
    check(!authority.empty(), "accepted an address without a host");
    check(authority.find('@') == std::string::npos, "accepted an address with userinfo ('@' before the host)");

    const std::string with_user = url.substr(0, start) + "fuzz:secret@" + url.substr(start);
    check(!mp3c::check_callback_url(with_user), "accepted the address with a user name and password added");
    const std::string other_scheme = "ftp" + url.substr(url.find(':'));
    check(!mp3c::check_callback_url(other_scheme), "accepted the address with the scheme ftp");
    check(mp3c::check_callback_url(url).ok(), "the same address checked twice gave two answers");
    return 0;
}
