// libFuzzer target for the MP3 output options (libs/options/include/mp3c/output_options.hpp): the upload form's
// fields and the converter's flags. bench/fuzz-campaign builds and runs it.
//
// Input: name=value pairs separated by '&' (or by newlines, when there is one, so that values may hold '&'); a later
// pair wins. Accepted options must lie within the documented bounds and survive the video message's JSON (to_json,
// text, from_json) unchanged; every value is also a trim time, whose canonical forms must read back as themselves.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "mp3c/output_options.hpp"
#include "mp3c/strings.hpp"

namespace {

using mp3c::OutputOptions;
using mp3c::OutputTags;

using mp3c::fuzz::check;

bool digits(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; }

void check_trim_time(std::string_view text) {
    const auto ms = mp3c::parse_trim_time(text);
    if (!ms) return;
    check(*ms >= 0, "parse_trim_time: a negative time");
    char fraction[8];
    std::snprintf(fraction, sizeof fraction, ".%03d", static_cast<int>(*ms % 1000));
    const int64_t s = *ms / 1000;
    if (s <= 999'999'999) {  // the seconds form takes up to 9 digits
        check(mp3c::parse_trim_time(std::to_string(s) + fraction) == ms, "parse_trim_time: seconds form differs");
    }
    char clock[48];
    std::snprintf(clock, sizeof clock, "%lld:%02d:%02d%s", static_cast<long long>(s / 3600),
                  static_cast<int>(s / 60 % 60), static_cast<int>(s % 60), fraction);
    check(mp3c::parse_trim_time(clock) == ms, "parse_trim_time: hh:mm:ss.fff form differs");
}

bool tenths(double v) { return std::abs(v * 10 - std::round(v * 10)) < 1e-6; }

void check_tag(const std::string& v, bool is_year, bool is_track) {
    check(!v.empty() && v.size() <= OutputTags::kMaxTagBytes, "a tag empty or over 250 bytes");
    check(mp3c::trim(v) == v && mp3c::is_valid_utf8(v), "a tag with surrounding space, or not UTF-8");
    for (size_t i = 0; i < v.size(); ++i) {
        const auto c = static_cast<unsigned char>(v[i]);
        check(c >= 0x20 && c != 0x7f, "a tag with an ASCII control character");
        check(!(c == 0xC2 && i + 1 < v.size() && static_cast<unsigned char>(v[i + 1]) <= 0x9F),
              "a tag with a C1 control character");
        check(v.compare(i, 3, "\xE2\x80\xA8") != 0 && v.compare(i, 3, "\xE2\x80\xA9") != 0,
              "a tag with a Unicode line or paragraph separator");
    }
    if (is_year) check(v.size() == 4 && digits(v) && v != "0000", "a year that is not four digits");
    if (is_track) {
        const size_t slash = v.find('/');
        const std::string n = v.substr(0, slash), of = slash == std::string::npos ? n : v.substr(slash + 1);
        check(digits(n) && digits(of) && n.size() <= 4 && of.size() <= 4, "a track that is not n or n/N");
        check(std::stoi(n) >= 1 && std::stoi(n) <= std::stoi(of), "a track outside 1 <= n <= N");
    }
}

void check_bounds(const OutputOptions& o) {
    static const std::set<int> kBitrates = {64, 80, 96, 112, 128, 160, 192, 224, 256, 320};
    static const std::set<int> kRates = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000};
    check(!o.bitrate_kbps || kBitrates.count(*o.bitrate_kbps), "a bitrate MP3 does not have");
    check(!o.vbr_quality || (*o.vbr_quality >= 0 && *o.vbr_quality <= 9), "a quality outside 0..9");
    check(!(o.bitrate_kbps && o.vbr_quality), "both a bitrate and a quality");
    check(!o.channels || *o.channels == 1 || *o.channels == 2, "channels other than 1 or 2");
    check(!o.sample_rate || kRates.count(*o.sample_rate), "a sample rate MP3 does not have");
    check(!o.start_ms || (*o.start_ms >= 0 && *o.start_ms <= OutputOptions::kMaxTrimMs), "start outside 0..24 h");
    check(!o.end_ms || (*o.end_ms > 0 && *o.end_ms <= OutputOptions::kMaxTrimMs), "end outside (0, 24 h]");
    check(!o.start_ms || !o.end_ms || *o.start_ms < *o.end_ms, "end not after start");
    check(!o.chapters || *o.chapters == "keep" || *o.chapters == "split" || *o.chapters == "none", "chapters");
    check(!o.cover || *o.cover == "auto" || *o.cover == "none", "cover other than auto or none");
    check(!o.loudness_lufs || (*o.loudness_lufs >= OutputOptions::kMinLoudness &&
                               *o.loudness_lufs <= OutputOptions::kMaxLoudness && tenths(*o.loudness_lufs)),
          "loudness outside -31..-5 LUFS, or not to 0.1");
    check(!o.true_peak_dbtp || (*o.true_peak_dbtp >= OutputOptions::kMinTruePeak &&
                                *o.true_peak_dbtp <= OutputOptions::kMaxTruePeak && tenths(*o.true_peak_dbtp)),
          "true_peak outside -9..0 dBTP, or not to 0.1");
    check(!o.true_peak_dbtp || o.loudness_lufs, "a true_peak without a loudness");
    for (const auto* tag : {&o.tags.title, &o.tags.artist, &o.tags.album, &o.tags.genre})
        if (*tag) check_tag(**tag, false, false);
    if (o.tags.year) check_tag(*o.tags.year, true, false);
    if (o.tags.track) check_tag(*o.tags.track, false, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const char separator = input.find('\n') != std::string_view::npos ? '\n' : '&';
    std::map<std::string, std::string> fields;
    for (std::string_view pair : mp3c::split(input, separator)) {
        const size_t eq = pair.find('=');
        if (eq != std::string_view::npos) fields[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
    }
    check_trim_time(input);
    for (const auto& [name, value] : fields) check_trim_time(value);

    const auto parsed = mp3c::parse_output_options(fields);
    if (!parsed) {
        check(!parsed.error().empty(), "options refused without a reason");
        return 0;
    }
    const OutputOptions& o = parsed.value();
    check_bounds(o);
    check(mp3c::check_output_options(o).ok(), "accepted options that check_output_options refuses");

    // The video message carries the options as JSON text.
    const nlohmann::json json = o.to_json();
    const auto back = OutputOptions::from_json(nlohmann::json::parse(json.dump()));
    check(back.has_value(), "from_json refuses what to_json wrote");
    check(back->to_json() == json && back->tags == o.tags, "the options changed through JSON");

    const OutputOptions effective = o.effective();
    check(effective.bitrate_kbps.has_value() != effective.vbr_quality.has_value(), "effective: not exactly one mode");
    check(effective.sample_rate && (!effective.loudness_lufs || effective.true_peak_dbtp), "effective: a gap");
    check(mp3c::check_output_options(effective).ok(), "effective options that check_output_options refuses");
    size_t tags = 0;
    for (const auto* tag : {&o.tags.title, &o.tags.artist, &o.tags.album, &o.tags.year, &o.tags.track, &o.tags.genre})
        tags += tag->has_value();
    check(o.tags.ffmpeg_metadata().size() == tags, "ffmpeg_metadata does not carry every tag");
    return 0;
}
