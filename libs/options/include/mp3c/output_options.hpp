#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mp3c/result.hpp"

namespace mp3c {

// Tags the user sets on the MP3 (ID3v2), each overriding the source's own. UTF-8, at most kMaxTagBytes bytes, no
// control characters; year is YYYY, track n or n/N.
struct OutputTags {
    static constexpr size_t kMaxTagBytes = 250;

    std::optional<std::string> title, artist, album, year, track, genre;

    bool empty() const { return !title && !artist && !album && !year && !track && !genre; }
    bool operator==(const OutputTags&) const = default;
    // FFmpeg's metadata keys (its MP3 muxer writes them as TIT2, TPE1, TALB, TDRC, TRCK, TCON) with their values.
    std::vector<std::pair<const char*, std::string>> ffmpeg_metadata() const;
};

// What the user asked the MP3 to be; unset fields take the converter's defaults (192 kb/s CBR, 44.1 kHz, the
// source's channels up to stereo).
struct OutputOptions {
    static constexpr int kDefaultBitrateKbps = 192;
    static constexpr int kDefaultSampleRate = 44100;

    std::optional<int> bitrate_kbps;  // CBR: 64, 80, 96, 112, 128, 160, 192, 224, 256 or 320
    std::optional<int> vbr_quality;   // VBR: 0 (best) to 9 (smallest); never together with a bitrate
    std::optional<int> channels;      // 1 or 2
    std::optional<int> sample_rate;   // an MP3 sample rate in Hz
    // The part of the source to keep, in milliseconds from its start: [start_ms, end_ms). 0 <= start < end <= 24 h.
    static constexpr int64_t kMaxTrimMs = 24LL * 3600 * 1000;
    std::optional<int64_t> start_ms, end_ms;
    // The source's chapters: "keep" (the default: ID3v2 CHAP and CTOC frames with their titles), "split" (kept, and
    // each chapter also becomes an MP3 of its own: messages::Part) or "none".
    std::optional<std::string> chapters;
    // The cover: "auto" (the default: the source's own picture, as an ID3v2 APIC frame) or "none".
    std::optional<std::string> cover;
    // Loudness normalisation (EBU R128): the integrated loudness the MP3 should have, in LUFS, and the true-peak
    // ceiling it must stay under, in dBTP (only with a loudness; -1 when not given). Both to 0.1.
    static constexpr double kMinLoudness = -31, kMaxLoudness = -5, kMinTruePeak = -9, kMaxTruePeak = 0;
    static constexpr double kDefaultTruePeak = -1;
    std::optional<double> loudness_lufs, true_peak_dbtp;
    OutputTags tags;

    // {"bitrate", "quality", "channels", "sample_rate"}, null when unset; "start" and "end" (seconds, to the
    // millisecond), "chapters", "cover", "loudness" and "true_peak" only when set; and "tags": {"title", ...} with the
    // tags set, only when one is (the video message's "options": the same JSON as before tags existed, for jobs
    // without).
    nlohmann::json to_json() const;
    // nullopt when the JSON is not a valid options object.
    static std::optional<OutputOptions> from_json(const nlohmann::json& json);
    // What the converter makes of these: the defaults filled in (CBR 192 kb/s unless a VBR quality is asked, 44.1
    // kHz). Channels stay unset: the source's, up to stereo, known only once converted.
    OutputOptions effective() const;
};

// Parses and checks textual fields (form fields, command-line flags) named bitrate, quality, channels,
// sample_rate, start, end (seconds such as 90 or 12.5, or [hh:]mm:ss[.fff]), chapters (keep, split or none), loudness
// (LUFS, such as -16; "off" leaves it unset), true_peak (dBTP), cover (auto or none), title, artist, album, year, track
// and genre; other names are ignored. A tag given empty is unset. Returns the options, or what is wrong in words for
// users.
Result<OutputOptions, std::string> parse_output_options(const std::map<std::string, std::string>& fields);

// A time as the start and end fields take it: seconds (90, 12.5) or [hh:]mm:ss[.fff] (1:30, 01:02:03.250), to the
// millisecond; nullopt when it is neither.
std::optional<int64_t> parse_trim_time(std::string_view text);

// Checks the values of already typed options.
Check check_output_options(const OutputOptions& options);

}  // namespace mp3c
