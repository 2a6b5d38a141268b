#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "transcoder.hpp"

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

// The cover of cover=auto: the source's own picture (source_cover), else a frame of its video at a tenth of its
// length, skipping black frames (a fade-in, a title card), scaled to fit kMaxCoverSide as JPEG. Audio alone without a
// picture has none. Reads the input with a demuxer context of its own (the allowed demuxers only, no nested opens),
// runs only the common video decoders, one thread, at most kMaxCoverPixels a frame, kMaxCoverFrames frames and
// kCoverTimeBudget; the input is left at offset 0. Never fails a conversion: nullopt with the reason in `why`
// (empty when the source simply has no picture and no video).
constexpr int kMaxCoverFrames = 300;
constexpr std::chrono::seconds kCoverTimeBudget{10};
std::optional<CoverImage> find_cover(MediaInput& input, const Limits& limits, std::string& why);

}  // namespace mp3c::converter
