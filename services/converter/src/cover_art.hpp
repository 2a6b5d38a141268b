#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct AVStream;

// The MP3's cover (ID3v2 APIC) from the source's own attached picture: an MP3's APIC, an M4A's covr, a FLAC
// PICTURE block, a Matroska cover attachment, which FFmpeg shows as a video stream with the attached_pic disposition.
namespace mp3c::converter {

struct CoverImage {
    bool png = false;  // else JPEG
    int width = 0, height = 0;
    std::vector<uint8_t> data;
};

// Pictures are decoded only up to this many pixels (a hostile PNG can declare 60000x60000 in a few bytes).
constexpr int64_t kMaxCoverPixels = 4096 * 4096;
constexpr int kMaxCoverSide = 600;

// The source's picture, if it has one: as it is when it is a JPEG or PNG of at most kMaxCoverSide on each side;
// otherwise decoded, scaled to fit kMaxCoverSide (keeping its proportions) and encoded as JPEG. nullopt when the
// source has none, or it cannot be read (said in `why`): a damaged picture never fails a conversion.
std::optional<CoverImage> source_cover(const AVStream* const* streams, unsigned count, std::string& why);

}  // namespace mp3c::converter
