#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "transcoder.hpp"

struct AVInputFormat;

// Which demuxer may read an upload. Uploads are untrusted: FFmpeg has demuxers that follow references to other files
// and URLs (concat scripts, HLS and DASH manifests, image sequences, IMF, SDP), and a probe that picks one of them from
// the content alone turns an upload into a read of someone else's file or a request from inside the deployment. So the
// demuxer is chosen here, among an allow-list of formats that read one self-contained stream, by asking only those
// demuxers' signature checks; the rest are never consulted. docs/architecture.md ("Untrusted media") has the list and
// the reason for each exclusion.
namespace mp3c::converter {

struct AllowedFormat {
    std::string_view demuxer;  // FFmpeg's name, as av_find_input_format() takes it
    std::string_view what;     // what people upload in it
};

// The allow-list, in the order the documentation gives it.
const std::vector<AllowedFormat>& allowed_formats();

// The allowed demuxers' full names, comma-separated, for AVFormatContext::format_whitelist (a second check inside
// avformat_open_input that the chosen demuxer is one of them).
const std::string& allowed_demuxer_names();

// Reads the start of the input (after any ID3v2 tags) and returns the allowed demuxer whose signature check scores
// highest, as FFmpeg's probe would among these alone; rewinds the input to 0. Throws
// ConversionError(unsupported_format) naming what the file looks like when no allowed demuxer recognises it.
const AVInputFormat* probe_allowed_format(MediaInput& input);

// A person's words for bytes no allowed demuxer takes: "an HLS playlist (it points at other files or addresses)",
// "an image", "a text file"... Only looks at the bytes; never parses them as media.
std::string describe_unsupported(std::string_view head);

}  // namespace mp3c::converter
