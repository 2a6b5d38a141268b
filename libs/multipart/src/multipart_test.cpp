// The multipart parser: bodies split anywhere, parts, files and callbacks.
#include "mp3c/multipart.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "multipart_test_support.hpp"

namespace mp3c::multipart {
namespace {

using namespace testing_support;

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

}  // namespace
}  // namespace mp3c::multipart
