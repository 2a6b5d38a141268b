#include "request_parsing.hpp"

#include <charconv>

#include "mp3c/strings.hpp"

namespace mp3c::gateway {

namespace {

// Truncates to at most `max` bytes without cutting a UTF-8 sequence.
std::string utf8_prefix(std::string_view s, size_t max) {
    if (s.size() <= max) return std::string(s);
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;
    return std::string(s.substr(0, cut));
}

}  // namespace

std::string clean_filename(std::string_view name) {
    auto slash = name.find_last_of("/\\");
    if (slash != std::string_view::npos) name = name.substr(slash + 1);
    std::string out;
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) continue;
        out.push_back(c);
    }
    if (!is_valid_utf8(out)) {
        std::string ascii;
        for (char c : out)
            if (static_cast<unsigned char>(c) < 0x80) ascii.push_back(c);
        out = ascii;
    }
    out = utf8_prefix(trim(out), 200);
    if (out.empty() || out == "." || out == "..") return "upload";
    return out;
}

std::string mp3_filename(std::string_view original) {
    std::string base = clean_filename(original);
    auto dot = base.rfind('.');
    if (dot != std::string::npos && dot > 0) base = base.substr(0, dot);
    return base + ".mp3";
}

namespace {

// U+00C0 to U+017F (Latin-1 letters and Latin Extended-A) without their accents: "é" -> "e", "ß" -> "ss".
constexpr const char* kLatinAscii[0x180 - 0xC0] = {
    "A", "A", "A",  "A", "A", "A", "AE", "C",  "E", "E", "E",  "E",  "I", "I", "I",  "I",  "D", "N", "O",  "O",
    "O", "O", "O",  "x", "O", "U", "U",  "U",  "U", "Y", "Th", "ss", "a", "a", "a",  "a",  "a", "a", "ae", "c",
    "e", "e", "e",  "e", "i", "i", "i",  "i",  "d", "n", "o",  "o",  "o", "o", "o",  "",   "o", "u", "u",  "u",
    "u", "y", "th", "y", "A", "a", "A",  "a",  "A", "a", "C",  "c",  "C", "c", "C",  "c",  "C", "c", "D",  "d",
    "D", "d", "E",  "e", "E", "e", "E",  "e",  "E", "e", "E",  "e",  "G", "g", "G",  "g",  "G", "g", "G",  "g",
    "H", "h", "H",  "h", "I", "i", "I",  "i",  "I", "i", "I",  "i",  "I", "i", "IJ", "ij", "J", "j", "K",  "k",
    "k", "L", "l",  "L", "l", "L", "l",  "L",  "l", "L", "l",  "N",  "n", "N", "n",  "N",  "n", "n", "N",  "n",
    "O", "o", "O",  "o", "O", "o", "OE", "oe", "R", "r", "R",  "r",  "R", "r", "S",  "s",  "S", "s", "S",  "s",
    "S", "s", "T",  "t", "T", "t", "T",  "t",  "U", "u", "U",  "u",  "U", "u", "U",  "u",  "U", "u", "U",  "u",
    "W", "w", "Y",  "y", "Y", "Z", "z",  "Z",  "z", "Z", "z",  "s"};

}  // namespace

std::string ascii_filename(std::string_view utf8) {
    std::string out;
    for (size_t i = 0; i < utf8.size();) {
        auto u = static_cast<unsigned char>(utf8[i]);
        uint32_t cp = u;
        size_t length = u < 0x80 ? 1 : u >= 0xF8 ? 0 : u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : u >= 0xC0 ? 2 : 0;
        bool valid = length > 0 && i + length <= utf8.size();
        for (size_t k = 1; valid && k < length; ++k) valid = (static_cast<unsigned char>(utf8[i + k]) & 0xC0) == 0x80;
        if (!valid) {  // not UTF-8: the byte is left out
            ++i;
            continue;
        }
        if (length > 1) {
            cp = u & (0xFF >> (length + 1));
            for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3F);
        }
        i += length;
        if (cp < 0x80) {
            char c = static_cast<char>(cp);
            out.push_back(c == '"' || c == '\\' || c == ';' || c == '%' || cp < 0x20 || cp == 0x7F ? '_' : c);
        } else if (cp >= 0xC0 && cp < 0x180) {
            out += kLatinAscii[cp - 0xC0];
        }  // anything else (other scripts, emoji) is left out: filename* carries the real name
    }
    // Spaces left doubled or before the extension by what was left out.
    std::string tidy;
    for (char c : out) {
        if (c == ' ' && (tidy.empty() || tidy.back() == ' ')) continue;
        tidy.push_back(c);
    }
    auto dot = tidy.rfind('.');
    std::string stem = dot == std::string::npos ? tidy : tidy.substr(0, dot);
    std::string extension = dot == std::string::npos ? "" : tidy.substr(dot);
    while (!stem.empty() && stem.back() == ' ') stem.pop_back();
    if (stem.empty()) stem = "audio";
    return stem + extension;
}

std::string mp3_content_disposition(std::string_view original) {
    std::string base = mp3_filename(original);
    std::string ascii = ascii_filename(base);
    static const char* kHex = "0123456789ABCDEF";
    std::string encoded;
    for (char c : base) {
        auto u = static_cast<unsigned char>(c);
        bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                     std::string_view("!#$&+-.^_`|~").find(c) != std::string_view::npos;
        if (plain) {
            encoded.push_back(c);
        } else {
            encoded += '%';
            encoded += kHex[u >> 4];
            encoded += kHex[u & 15];
        }
    }
    return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

RangeRequest parse_range(std::optional<std::string_view> header, uint64_t size) {
    if (!header) return {};
    auto value = trim(*header);
    if (value.substr(0, 6) != "bytes=") return {};
    value = value.substr(6);
    if (value.find(',') != std::string_view::npos) return {};  // several ranges: send the whole file instead
    auto dash = value.find('-');
    if (dash == std::string_view::npos) return {};
    auto first = trim(value.substr(0, dash)), last = trim(value.substr(dash + 1));
    auto parse = [](std::string_view t) -> std::optional<uint64_t> {
        uint64_t v = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec != std::errc() || end != t.data() + t.size() || t.empty()) return std::nullopt;
        return v;
    };
    if (first.empty()) {  // suffix: the last N bytes
        auto n = parse(last);
        if (!n) return {};
        if (*n == 0 || size == 0) return {std::nullopt, true};
        uint64_t length = std::min(*n, size);
        return {ByteRange{size - length, length}, false};
    }
    auto start = parse(first);
    if (!start) return {};
    if (*start >= size) return {std::nullopt, true};
    uint64_t end = size - 1;
    if (!last.empty()) {
        auto e = parse(last);
        if (!e || *e < *start) return {};
        end = std::min(*e, size - 1);
    }
    return {ByteRange{*start, end - *start + 1}, false};
}

}  // namespace mp3c::gateway
