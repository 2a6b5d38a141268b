#include "input_format.hpp"

extern "C" {
#include <libavformat/avformat.h>
#include <libavformat/version.h>
}

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>

// FFmpeg offers no public call that probes a chosen set of demuxers: av_probe_input_format() asks all of them. The
// signature check of each demuxer is AVInputFormat::read_probe, a field the 5.x headers declare but mark as internal;
// libavformat 61 (FFmpeg 7) moves it out of the public struct. The build targets Debian 12's FFmpeg 5.1: an upgrade
// stops here, loudly, rather than silently falling back to probing every demuxer.
static_assert(LIBAVFORMAT_VERSION_MAJOR >= 59 && LIBAVFORMAT_VERSION_MAJOR <= 60,
              "input_format.cpp reads AVInputFormat::read_probe, which libavformat 59 and 60 declare");

namespace mp3c::converter {

namespace {

using Kind = ConversionError::Kind;

constexpr size_t kProbeMin = 2048;     // FFmpeg's PROBE_BUF_MIN
constexpr size_t kProbeMax = 1 << 20;  // FFmpeg's PROBE_BUF_MAX
constexpr int kScoreRetry =
    AVPROBE_SCORE_MAX / 4;       // below this, a larger buffer is worth reading (AVPROBE_SCORE_RETRY)
constexpr int kMaxId3Tags = 16;  // stacked ID3v2 tags skipped before probing; more is not a real file

// Reads up to `size` bytes at `offset`; fewer only at the end of the input.
size_t read_at(MediaInput& input, uint64_t offset, uint8_t* buffer, size_t size) {
    input.seek(std::min(offset, input.size()));
    size_t got = 0;
    while (got < size) {
        size_t n = input.read(buffer + got, size - got);
        if (n == 0) break;
        got += n;
    }
    return got;
}

// The length of an ID3v2 tag at `p` (header, body and footer), or 0 when there is none.
uint64_t id3v2_length(const uint8_t* p, size_t size) {
    if (size < 10 || std::memcmp(p, "ID3", 3) != 0 || p[3] == 0xff || p[4] == 0xff) return 0;
    if ((p[6] | p[7] | p[8] | p[9]) & 0x80) return 0;  // the size is four 7-bit bytes
    uint64_t body = (uint64_t{p[6]} << 21) | (uint64_t{p[7]} << 14) | (uint64_t{p[8]} << 7) | p[9];
    return 10 + body + ((p[5] & 0x10) ? 10 : 0);
}

// Where the media data starts: past the ID3v2 tags an MP3 (or, rarely, another file) begins with. FFmpeg's own probe
// skips them the same way; here a tag longer than the probe buffer (cover art) is skipped too.
uint64_t media_start(MediaInput& input) {
    uint64_t offset = 0;
    for (int i = 0; i < kMaxId3Tags; ++i) {
        uint8_t header[10];
        uint64_t length = id3v2_length(header, read_at(input, offset, header, sizeof header));
        if (length == 0 || offset + length >= input.size()) break;
        offset += length;
    }
    return offset;
}

struct Candidate {
    const AVInputFormat* format;
    int (*probe)(const AVProbeData*);
};

const std::vector<Candidate>& candidates() {
    static const std::vector<Candidate> list = [] {
        std::vector<Candidate> out;
        for (const auto& allowed : allowed_formats()) {
            const AVInputFormat* format = av_find_input_format(std::string(allowed.demuxer).c_str());
            // Every allowed demuxer is in Debian's build; one that is missing is a build problem, not an input's.
            if (format == nullptr) throw std::logic_error("FFmpeg has no demuxer " + std::string(allowed.demuxer));
            if (format->read_probe == nullptr) {
                throw std::logic_error("the demuxer " + std::string(allowed.demuxer) + " has no signature check");
            }
            out.push_back({format, format->read_probe});
        }
        return out;
    }();
    return list;
}

// The best-scoring allowed demuxer for `data`, or nullptr on no match or a tie (as FFmpeg treats a tie).
const AVInputFormat* best_of(const uint8_t* data, size_t size, int& score) {
    AVProbeData probe{};
    probe.filename = "";  // the name is the user's choice: it never counts
    probe.buf = const_cast<unsigned char*>(data);
    probe.buf_size = static_cast<int>(size);
    const AVInputFormat* best = nullptr;
    score = 0;
    for (const auto& c : candidates()) {
        int s = c.probe(&probe);
        if (s > score) {
            score = s;
            best = c.format;
        } else if (s == score && s > 0) {
            best = nullptr;
        }
    }
    return best;
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

bool contains(std::string_view text, std::string_view needle) { return text.find(needle) != std::string_view::npos; }

std::string_view skip_space(std::string_view text) {
    if (starts_with(text, "\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte order mark
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    return text;
}

bool mostly_text(std::string_view head) {
    if (head.empty()) return false;
    size_t printable = 0;
    for (unsigned char c : head) printable += (c >= 0x20 || c == '\n' || c == '\r' || c == '\t' || c >= 0x80) ? 1 : 0;
    return printable * 100 >= head.size() * 95;
}

}  // namespace

const std::vector<AllowedFormat>& allowed_formats() {
    static const std::vector<AllowedFormat> list = {
        {"mov", "MP4, MOV, M4A, 3GP and 3G2 (phones, cameras, iTunes)"},
        {"matroska", "Matroska and WebM (MKV, MKA, WEBM)"},
        {"avi", "AVI"},
        {"flv", "Flash Video (FLV)"},
        {"mpegts", "MPEG transport streams (TS, M2TS and MTS from AVCHD cameras)"},
        {"mpeg", "MPEG program streams (MPG, VOB, MOD, TOD)"},
        {"asf", "Windows Media (WMV, WMA, ASF)"},
        {"ogg", "Ogg (Vorbis, Opus, FLAC, Theora)"},
        {"dv", "DV camcorder streams"},
        {"wav", "WAV"},
        {"w64", "Sony Wave64"},
        {"aiff", "AIFF and AIFF-C"},
        {"caf", "Apple Core Audio Format (CAF)"},
        {"flac", "FLAC"},
        {"mp3", "MP3, MP2 and MP1"},
        {"aac", "raw AAC (ADTS)"},
        {"ac3", "raw AC-3"},
        {"eac3", "raw E-AC-3"},
        {"dts", "raw DTS"},
        {"amr", "AMR (voice memos)"},
        {"wv", "WavPack"},
        {"ape", "Monkey's Audio (APE)"},
    };
    return list;
}

const std::string& allowed_demuxer_names() {
    static const std::string names = [] {
        std::string out;
        for (const auto& c : candidates()) {
            if (!out.empty()) out += ',';
            out += c.format->name;  // "mov,mp4,m4a,3gp,3g2,mj2": the full name, which format_whitelist matches
        }
        return out;
    }();
    return names;
}

const AVInputFormat* probe_allowed_format(MediaInput& input) {
    uint64_t start = media_start(input);
    // Grows like FFmpeg's av_probe_input_buffer2: a weak match is trusted only once the buffer is as large as it gets
    // (or the file ends); a strong one at once.
    std::vector<uint8_t> buffer;
    const AVInputFormat* chosen = nullptr;
    size_t have = 0;
    for (size_t size = kProbeMin;; size = std::min(size * 2, kProbeMax)) {
        buffer.resize(size + AVPROBE_PADDING_SIZE);
        have = read_at(input, start, buffer.data(), size);
        std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(have), buffer.end(), 0);
        bool last = have < size || size == kProbeMax;
        int score = 0;
        const AVInputFormat* best = best_of(buffer.data(), have, score);
        if (best != nullptr && (score > kScoreRetry || (last && score > 0))) {
            chosen = best;
            break;
        }
        if (last) break;
    }
    input.seek(0);
    if (chosen != nullptr) return chosen;

    std::string_view head(reinterpret_cast<const char*>(buffer.data()), std::min<size_t>(have, 4096));
    throw ConversionError(Kind::unsupported_format,
                          "this file is " + describe_unsupported(head) +
                              ", not a video or audio file in a format the converter accepts (MP4, MOV, M4A, MKV, "
                              "WebM, AVI, FLV, MPEG-TS, MPEG-PS, WMV/WMA, Ogg, WAV, AIFF, CAF, FLAC, MP3, AAC, AC-3, "
                              "DTS, AMR, WavPack, APE)");
}

std::string describe_unsupported(std::string_view head) {
    if (head.empty()) return "empty";
    std::string_view text = skip_space(head);
    if (starts_with(text, "ffconcat version") || starts_with(text, "file ") || starts_with(text, "file\t")) {
        return "an FFmpeg concat script (a list of other files or addresses)";
    }
    if (starts_with(text, "#EXTM3U") || starts_with(text, "#EXT-X-")) {
        return "an M3U/HLS playlist (it points at other files or addresses)";
    }
    if (contains(head, "<MPD")) return "a DASH manifest (it points at other files or addresses)";
    if (contains(head, "<CompositionPlaylist")) return "an IMF composition playlist (it points at other files)";
    if (starts_with(text, "[playlist]")) return "a PLS playlist (it points at other files or addresses)";
    if (starts_with(text, "v=0") && contains(head, "m=")) {
        return "an SDP session description (it points at network streams)";
    }
    if (starts_with(head, "\x89PNG") || starts_with(head, "\xFF\xD8\xFF") || starts_with(head, "GIF8") ||
        starts_with(head, "BM") || (starts_with(head, "RIFF") && head.substr(8, 4) == "WEBP") ||
        starts_with(head, std::string_view("II*\0", 4)) || starts_with(head, std::string_view("MM\0*", 4))) {
        return "an image";
    }
    if (starts_with(head, "%PDF")) return "a PDF document";
    if (starts_with(head, "PK\x03\x04")) return "a ZIP archive (or an office document)";
    if (starts_with(text, "<")) return "an XML or HTML document";
    if (mostly_text(head)) return "a text file";
    return "in a format the converter does not recognise";
}

}  // namespace mp3c::converter
