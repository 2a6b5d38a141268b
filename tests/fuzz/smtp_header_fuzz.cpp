// libFuzzer target for the notification service's mail headers (services/notification/src/mail.hpp);
// bench/fuzz-campaign builds and runs it.
//
// The input is header text from users: a file name or failure reason in a subject, an address. encode_header_text
// must give printable ASCII whose only line breaks are folds (CRLF then space or tab), whatever the input; for UTF-8
// (its precondition: subjects are made of cleaned file names and JSON strings), words of at most 75 characters that
// decode, with the base64 decoder here rather than the encoder's library, to the text. The address helpers must keep
// their promises, and a whole rendered mail made from the input must be CRLF lines of at most 78 characters with no
// header but its own.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "mail.hpp"
#include "mp3c/strings.hpp"

namespace {

using namespace mp3c::notification;

using mp3c::fuzz::check;

std::optional<std::string> base64_decode(std::string_view text) {
    static const std::string_view kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    uint32_t bits = 0;
    int count = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '=') {
            if (i + 2 < text.size() || (i + 1 < text.size() && text[i + 1] != '=')) return std::nullopt;
            break;  // padding: only the last one or two characters
        }
        const size_t digit = kDigits.find(text[i]);
        if (digit == std::string_view::npos) return std::nullopt;
        bits = (bits << 6) | static_cast<uint32_t>(digit);
        if ((count += 6) >= 8) out += static_cast<char>((bits >> (count -= 8)) & 0xff);
    }
    return out;
}

// What the encoder does first: CR, LF and tab become spaces.
std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c == '\r' || c == '\n' || c == '\t') c = ' ';
    return out;
}

void check_encoded(std::string_view input) {
    const std::string out = encode_header_text(input);
    for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] == '\r') {
            check(out.compare(i, 3, "\r\n ") == 0 || out.compare(i, 3, "\r\n\t") == 0, "a line break, not a fold");
            i += 2;
            continue;
        }
        check(out[i] >= 0x20 && out[i] <= 0x7e, "encoded header text that is not printable ASCII");
    }
    const std::string text = one_line(input);
    if (mp3c::is_printable_ascii(text) && text.size() <= 900 && out.rfind("=?UTF-8?B?", 0) != 0) {
        std::string unfolded = out;  // folds are CRLF before a space: removing the CRLFs gives the text back
        for (size_t at; (at = unfolded.find("\r\n")) != std::string::npos;) unfolded.erase(at, 2);
        check(unfolded == text, "printable ASCII header text was changed, not only folded");
        return;
    }
    const bool utf8 = mp3c::is_valid_utf8(input);
    std::string decoded;
    for (std::string_view word : mp3c::split(out, '\n')) {  // "word\r", " word\r", ..., " word"
        if (!word.empty() && (word.front() == ' ' || word.front() == '\t')) word.remove_prefix(1);
        if (!word.empty() && word.back() == '\r') word.remove_suffix(1);
        check(!utf8 || word.size() <= 75, "an encoded word longer than 75 characters");
        check(word.size() >= 12 && word.substr(0, 10) == "=?UTF-8?B?" && word.substr(word.size() - 2) == "?=",
              "not an RFC 2047 B word");
        const auto bytes = base64_decode(word.substr(10, word.size() - 12));
        check(bytes && !bytes->empty(), "an encoded word that is empty or not base64");
        check(!utf8 || mp3c::is_valid_utf8(*bytes), "an encoded word splits a UTF-8 character");
        decoded += *bytes;
    }
    check(!utf8 || decoded == text, "the encoded words do not decode to the text");
}

void check_address(std::string_view input) {
    const std::string address = address_of(input);
    check(input.find(address) != std::string_view::npos, "address_of: not a part of its input");
    check(input.find('<') != std::string_view::npos || address == input, "address_of: changed a bare address");
    if (!is_plausible_address(input)) return;
    check(input.size() <= 254 && input.find('@') == input.rfind('@'), "plausible: over 254 bytes, or not one '@'");
    for (unsigned char c : input) {
        check(c > 0x20 && c != 0x7f && c != '<' && c != '>' && c != '"', "plausible: space, a control, <, > or \"");
    }
    check(address_of("Name <" + std::string(input) + ">") == input, "address_of: lost the address in brackets");
}

void check_rendered(std::string_view input, bool done) {
    const std::string from = "mp3converter <noreply@example.com>";
    const std::string to = is_plausible_address(input) ? std::string(input) : "user@example.com";
    const std::string job = "0123456789abcdef01234567", web = "https://mp3converter.example/#job=" + job;
    const std::string name(input);
    Mail mail = done ? done_mail({.job_id = job, .filename = name, .download_url = web}, from, to)
                     : failed_mail({.job_id = job, .filename = name, .reason = name, .web_url = web}, from, to);
    add_unsubscribe(mail, {.one_click_url = "https://mp3converter.example/unsubscribe?token=7.abc",
                           .page_url = "https://mp3converter.example/#unsubscribe=7.abc"});
    const std::string message = render(mail, "mp3c-0123456789abcdef01234567");
    // The headers render() writes, each between bars.
    constexpr std::string_view kHeaders =
        "|From|To|Subject|Date|Message-ID|MIME-Version|Auto-Submitted|List-Unsubscribe|List-Unsubscribe-Post|"
        "Content-Type|";
    bool in_headers = true;
    for (size_t at = 0; at < message.size();) {
        const size_t end = message.find("\r\n", at);
        check(end != std::string::npos, "a mail that does not end in CRLF");
        const std::string_view line = std::string_view(message).substr(at, end - at);
        check(line.find_first_of("\r\n") == std::string_view::npos, "a bare CR or LF in a mail");
        if (!(line.size() <= 78 || (line.rfind("To: ", 0) == 0 && line.size() <= 4 + 254))) {
            std::fprintf(stderr, "line: %.*s\n", static_cast<int>(line.size()), line.data());
            check(false, "a mail line over 78 characters (To: over 258)");
        }
        if (line.empty()) in_headers = false;
        if (in_headers && line.front() != ' ' && line.front() != '\t') {
            const std::string_view field = line.substr(0, line.find(':'));
            check(field.find('|') == std::string_view::npos &&
                      kHeaders.find("|" + std::string(field) + "|") != std::string_view::npos,
                  "a header the mail does not write: injection");
        }
        at = end + 2;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_encoded(input);
    check_address(input);
    check_rendered(input, size % 2 == 0);
    return 0;
}
