#include "mail.hpp"

#include <gtest/gtest.h>

#include "mp3c/crypto.hpp"

namespace mp3c::notification {
namespace {

// Decodes RFC 2047 "B" words (what a mail client shows), for checking round trips.
std::string decode_header(std::string_view value) {
    std::string out;
    size_t at = 0;
    while ((at = value.find("=?UTF-8?B?", at)) != std::string_view::npos) {
        size_t end = value.find("?=", at + 10);
        out += *crypto::base64_decode(value.substr(at + 10, end - at - 10));
        at = end + 2;
    }
    return out;
}

TEST(Mail, AsciiHeaderTextStaysAsIs) { EXPECT_EQ(encode_header_text("Your MP3 is ready"), "Your MP3 is ready"); }

TEST(Mail, NonAsciiHeaderTextBecomesEncodedWordsSplitOnCharacters) {
    std::string subject =
        "Your MP3 of \"Zoë – 夜のドライブ – ünïcödé and a long tail to force several words.mp4\" is ready";
    std::string encoded = encode_header_text(subject);
    EXPECT_EQ(encoded.rfind("=?UTF-8?B?", 0), 0u);
    EXPECT_EQ(decode_header(encoded), subject);
    size_t start = 0;
    while (start < encoded.size()) {
        size_t end = encoded.find("\r\n", start);
        std::string line = encoded.substr(start, end == std::string::npos ? std::string::npos : end - start);
        EXPECT_LE(line.size(), 76u) << line;  // a folded line: one space and a word of at most 75
        // every word decodes to valid UTF-8 on its own: no character split across words
        std::string word = decode_header(line);
        EXPECT_FALSE(word.empty());
        EXPECT_NE((static_cast<unsigned char>(word[0]) & 0xC0), 0x80u) << "starts mid-character";
        if (end == std::string::npos) break;
        start = end + 2;
    }
}

TEST(Mail, LineBreaksInHeaderTextCannotInjectHeaders) {
    EXPECT_EQ(encode_header_text("a\r\nBcc: victim@example.com"), "a  Bcc: victim@example.com");
    Mail m;
    m.from = "x@example.com";
    m.to = "y@example.com\r\nBcc: z@example.com";
    m.subject = "s";
    std::string text = render(m, "b");
    EXPECT_EQ(text.find("\r\nBcc:"), std::string::npos);
}

TEST(Mail, AddressesArePlausibleOrRefused) {
    EXPECT_TRUE(is_plausible_address("a@example.com"));
    EXPECT_TRUE(is_plausible_address("first.last+tag@sub.example.co.uk"));
    for (const char* bad : {"", "user", "@example.com", "a@", "a@b", "a b@example.com", "a@example.com\r\nX: y",
                            "<a@example.com>", "a@@example.com", "a@.example.com", "a@example.com."}) {
        EXPECT_FALSE(is_plausible_address(bad)) << bad;
    }
    EXPECT_EQ(address_of("mp3converter <noreply@example.com>"), "noreply@example.com");
    EXPECT_EQ(address_of("noreply@example.com"), "noreply@example.com");
}

TEST(Mail, HumanFigures) {
    EXPECT_EQ(human_size(95), "95 bytes");
    EXPECT_EQ(human_size(812'300), "812 kB");
    EXPECT_EQ(human_size(4'600'000), "4.6 MB");
    EXPECT_EQ(human_duration(2.4), "0:02");
    EXPECT_EQ(human_duration(187), "3:07");
    EXPECT_EQ(human_duration(3909), "1:05:09");
}

TEST(Mail, RenderedMessageIsMimeWithBothParts) {
    auto m = done_mail({.job_id = "0123456789abcdef01234567",
                        .filename = "Zoë <live>.mp4",
                        .download_url = "https://mp3converter.com/jobs/0123456789abcdef01234567/mp3",
                        .mp3_size = 4'600'000,
                        .duration_seconds = 187},
                       "mp3converter <noreply@example.com>", "user@example.com");
    std::string text = render(m, "BOUNDARY42");
    EXPECT_NE(text.find("From: mp3converter <noreply@example.com>\r\n"), std::string::npos);
    EXPECT_NE(text.find("To: user@example.com\r\n"), std::string::npos);
    EXPECT_NE(text.find("Message-ID: <0123456789abcdef01234567.done@example.com>\r\n"), std::string::npos);
    EXPECT_NE(text.find("MIME-Version: 1.0\r\n"), std::string::npos);
    EXPECT_NE(text.find("Content-Type: multipart/alternative; boundary=\"BOUNDARY42\""), std::string::npos);
    EXPECT_NE(text.find("Content-Type: text/plain; charset=utf-8"), std::string::npos);
    EXPECT_NE(text.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
    EXPECT_NE(text.find("--BOUNDARY42--\r\n"), std::string::npos);
    for (size_t at = 0, end; (end = text.find("\r\n", at)) != std::string::npos; at = end + 2) {
        EXPECT_LE(end - at, 78u) << text.substr(at, end - at);
    }
    EXPECT_EQ(text.find('\n', 0), text.find("\r\n") + 1) << "CRLF line ends";
    EXPECT_NE(m.text.find("4.6 MB"), std::string::npos);
    EXPECT_NE(m.text.find("3:07"), std::string::npos);
    EXPECT_NE(m.text.find(m.message_id.substr(0, 0) + "https://mp3converter.com/jobs/"), std::string::npos);
    EXPECT_NE(m.html.find("Zoë &lt;live&gt;.mp4"), std::string::npos) << "escaped in HTML";
    EXPECT_EQ(m.html.find("<live>"), std::string::npos);
}

TEST(Mail, UnknownDurationAndSizeAreLeftOut) {
    auto m = done_mail({.job_id = "0123456789abcdef01234567", .filename = "a.mp4", .download_url = "https://x/y"},
                       "noreply@example.com", "user@example.com");
    EXPECT_NE(m.text.find("\"a.mp4\" is ready.\r\n"), std::string::npos) << m.text;
    EXPECT_EQ(m.text.find("0:00"), std::string::npos);
}

TEST(Mail, FailedMailCarriesTheReason) {
    auto m =
        failed_mail({.job_id = "0123456789abcdef01234567", .filename = "", .reason = "the file has no audio track"},
                    "noreply@example.com", "user@example.com");
    EXPECT_EQ(m.subject, "Converting your upload failed");
    EXPECT_NE(m.text.find("the file has no audio track"), std::string::npos);
    EXPECT_EQ(m.message_id, "0123456789abcdef01234567.failed@example.com");
}

}  // namespace
}  // namespace mp3c::notification
