#include "mp3c/multipart.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mp3c::multipart {
namespace {

using namespace std::string_literals;

const std::string kBoundary = "----mp3cBoundary7MA4YWxkTrZu0gW";

struct Part {
    PartHeaders headers;
    std::string data;
    bool ended = false;

    bool operator==(const Part& o) const {
        return headers.name == o.headers.name && headers.filename == o.headers.filename &&
               headers.content_type == o.headers.content_type && headers.raw == o.headers.raw && data == o.data &&
               ended == o.ended;
    }
};

struct Outcome {
    std::vector<Part> parts;
    bool fed = true;  // every feed() returned true
    bool finished = false;
    Error error = Error::none;
    bool done = false;

    bool operator==(const Outcome& o) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    os << "fed=" << o.fed << " finished=" << o.finished << " error=" << describe(o.error) << " done=" << o.done;
    for (const auto& p : o.parts)
        os << "\n  part name=" << p.headers.name << " data=" << testing::PrintToString(p.data);
    return os;
}

// Records what the callbacks see and checks the call order on the way.
struct Recorder {
    std::vector<Part> parts;
    bool in_part = false;
    int begins_allowed = 1000;

    Parser::Callbacks callbacks() {
        return {
            .on_part_begin =
                [this](const PartHeaders& h) {
                    EXPECT_FALSE(in_part);
                    if (begins_allowed-- == 0) return false;
                    parts.push_back({h, "", false});
                    in_part = true;
                    return true;
                },
            .on_part_data =
                [this](std::string_view bytes) {
                    EXPECT_TRUE(in_part);
                    EXPECT_FALSE(bytes.empty());
                    parts.back().data.append(bytes);
                    return true;
                },
            .on_part_end =
                [this] {
                    EXPECT_TRUE(in_part);
                    parts.back().ended = true;
                    in_part = false;
                    return true;
                },
        };
    }
};

Outcome parse_chunks(const std::vector<std::string_view>& chunks, Limits limits = {},
                     const std::string& boundary = kBoundary) {
    Recorder rec;
    Parser parser(boundary, rec.callbacks(), limits);
    Outcome out;
    for (auto chunk : chunks) {
        if (!parser.feed(chunk)) {
            out.fed = false;
            break;
        }
    }
    out.finished = out.fed && parser.finish();
    out.error = parser.error();
    out.done = parser.done();
    out.parts = std::move(rec.parts);
    return out;
}

Outcome parse(std::string_view body, Limits limits = {}, const std::string& boundary = kBoundary) {
    return parse_chunks({body}, limits, boundary);
}

Outcome parse_bytewise(std::string_view body, Limits limits = {}) {
    std::vector<std::string_view> chunks;
    for (size_t i = 0; i < body.size(); ++i) chunks.push_back(body.substr(i, 1));
    return parse_chunks(chunks, limits);
}

// One-shot, byte-by-byte and every two-way split must agree.
void expect_split_independent(std::string_view body, Limits limits = {}) {
    const Outcome whole = parse(body, limits);
    EXPECT_EQ(parse_bytewise(body, limits), whole);
    for (size_t i = 0; i <= body.size(); ++i) {
        ASSERT_EQ(parse_chunks({body.substr(0, i), body.substr(i)}, limits), whole) << "split at " << i;
    }
}

std::string lower_copy(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string delim() { return "--" + kBoundary; }

// A part with the given header block and data, its delimiter line first.
std::string part(std::string_view headers, std::string_view data) {
    return delim() + "\r\n" + std::string(headers) + "\r\n" + std::string(data) + "\r\n";
}

std::string field(std::string_view name, std::string_view value) {
    return part("Content-Disposition: form-data; name=\""s + std::string(name) + "\"\r\n", value);
}

std::string closing() { return delim() + "--\r\n"; }

std::string sample_body() {
    return field("title", "My holiday") +
           part(
               "Content-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\n"
               "Content-Type: video/mp4\r\n",
               "\x00\x01\r\n\r\n--\r\n-\r\x80\xff"s) +
           field("bitrate", "128") + closing();
}

TEST(MultipartParser, SingleFileAndTextFields) {
    const Outcome out = parse(sample_body());
    EXPECT_TRUE(out.fed);
    EXPECT_TRUE(out.finished);
    EXPECT_TRUE(out.done);
    EXPECT_EQ(out.error, Error::none);
    ASSERT_EQ(out.parts.size(), 3u);

    EXPECT_EQ(out.parts[0].headers.name, "title");
    EXPECT_EQ(out.parts[0].headers.filename, std::nullopt);
    EXPECT_EQ(out.parts[0].headers.content_type, "text/plain");
    EXPECT_EQ(out.parts[0].data, "My holiday");
    EXPECT_TRUE(out.parts[0].ended);

    EXPECT_EQ(out.parts[1].headers.name, "video");
    EXPECT_EQ(out.parts[1].headers.filename, "clip.mp4");
    EXPECT_EQ(out.parts[1].headers.content_type, "video/mp4");
    EXPECT_EQ(out.parts[1].data, "\x00\x01\r\n\r\n--\r\n-\r\x80\xff"s);
    const std::vector<std::pair<std::string, std::string>> raw = {
        {"content-disposition", "form-data; name=\"video\"; filename=\"clip.mp4\""}, {"content-type", "video/mp4"}};
    EXPECT_EQ(out.parts[1].headers.raw, raw);

    EXPECT_EQ(out.parts[2].headers.name, "bitrate");
    EXPECT_EQ(out.parts[2].data, "128");
}

TEST(MultipartParser, PartsCountAndDone) {
    Recorder rec;
    Parser parser(kBoundary, rec.callbacks());
    const std::string body = sample_body();
    EXPECT_FALSE(parser.done());
    ASSERT_TRUE(parser.feed(body.substr(0, body.size() - 4)));  // "--\r\n" of the closing delimiter still to come
    EXPECT_FALSE(parser.done());
    EXPECT_EQ(parser.parts(), 3u);
    ASSERT_TRUE(parser.feed(body.substr(body.size() - 4)));
    EXPECT_TRUE(parser.done());
    EXPECT_TRUE(parser.finish());
}

// Captured from curl 7.88.1: `curl -F 'file=@x' -F bitrate=128 http://127.0.0.1:PORT/upload`, x = "hello\nworld\n".
TEST(MultipartParser, CurlBody) {
    const std::string content_type = "multipart/form-data; boundary=------------------------26440287e19f5568";
    const std::string body =
        "--------------------------26440287e19f5568\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n"
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "hello\nworld\n\r\n"
        "--------------------------26440287e19f5568\r\n"
        "Content-Disposition: form-data; name=\"bitrate\"\r\n"
        "\r\n"
        "128\r\n"
        "--------------------------26440287e19f5568--\r\n";
    ASSERT_EQ(body.size(), 304u);  // curl's Content-Length

    const auto boundary = boundary_from_content_type(content_type);
    ASSERT_TRUE(boundary);
    EXPECT_EQ(boundary.value(), "------------------------26440287e19f5568");

    const Outcome out = parse(body, {}, boundary.value());
    EXPECT_TRUE(out.finished);
    ASSERT_EQ(out.parts.size(), 2u);
    EXPECT_EQ(out.parts[0].headers.name, "file");
    EXPECT_EQ(out.parts[0].headers.filename, "x");
    EXPECT_EQ(out.parts[0].headers.content_type, "application/octet-stream");
    EXPECT_EQ(out.parts[0].data, "hello\nworld\n");
    EXPECT_EQ(out.parts[1].headers.name, "bitrate");
    EXPECT_EQ(out.parts[1].headers.filename, std::nullopt);
    EXPECT_EQ(out.parts[1].data, "128");
}

TEST(MultipartParser, SplitAtEveryPosition) { expect_split_independent(sample_body()); }

TEST(MultipartParser, SplitAtEveryPairOfPositions) {
    const std::string body = field("a", "x\r\n-") + field("b", "") + closing();
    const Outcome whole = parse(body);
    ASSERT_TRUE(whole.finished);
    const std::string_view v(body);
    for (size_t i = 0; i <= v.size(); ++i) {
        for (size_t j = i; j <= v.size(); ++j) {
            ASSERT_EQ(parse_chunks({v.substr(0, i), v.substr(i, j - i), v.substr(j)}), whole) << i << "," << j;
        }
    }
}

TEST(MultipartParser, ByteByByte) {
    const Outcome out = parse_bytewise(sample_body());
    EXPECT_TRUE(out.finished);
    ASSERT_EQ(out.parts.size(), 3u);
    EXPECT_EQ(out.parts[1].data, "\x00\x01\r\n\r\n--\r\n-\r\x80\xff"s);
}

TEST(MultipartParser, EmptyChunksAreHarmless) {
    const std::string body = sample_body();
    const std::string_view v(body);
    EXPECT_EQ(parse_chunks({"", v.substr(0, 50), "", "", v.substr(50), ""}), parse(body));
}

TEST(MultipartParser, DataThatLooksLikeADelimiter) {
    const std::string prefix = kBoundary.substr(0, kBoundary.size() - 1);
    const std::vector<std::string> tricky = {
        "line\r\n--",                             // CRLF-- then not the boundary
        "\r\n--",                                 // the whole datum
        "x--" + kBoundary + "--",                 // the boundary without the preceding CRLF
        "--" + kBoundary,                         // ditto, at the start of the data
        "a\r\n--" + prefix + "X tail",            // a near-boundary prefix
        "a\r\n--" + prefix,                       // the prefix right before the real delimiter
        "\r\r\n--" + prefix + "\r\r\n-\r\n--\r",  // CRs everywhere
        "\r\n-" + kBoundary,                      // one dash short
        "\r\n--" + lower_copy(kBoundary),         // case differs
        std::string(3 * kBoundary.size(), '\r'),
    };
    for (const auto& data : tricky) {
        SCOPED_TRACE(testing::PrintToString(data));
        const std::string body = field("f", data) + field("g", data) + closing();
        const Outcome out = parse(body);
        ASSERT_TRUE(out.finished) << out;
        ASSERT_EQ(out.parts.size(), 2u);
        EXPECT_EQ(out.parts[0].data, data);
        EXPECT_EQ(out.parts[1].data, data);
        expect_split_independent(body);
    }
}

TEST(MultipartParser, EmptyPart) {
    const std::string body = field("empty", "") +
                             part(
                                 "Content-Disposition: form-data; name=\"f\"; filename=\"\"\r\n"
                                 "Content-Type: application/octet-stream\r\n",
                                 "") +
                             closing();
    const Outcome out = parse(body);  // the recorder fails the test on an empty on_part_data
    EXPECT_TRUE(out.finished);
    ASSERT_EQ(out.parts.size(), 2u);
    EXPECT_EQ(out.parts[0].data, "");
    EXPECT_TRUE(out.parts[0].ended);
    EXPECT_EQ(out.parts[1].headers.filename, "");
    EXPECT_EQ(out.parts[1].data, "");
    expect_split_independent(body);
}

std::string file_part(std::string_view name, std::string_view filename, std::string_view data) {
    return part("Content-Disposition: form-data; name=\""s + std::string(name) + "\"; filename=\"" +
                    std::string(filename) + "\"\r\nContent-Type: video/mp4\r\n",
                data);
}

TEST(MultipartParser, TwoFiles) {
    const std::string body = file_part("a", "one.mp4", "111") + file_part("b", "two.mp4", "222") + closing();
    const Outcome out = parse(body);
    EXPECT_TRUE(out.finished);
    ASSERT_EQ(out.parts.size(), 2u);
    EXPECT_EQ(out.parts[0].headers.filename, "one.mp4");
    EXPECT_EQ(out.parts[1].headers.filename, "two.mp4");
    EXPECT_EQ(out.parts[1].data, "222");
}

TEST(MultipartParser, RefusingTheSecondFileStopsParsing) {
    const std::string body = file_part("a", "one.mp4", "111") + file_part("b", "two.mp4", "222") + closing();
    int files = 0, data_calls_after_refusal = 0, calls_after_refusal = 0;
    bool refused = false;
    Parser parser(kBoundary, {
                                 .on_part_begin =
                                     [&](const PartHeaders& h) {
                                         calls_after_refusal += refused;
                                         if (h.filename && ++files > 1) refused = true;
                                         return !refused;
                                     },
                                 .on_part_data =
                                     [&](std::string_view) {
                                         data_calls_after_refusal += refused;
                                         return true;
                                     },
                                 .on_part_end =
                                     [&] {
                                         calls_after_refusal += refused;
                                         return true;
                                     },
                             });
    EXPECT_FALSE(parser.feed(body));
    EXPECT_TRUE(refused);
    EXPECT_EQ(parser.error(), Error::none);  // a refusal, not a malformed body
    EXPECT_EQ(parser.parts(), 2u);
    EXPECT_FALSE(parser.feed("more"));
    EXPECT_FALSE(parser.finish());
    EXPECT_EQ(data_calls_after_refusal, 0);
    EXPECT_EQ(calls_after_refusal, 0);
}

TEST(MultipartParser, StoppingFromDataAndEndCallbacks) {
    const std::string body = sample_body();
    int data_calls = 0;
    Parser by_data(kBoundary, {.on_part_data = [&](std::string_view) { return ++data_calls < 2; }});
    EXPECT_FALSE(by_data.feed(body));
    EXPECT_EQ(data_calls, 2);
    EXPECT_FALSE(by_data.feed(body));
    EXPECT_EQ(data_calls, 2);

    int ends = 0;
    Parser by_end(kBoundary, {.on_part_end = [&] { return ++ends < 1; }});
    EXPECT_FALSE(by_end.feed(body));
    EXPECT_EQ(ends, 1);
    EXPECT_EQ(by_end.parts(), 1u);
}

TEST(MultipartParser, NullCallbacksAcceptEverything) {
    Parser parser(kBoundary, {});
    EXPECT_TRUE(parser.feed(sample_body()));
    EXPECT_TRUE(parser.finish());
    EXPECT_EQ(parser.parts(), 3u);
}

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
