// The multipart parser at its limits and on malformed input; the boundary of a Content-Type.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mp3c/multipart.hpp"
#include "multipart_test_support.hpp"

namespace mp3c::multipart {
namespace {

using namespace testing_support;

TEST(MultipartParser, MissingClosingBoundaryIsTruncated) {
    const std::string full = sample_body();
    for (const std::string& body :
         {full.substr(0, full.size() - 4), full.substr(0, full.size() - 5), full.substr(0, full.size() - 3),
          field("a", "x"), field("a", "x") + "--", delim() + "\r\nContent-Disp", ""s, "preamble only"s}) {
        SCOPED_TRACE(testing::PrintToString(body));
        const Outcome out = parse(body);
        EXPECT_TRUE(out.fed);
        EXPECT_FALSE(out.finished);
        EXPECT_FALSE(out.done);
        EXPECT_EQ(out.error, Error::truncated);
    }
    EXPECT_EQ(describe(Error::truncated), "multipart body ended before the closing boundary");
}

TEST(MultipartParser, TruncatedPartIsNeverEnded) {
    const Outcome out = parse(field("a", "data").substr(0, delim().size() + 60));
    ASSERT_EQ(out.parts.size(), 1u);
    EXPECT_FALSE(out.parts[0].ended);
    EXPECT_EQ(out.error, Error::truncated);
}

TEST(MultipartParser, HeaderLineOverLimit) {
    const std::string long_name(8 * 1024, 'n');  // with the rest of the line, over the 8 KiB default
    const Outcome out = parse(part("Content-Disposition: form-data; name=\"" + long_name + "\"\r\n", "x") + closing());
    EXPECT_EQ(out.error, Error::header_line_too_long);
    EXPECT_TRUE(out.parts.empty());

    // The limit is the line without its CRLF: exactly at the limit passes, one more byte fails.
    const std::string line = "Content-Disposition: form-data; name=\"x\"";
    const Limits exact{.max_header_line = line.size()};
    EXPECT_TRUE(parse(part(line + "\r\n", "x") + closing(), exact).finished);
    const Limits tight{.max_header_line = line.size() - 1};
    EXPECT_EQ(parse(part(line + "\r\n", "x") + closing(), tight).error, Error::header_line_too_long);
    EXPECT_EQ(parse_bytewise(part(line + "\r\n", "x") + closing(), tight).error, Error::header_line_too_long);
}

TEST(MultipartParser, UnlimitedLimits) {
    constexpr size_t kMax = SIZE_MAX;
    const Limits none{.max_header_line = kMax, .max_headers_bytes = kMax, .max_parts = kMax, .max_preamble = kMax};
    EXPECT_TRUE(parse("preamble\r\n" + sample_body(), none).finished);
    EXPECT_TRUE(parse_bytewise(sample_body(), none).finished);
}

TEST(MultipartParser, HeadersTooLarge) {
    std::string headers = "Content-Disposition: form-data; name=\"x\"\r\n";
    for (int i = 0; i < 400; ++i) headers += "X-Filler-" + std::to_string(i) + ": " + std::string(40, 'f') + "\r\n";
    const Outcome out = parse(part(headers, "x") + closing());
    EXPECT_EQ(out.error, Error::headers_too_large);
    EXPECT_FALSE(out.fed);
    EXPECT_TRUE(out.parts.empty());
}

TEST(MultipartParser, TooManyParts) {
    std::string body;
    for (int i = 0; i < 3; ++i) body += field("f" + std::to_string(i), "v");
    const Limits two{.max_parts = 2};
    const Outcome out = parse(body + closing(), two);
    EXPECT_EQ(out.error, Error::too_many_parts);
    EXPECT_EQ(out.parts.size(), 2u);

    EXPECT_TRUE(parse(field("a", "1") + field("b", "2") + closing(), two).finished);

    std::string many;
    for (int i = 0; i < 33; ++i) many += field("f" + std::to_string(i), "v");
    EXPECT_EQ(parse(many + closing()).error, Error::too_many_parts);  // default limit 32
}

TEST(MultipartParser, NoContentDisposition) {
    EXPECT_EQ(parse(part("Content-Type: text/plain\r\n", "x") + closing()).error, Error::missing_content_disposition);
    EXPECT_EQ(parse(part("", "x") + closing()).error, Error::missing_content_disposition);
}

TEST(MultipartParser, JunkAfterBoundary) {
    const std::string ok = field("a", "x") + closing();
    for (const std::string& body : {
             delim() + "X\r\n",                                            // boundary is a prefix of a longer word
             delim() + " x\r\n",                                           // padding then junk
             delim() + "-x",                                               // one dash is not a close delimiter
             delim() + "\rX",                                              // CR without LF
             delim() + "\n",                                               // bare LF: CRLF is required
             field("a", "x") + delim() + "Z\r\n",                          // in the middle of the body
             field("a", "data\r\n--" + kBoundary + "0 more") + closing(),  // the boundary inside part data
         }) {
        SCOPED_TRACE(testing::PrintToString(body));
        const Outcome out = parse(body);
        EXPECT_FALSE(out.fed);
        EXPECT_EQ(out.error, Error::junk_after_boundary);
        EXPECT_EQ(parse_bytewise(body).error, Error::junk_after_boundary);
    }
}

TEST(MultipartParser, TransportPaddingAfterBoundary) {
    const std::string body = delim() + " \t \r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n" + delim() +
                             "\t\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\ny\r\n" + closing();
    const Outcome out = parse(body);
    EXPECT_TRUE(out.finished);
    ASSERT_EQ(out.parts.size(), 2u);
    EXPECT_EQ(out.parts[1].data, "y");
}

TEST(MultipartParser, PreambleAndEpilogue) {
    const std::string body = "This is the preamble.\r\nIt is ignored; --" + kBoundary + " too.\r\n" + field("a", "x") +
                             delim() + "--\r\nThis is the epilogue.\r\n--" + kBoundary + "\r\n";
    const Outcome out = parse(body);
    EXPECT_TRUE(out.finished);
    ASSERT_EQ(out.parts.size(), 1u);
    EXPECT_EQ(out.parts[0].data, "x");
    expect_split_independent(body);

    // An empty form: the close delimiter straight away.
    const Outcome empty = parse(closing());
    EXPECT_TRUE(empty.finished);
    EXPECT_TRUE(empty.parts.empty());

    // Anything after "--boundary--" is epilogue, even without CRLF.
    EXPECT_TRUE(parse(field("a", "x") + delim() + "--garbage").finished);
}

TEST(MultipartParser, LeadingCrlfIsPreamble) {
    const Outcome out = parse("\r\n" + field("a", "x") + closing());
    EXPECT_TRUE(out.finished);
    ASSERT_EQ(out.parts.size(), 1u);
}

TEST(MultipartParser, PreambleLimit) {
    const Limits limits{.max_preamble = 10};
    EXPECT_TRUE(parse(std::string(10, 'p') + "\r\n" + field("a", "x") + closing(), limits).finished);
    EXPECT_EQ(parse(std::string(11, 'p') + "\r\n" + field("a", "x") + closing(), limits).error,
              Error::preamble_too_large);
    EXPECT_EQ(parse_bytewise(std::string(11, 'p') + "\r\n" + field("a", "x") + closing(), limits).error,
              Error::preamble_too_large);
    // Default 16 KiB, detected without the boundary ever arriving.
    Parser parser(kBoundary, {});
    const std::string chunk(4096, 'p');
    bool ok = true;
    for (int i = 0; i < 5 && ok; ++i) ok = parser.feed(chunk);
    EXPECT_FALSE(ok);
    EXPECT_EQ(parser.error(), Error::preamble_too_large);
}

TEST(MultipartParser, HeaderSyntax) {
    const auto error_for = [](std::string_view headers) { return parse(part(headers, "x") + closing()).error; };
    const std::string cd = "Content-Disposition: form-data; name=\"a\"\r\n";
    EXPECT_EQ(error_for(cd + "X-Folded: one\r\n two\r\n"), Error::malformed_header);  // obsolete folding
    EXPECT_EQ(error_for(cd + "\tX-Folded: two\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for(cd + "X-Bare: lf\n"), Error::malformed_header);
    EXPECT_EQ(error_for(cd + "X-Cr: a\rb\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for(cd + "X-Nul: a\0b\r\n"s), Error::malformed_header);
    EXPECT_EQ(error_for(cd + "X-\0Nul: v\r\n"s), Error::malformed_header);
    EXPECT_EQ(error_for(cd + "No colon\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for(cd + ": empty name\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for(cd + "Space before : colon\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for(cd + cd), Error::malformed_header);  // repeated Content-Disposition
    EXPECT_EQ(error_for(cd + "Content-Type: a/b\r\nContent-Type: c/d\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for(cd + "Content-Type:\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for("Content-Disposition: attachment; name=\"a\"\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for("Content-Disposition: form-data\r\n"), Error::malformed_header);  // no name
    EXPECT_EQ(error_for("Content-Disposition: form-data; name=\"a\"; name=\"b\"\r\n"), Error::malformed_header);
    EXPECT_EQ(error_for("Content-Disposition: form-data; name=\"a\r\n"), Error::malformed_header);  // unterminated
    EXPECT_EQ(error_for("Content-Disposition: form-data name=\"a\"\r\n"), Error::malformed_header);

    const Outcome out = parse(part("content-DISPOSITION:   Form-Data ;NAME=plain ; FileName=\"v.mp4\";\r\n"
                                   "X-Custom:\t spaced value \t\r\n"
                                   "Content-Type: video/mp4; codecs=\"avc1\"\r\n",
                                   "x") +
                              closing());
    ASSERT_TRUE(out.finished) << out;
    const PartHeaders& h = out.parts[0].headers;
    EXPECT_EQ(h.name, "plain");
    EXPECT_EQ(h.filename, "v.mp4");
    EXPECT_EQ(h.content_type, "video/mp4; codecs=\"avc1\"");
    ASSERT_EQ(h.raw.size(), 3u);
    EXPECT_EQ(h.raw[0].first, "content-disposition");
    EXPECT_EQ(h.raw[1], std::make_pair("x-custom"s, "spaced value"s));
}

TEST(MultipartParser, FilenameStarWins) {
    const Outcome out =
        parse(part("Content-Disposition: form-data; name=\"f\"; filename=\"fallback.mp4\"; "
                   "filename*=UTF-8''%E2%82%AC%20rates.mp4\r\n",
                   "x") +
              part("Content-Disposition: form-data; name=\"g\"; filename*=utf-8'en'a%2Fb; "
                   "filename=\"later.mp4\"\r\n",
                   "y") +
              part("Content-Disposition: form-data; name=\"h\"; filename*=ISO-8859-1''caf%E9\r\n", "z") + closing());
    ASSERT_TRUE(out.finished) << out;
    EXPECT_EQ(out.parts[0].headers.filename, "\xE2\x82\xAC rates.mp4");
    EXPECT_EQ(out.parts[1].headers.filename, "a/b");  // order does not matter; sanitising paths is the caller's job
    EXPECT_EQ(out.parts[2].headers.filename, "caf\xC3\xA9");

    const auto error_for = [](std::string_view ext) {
        return parse(part("Content-Disposition: form-data; name=\"f\"; filename*=" + std::string(ext) + "\r\n", "x") +
                     closing())
            .error;
    };
    EXPECT_EQ(error_for("UTF-8''ok"), Error::none);
    EXPECT_EQ(error_for("UTF-8''bad%2"), Error::malformed_header);
    EXPECT_EQ(error_for("UTF-8''bad%zz"), Error::malformed_header);
    EXPECT_EQ(error_for("UTF-8''%FF"), Error::malformed_header);  // not UTF-8
    EXPECT_EQ(error_for("UTF-8''a%00b"), Error::malformed_header);
    EXPECT_EQ(error_for("KOI8-R''x"), Error::malformed_header);
    EXPECT_EQ(error_for("no-quotes"), Error::malformed_header);
}

TEST(MultipartParser, FilenameWithEscapesAndUtf8) {
    const Outcome out =
        parse(part("Content-Disposition: form-data; name=\"q\\\"n\"; filename=\"say \\\"hi\\\" \\\\ \xC3\xA9.mp4\"\r\n",
                   "x") +
              closing());
    ASSERT_TRUE(out.finished) << out;
    EXPECT_EQ(out.parts[0].headers.name, "q\"n");
    EXPECT_EQ(out.parts[0].headers.filename, "say \"hi\" \\ \xC3\xA9.mp4");
    // Semicolons and spaces inside quotes are not separators.
    const Outcome spaced =
        parse(part("Content-Disposition: form-data; name=\"f\"; filename=\"a b; c.mp4\"\r\n", "x") + closing());
    ASSERT_TRUE(spaced.finished);
    EXPECT_EQ(spaced.parts[0].headers.filename, "a b; c.mp4");
}

TEST(MultipartParser, ErrorsAreSticky) {
    int calls = 0;
    const auto count = [&] {
        ++calls;
        return true;
    };
    Parser parser(kBoundary, {.on_part_begin = [&](const PartHeaders&) { return count(); },
                              .on_part_data = [&](std::string_view) { return count(); },
                              .on_part_end = count});
    EXPECT_FALSE(parser.feed(delim() + "junk"));
    EXPECT_EQ(parser.error(), Error::junk_after_boundary);
    EXPECT_FALSE(parser.feed(field("a", "x") + closing()));
    EXPECT_FALSE(parser.finish());
    EXPECT_EQ(parser.error(), Error::junk_after_boundary);
    EXPECT_FALSE(parser.done());
    EXPECT_EQ(calls, 0);
}

TEST(MultipartParser, InvalidBoundaryFailsAtOnce) {
    for (const std::string& b : {""s, std::string(71, 'a'), "trailing "s, "cr\r"s, "quote\""s}) {
        Parser parser(b, {});
        EXPECT_EQ(parser.error(), Error::bad_boundary);
        EXPECT_FALSE(parser.feed("--" + b + "--"));
    }
    EXPECT_TRUE(parse(field("a", "x") + closing(), {}, kBoundary).finished);
    Parser longest(std::string(70, 'b'), {});
    EXPECT_TRUE(longest.feed("--" + std::string(70, 'b') + "--"));
    EXPECT_TRUE(longest.finish());
}

TEST(MultipartParser, MemoryStaysBoundedForALargePart) {
    constexpr size_t kChunk = 1 << 20;
    constexpr size_t kChunks = 50;
    const size_t bound = kBoundary.size() + 4;
    size_t data_bytes = 0, largest_call = 0, max_buffered = 0;
    Parser* self = nullptr;
    Parser parser(kBoundary, {.on_part_data = [&](std::string_view bytes) {
                      data_bytes += bytes.size();
                      largest_call = std::max(largest_call, bytes.size());
                      max_buffered = std::max(max_buffered, self->buffered());
                      return true;
                  }});
    self = &parser;
    ASSERT_TRUE(parser.feed(delim() + "\r\nContent-Disposition: form-data; name=\"v\"; filename=\"big.mp4\"\r\n\r\n"));
    // Each chunk ends in the longest delimiter prefix there is, which the next chunk's first byte breaks: the worst
    // case for hold-back.
    std::string chunk(kChunk, 'v');
    const std::string tail = "\r\n--" + kBoundary.substr(0, kBoundary.size() - 1);
    std::copy(tail.begin(), tail.end(), chunk.end() - static_cast<std::ptrdiff_t>(tail.size()));
    for (size_t i = 0; i < kChunks; ++i) {
        ASSERT_TRUE(parser.feed(chunk));
        max_buffered = std::max(max_buffered, parser.buffered());
        ASSERT_LE(parser.buffered(), bound);
    }
    ASSERT_TRUE(parser.feed("\r\n" + closing()));
    EXPECT_TRUE(parser.finish());
    EXPECT_EQ(data_bytes, kChunk * kChunks);
    EXPECT_LE(max_buffered, bound);
    EXPECT_EQ(max_buffered, tail.size());  // it does hold the prefix back...
    EXPECT_LE(largest_call, kChunk);       // ...and never accumulates
}

TEST(MultipartParser, BufferedCountsAPartialHeaderLine) {
    Parser parser(kBoundary, {});
    ASSERT_TRUE(parser.feed(delim() + "\r\nContent-Dis"));
    EXPECT_EQ(parser.buffered(), 11u);
    ASSERT_TRUE(parser.feed("position: form-data; name=\"a\"\r\n\r\nbody\r\n--"));
    EXPECT_EQ(parser.buffered(), 4u);
}

TEST(MultipartParser, DescribeCoversEveryError) {
    for (int e = static_cast<int>(Error::none); e <= static_cast<int>(Error::junk_after_boundary); ++e) {
        EXPECT_FALSE(describe(static_cast<Error>(e)).empty());
        EXPECT_NE(describe(static_cast<Error>(e)), "unknown multipart error");
    }
}

TEST(BoundaryFromContentType, Cases) {
    const auto ok = [](std::string_view ct) {
        const auto r = boundary_from_content_type(ct);
        return r ? r.value() : "<error>"s;
    };
    const auto err = [](std::string_view ct) {
        const auto r = boundary_from_content_type(ct);
        return r ? Error::none : r.error();
    };
    EXPECT_EQ(ok("multipart/form-data; boundary=----abc"), "----abc");
    EXPECT_EQ(ok("multipart/form-data; boundary=\"----abc\""), "----abc");
    EXPECT_EQ(ok("multipart/form-data; boundary=\"with space:and=specials?\""), "with space:and=specials?");
    EXPECT_EQ(ok("Multipart/Form-Data;BOUNDARY=xyz"), "xyz");
    EXPECT_EQ(ok("  multipart/form-data ; charset=utf-8; Boundary = \"q\" ; x=y"), "q");
    EXPECT_EQ(ok("multipart/form-data; boundary=----=_Part_0"), "----=_Part_0");  // unquoted '=' tolerated
    EXPECT_EQ(ok("multipart/form-data; boundary=" + std::string(70, 'x')), std::string(70, 'x'));

    EXPECT_EQ(err("multipart/form-data"), Error::no_boundary);
    EXPECT_EQ(err("multipart/form-data; charset=utf-8"), Error::no_boundary);
    EXPECT_EQ(err("application/json"), Error::no_boundary);
    EXPECT_EQ(err("application/json; boundary=abc"), Error::no_boundary);
    EXPECT_EQ(err("multipart/mixed; boundary=abc"), Error::no_boundary);
    EXPECT_EQ(err("multipart/form-datax; boundary=abc"), Error::no_boundary);
    EXPECT_EQ(err(""), Error::no_boundary);

    EXPECT_EQ(err("multipart/form-data; boundary=" + std::string(71, 'x')), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=\"" + std::string(71, 'x') + "\""), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary="), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=\"\""), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=a@b"), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=\"a\\\"b\""), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=\"ends in space \""), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=\"unterminated"), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=\xC3\xA9"), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=a; boundary=b"), Error::bad_boundary);
    EXPECT_EQ(err("multipart/form-data; boundary=abc def"), Error::bad_boundary);
}

}  // namespace
}  // namespace mp3c::multipart
