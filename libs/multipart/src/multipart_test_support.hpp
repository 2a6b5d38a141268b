#pragma once

// What the multipart parser's tests share: a recorder of callbacks and bodies to feed it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mp3c/multipart.hpp"

namespace mp3c::multipart {
namespace testing_support {

using namespace std::string_literals;

inline const std::string kBoundary = "----mp3cBoundary7MA4YWxkTrZu0gW";

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

inline std::ostream& operator<<(std::ostream& os, const Outcome& o) {
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

inline Outcome parse_chunks(const std::vector<std::string_view>& chunks, Limits limits = {},
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

inline Outcome parse(std::string_view body, Limits limits = {}, const std::string& boundary = kBoundary) {
    return parse_chunks({body}, limits, boundary);
}

inline Outcome parse_bytewise(std::string_view body, Limits limits = {}) {
    std::vector<std::string_view> chunks;
    for (size_t i = 0; i < body.size(); ++i) chunks.push_back(body.substr(i, 1));
    return parse_chunks(chunks, limits);
}

// One-shot, byte-by-byte and every two-way split must agree.
inline void expect_split_independent(std::string_view body, Limits limits = {}) {
    const Outcome whole = parse(body, limits);
    EXPECT_EQ(parse_bytewise(body, limits), whole);
    for (size_t i = 0; i <= body.size(); ++i) {
        ASSERT_EQ(parse_chunks({body.substr(0, i), body.substr(i)}, limits), whole) << "split at " << i;
    }
}

inline std::string lower_copy(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

inline std::string delim() { return "--" + kBoundary; }

// A part with the given header block and data, its delimiter line first.
inline std::string part(std::string_view headers, std::string_view data) {
    return delim() + "\r\n" + std::string(headers) + "\r\n" + std::string(data) + "\r\n";
}

inline std::string field(std::string_view name, std::string_view value) {
    return part("Content-Disposition: form-data; name=\""s + std::string(name) + "\"\r\n", value);
}

inline std::string closing() { return delim() + "--\r\n"; }

inline std::string sample_body() {
    return field("title", "My holiday") +
           part(
               "Content-Disposition: form-data; name=\"video\"; filename=\"clip.mp4\"\r\n"
               "Content-Type: video/mp4\r\n",
               "\x00\x01\r\n\r\n--\r\n-\r\x80\xff"s) +
           field("bitrate", "128") + closing();
}

}  // namespace testing_support
}  // namespace mp3c::multipart
