// libFuzzer target for the gateway's Range and download-name helpers (services/gateway/src/request_parsing.hpp);
// bench/fuzz-campaign builds and runs it.
//
// Input: 8 bytes of resource size (little-endian), then a header value. The value is parsed as a Range header against
// that size and against the size's low 10 bits (random sizes are huge; the edge cases live near 0), and taken as an
// upload's file name for the download's Content-Disposition.

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "mp3c/strings.hpp"
#include "request_parsing.hpp"

namespace {

using namespace mp3c::gateway;

using mp3c::fuzz::check;

bool has_ascii_control(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

void check_range(std::string_view header, uint64_t size) {
    const RangeRequest r = parse_range(header, size);
    check(!(r.range && r.unsatisfiable), "a range that is also unsatisfiable");
    if (!r.range) return;
    check(r.range->length > 0, "an empty range");
    check(r.range->offset < size, "a range starting at or past the end");
    check(r.range->length <= size - r.range->offset, "a range ending past the end");
    // The range written the canonical way reads back as itself.
    const std::string canonical =
        "bytes=" + std::to_string(r.range->offset) + "-" + std::to_string(r.range->offset + r.range->length - 1);
    const RangeRequest again = parse_range(canonical, size);
    check(again.range && again.range->offset == r.range->offset && again.range->length == r.range->length,
          "the canonical form of a range parses differently");
}

void check_names(std::string_view name) {
    const std::string clean = clean_filename(name);
    check(!clean.empty() && clean.size() <= 200, "clean_filename: empty or over 200 bytes");
    check(mp3c::is_valid_utf8(clean) && !has_ascii_control(clean), "clean_filename: not UTF-8, or a control");
    check(clean.find_first_of("/\\") == std::string::npos && clean != "." && clean != "..",
          "clean_filename: a path, not a base name");
    const std::string mp3 = mp3_filename(name);
    check(mp3.size() > 4 && mp3.compare(mp3.size() - 4, 4, ".mp3") == 0, "mp3_filename: no .mp3 at the end");
    check(mp3c::is_valid_utf8(mp3) && !has_ascii_control(mp3) && mp3.find_first_of("/\\") == std::string::npos,
          "mp3_filename: not a clean UTF-8 base name");

    const std::string ascii = ascii_filename(name);
    check(!ascii.empty() && mp3c::is_printable_ascii(ascii), "ascii_filename: empty, or not printable ASCII");
    check(ascii.find_first_of("\"\\;%") == std::string::npos, "ascii_filename: a quote, backslash, ';' or '%'");

    // attachment; filename="<ascii>"; filename*=UTF-8''<percent-encoded UTF-8>
    const std::string header = mp3_content_disposition(name);
    check(mp3c::is_printable_ascii(header), "Content-Disposition: not printable ASCII (CR, LF, NUL...)");
    const std::string_view open = "attachment; filename=\"", middle = "\"; filename*=UTF-8''";
    check(header.compare(0, open.size(), open) == 0, "Content-Disposition: does not start as an attachment");
    const size_t close = header.find(middle, open.size());
    check(close != std::string::npos, "Content-Disposition: no filename* after the quoted name");
    const std::string_view quoted = std::string_view(header).substr(open.size(), close - open.size());
    check(quoted == ascii_filename(mp3), "Content-Disposition: the quoted name is not ascii_filename of the MP3's");
    check(quoted.find_first_of("\"\\") == std::string_view::npos, "Content-Disposition: the quoted name breaks out");
    std::string decoded;
    const std::string_view encoded = std::string_view(header).substr(close + middle.size());
    for (size_t i = 0; i < encoded.size(); ++i) {
        const char c = encoded[i];
        if (c != '%') {
            check(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$&+-.^_`|~", c) != nullptr,
                  "Content-Disposition: a character RFC 5987 does not allow unencoded");
            decoded += c;
            continue;
        }
        check(i + 2 < encoded.size() && std::isxdigit(static_cast<unsigned char>(encoded[i + 1])) &&
                  std::isxdigit(static_cast<unsigned char>(encoded[i + 2])),
              "Content-Disposition: a '%' without two hex digits");
        decoded += static_cast<char>(std::stoi(std::string(encoded.substr(i + 1, 2)), nullptr, 16));
        i += 2;
    }
    check(decoded == mp3, "Content-Disposition: filename* does not decode to the MP3's name");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 8) return 0;
    uint64_t resource = 0;
    for (int i = 7; i >= 0; --i) resource = (resource << 8) | data[i];
    const std::string_view value(reinterpret_cast<const char*>(data) + 8, size - 8);

    const RangeRequest absent = parse_range(std::nullopt, resource);
    check(!absent.range && !absent.unsatisfiable, "no Range header, yet a range");
    check_range(value, resource);
    check_range(value, resource & 0x3ff);
    check_names(value);
    return 0;
}
