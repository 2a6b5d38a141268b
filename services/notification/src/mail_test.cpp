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

// Found by bench/fuzz-campaign: every line of a mail is at most 78 characters, the Subject line too.
TEST(Mail, AsciiThatLooksLikeAnEncodedWordIsEncoded) {
    std::string name = "=?UTF-8?B?SGk=?=";
    std::string encoded = encode_header_text(name);
    EXPECT_EQ(encoded.rfind("=?UTF-8?B?", 0), 0u);
    EXPECT_EQ(decode_header(encoded), name) << "shown as the file name, not as \"Hi\"";
}

TEST(Mail, LongHeaderTextIsFoldedIntoLinesOf78) {
    std::string words;
    for (int i = 0; i < 30; ++i) words += "lecture" + std::to_string(i) + " ";
    std::string ascii = encode_header_text("Your MP3 of " + words + "is ready");
    EXPECT_NE(ascii.find("\r\n "), std::string::npos) << "folded before a space";
    std::string unfolded = ascii;
    for (size_t at; (at = unfolded.find("\r\n")) != std::string::npos;) unfolded.erase(at, 2);
    EXPECT_EQ(unfolded, "Your MP3 of " + words + "is ready");
    for (const std::string& subject :
         {"Your MP3 of " + words + "is ready", std::string("\xF0\x9F\x8E\xB5 Caf\xC3\xA9 d\xC3\xA9j\xC3\xA0 vu.mov"),
          "Your MP3 of " + std::string(120, 'x') + ".mp4 is ready",
          "Your MP3 of \"y" + std::string(100, '\xB3') + ".mp4\" is ready"}) {
        Mail m;
        m.from = "x@example.com";
        m.to = "y@example.com";
        m.subject = subject;
        std::string text = render(m, "b");
        for (size_t start = 0, end; (end = text.find("\r\n", start)) != std::string::npos; start = end + 2) {
            EXPECT_LE(end - start, 78u) << text.substr(start, end - start);
        }
    }
}

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

// The text part of a rendered mail, decoded.
std::string text_part(const std::string& rendered) {
    auto start = rendered.find("Content-Type: text/plain");
    start = rendered.find("\r\n\r\n", start) + 4;
    auto end = rendered.find("--", start);
    std::string base64;
    for (char c : rendered.substr(start, end - start)) {
        if (c != '\r' && c != '\n') base64 += c;
    }
    return *crypto::base64_decode(base64);
}

