#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

// Pure helpers of the gateway's API, unit-tested on their own.
namespace mp3c::gateway {

// The base name of an uploaded file for display and for the download's name: no directories, no control
// characters, at most 200 bytes of valid UTF-8; "upload" when nothing is left.
std::string clean_filename(std::string_view name);

// Content-Disposition for downloading `original` as MP3: its base name without extension plus ".mp3", as an ASCII
// fallback and RFC 5987 UTF-8.
std::string mp3_content_disposition(std::string_view original);
// The plain-ASCII stand-in of a UTF-8 file name (Content-Disposition's filename=, for clients that do not read
// filename*): accents dropped from Latin letters ("Café déjà vu 🎵.mp3" -> "Cafe deja vu.mp3"), other characters
// left out, quotes and separators made "_".
std::string ascii_filename(std::string_view utf8);
// The MP3's name for an upload's name: "talk.mp4" -> "talk.mp3".
std::string mp3_filename(std::string_view original);

struct ByteRange {
    uint64_t offset;
    uint64_t length;
};
// A single "bytes=" range of a resource of `size` bytes (RFC 9110): nullopt when there is no usable range (then the
// whole resource is sent), or the unsatisfiable marker.
struct RangeRequest {
    std::optional<ByteRange> range;
    bool unsatisfiable = false;
};
RangeRequest parse_range(std::optional<std::string_view> header, uint64_t size);

}  // namespace mp3c::gateway