TEST(Mail, EveryJobMailCarriesAOneClickUnsubscribe) {
    Mail m = done_mail({.job_id = "0123456789abcdef01234567",
                        .filename = "talk.mp4",
                        .download_url = "https://mp3converter.com/jobs/0123456789abcdef01234567/mp3?signature=s",
                        .web_url = "https://mp3converter.com/#job=0123456789abcdef01234567",
                        .mp3_size = 1000,
                        .duration_seconds = 60},
                       "noreply@mp3converter.com", "a@example.com");
    add_unsubscribe(m, {.one_click_url = "https://mp3converter.com/unsubscribe?token=7.abc",
                        .page_url = "https://mp3converter.com/#unsubscribe=7.abc"});
    std::string rendered = render(m, "b");
    EXPECT_NE(rendered.find("\r\nList-Unsubscribe:\r\n <https://mp3converter.com/unsubscribe?token=7.abc>\r\n"),
              std::string::npos)
        << rendered;
    EXPECT_NE(rendered.find("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), std::string::npos);
    std::string text = text_part(rendered);
    EXPECT_NE(text.find("You get a mail for every file converted."), std::string::npos) << text;
    auto link = text.find("https://mp3converter.com/#unsubscribe=7.abc");
    ASSERT_NE(link, std::string::npos) << text;
    EXPECT_LT(link, text.find("-- mp3converter")) << "above the signature";
    EXPECT_NE(m.html.find("href=\"https://mp3converter.com/#unsubscribe=7.abc\">Stop these mails</a>"),
              std::string::npos);

    Mail plain;
    plain.from = "x@example.com";
    EXPECT_EQ(render(plain, "b").find("List-Unsubscribe"), std::string::npos) << "account mails have none";
}

TEST(Mail, ASplitJobsMailCountsItsPartsAndSaysWhereTheyAre) {
    auto m = done_mail({.job_id = "0123456789abcdef01234567",
                        .filename = "lecture.mp4",
                        .download_url = "https://h/jobs/0123456789abcdef01234567/mp3?signature=s",
                        .mp3_size = 4'600'000,
                        .duration_seconds = 187,
                        .parts = 12},
                       "mp3converter <noreply@example.com>", "user@example.com");
    EXPECT_NE(m.text.find("is ready (3:07, 4.6 MB, 12 parts)"), std::string::npos) << m.text;
    EXPECT_NE(m.text.find("Its 12 parts are on the web page, one file per chapter"), std::string::npos) << m.text;
    EXPECT_NE(m.html.find("Its 12 parts are on the web page"), std::string::npos);
    auto plain = done_mail({.job_id = "0123456789abcdef01234567", .filename = "a.mp4", .duration_seconds = 3},
                           "x@example.com", "user@example.com");
    EXPECT_EQ(plain.text.find("part"), std::string::npos) << "no parts, no word of them";
    JobSummary summary{.digest_id = "ffeeddccbbaa99887766554433221100",
                       .entries = {{.job_id = "0123456789abcdef01234567",
                                    .filename = "one.mp4",
                                    .done = true,
                                    .download_url = "https://h/x",
                                    .duration_seconds = 60,
                                    .parts = 1}},
                       .web_url = "https://h/"};
    EXPECT_NE(summary_mail(summary, "x@example.com", "a@example.com").text.find("ready (1:00, 1 part)"),
              std::string::npos);
}

TEST(Mail, ASummaryListsEveryJobOfTheBatch) {
    JobSummary summary{.digest_id = "ffeeddccbbaa99887766554433221100",
                       .entries = {{.job_id = "0123456789abcdef01234567",
                                    .filename = "one.mp4",
                                    .done = true,
                                    .download_url = "https://h/jobs/0123456789abcdef01234567/mp3?signature=s1",
                                    .mp3_size = 4'600'000,
                                    .duration_seconds = 187},
                                   {.job_id = "76543210fedcba9876543210",
                                    .filename = "two.mkv",
                                    .done = false,
                                    .reason = "the file has no audio stream"},
                                   {.job_id = "aaaaaaaaaaaaaaaaaaaaaaaa",
                                    .filename = "",
                                    .done = true,
                                    .download_url = "https://h/jobs/aaaaaaaaaaaaaaaaaaaaaaaa/mp3?signature=s3"}},
                       .web_url = "https://h/"};
    Mail m = summary_mail(summary, "mp3converter <noreply@mp3converter.com>", "a@example.com");
    EXPECT_EQ(m.subject, "2 files converted to MP3, 1 failed");
    EXPECT_EQ(m.message_id, "ffeeddccbbaa99887766554433221100.summary@mp3converter.com");
    std::string text = text_part(render(m, "b"));
    auto one = text.find("\"one.mp4\": ready (3:07, 4.6 MB)");
    auto two = text.find("\"two.mkv\": FAILED: the file has no audio stream");
    auto three = text.find("your upload: ready");
    ASSERT_NE(one, std::string::npos) << text;
    ASSERT_NE(two, std::string::npos) << text;
    ASSERT_NE(three, std::string::npos) << text;
    EXPECT_LT(one, two);
    EXPECT_LT(two, three) << "in the order the jobs ended";
    EXPECT_NE(text.find("https://h/jobs/0123456789abcdef01234567/mp3?signature=s1"), std::string::npos);
    EXPECT_NE(text.find("A failed file can be retried"), std::string::npos);
    EXPECT_NE(m.html.find("<strong>failed</strong>: the file has no audio stream"), std::string::npos);

    JobSummary big = summary;
    big.entries.assign(kSummaryListed + 25, summary.entries[0]);
    Mail long_one = summary_mail(big, "x@example.com", "a@example.com");
    EXPECT_EQ(long_one.subject, "75 files converted to MP3");
    std::string listed = text_part(render(long_one, "b"));
    size_t lines = 0;
    for (size_t at = 0; (at = listed.find("* \"one.mp4\": ready", at)) != std::string::npos; ++at) ++lines;
    EXPECT_EQ(lines, kSummaryListed);
    EXPECT_NE(listed.find("... and 25 more: see them all on the web page."), std::string::npos);

    summary.entries.resize(1);
    EXPECT_EQ(summary_mail(summary, "x@example.com", "a@example.com").subject, "1 file converted to MP3");
    summary.entries[0].done = false;
    EXPECT_EQ(summary_mail(summary, "x@example.com", "a@example.com").subject, "1 file could not be converted");
    summary.entries[0].filename = "<script>.mp4";
    EXPECT_EQ(summary_mail(summary, "x@example.com", "a@example.com").html.find("<script>"), std::string::npos);
}

}  // namespace
}  // namespace mp3c::notification
