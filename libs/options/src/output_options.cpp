#include "mp3c/output_options.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <tuple>

#include "mp3c/strings.hpp"

namespace mp3c {

namespace {

const std::set<int> kBitrates = {64, 80, 96, 112, 128, 160, 192, 224, 256, 320};
const std::set<int> kSampleRates = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000};

std::optional<int> whole_number(std::string_view text) {
    text = trim(text);
    int v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return v;
}

// A level such as -16 or -14.5 (loudness, true peak), rounded to 0.1; nullopt for anything else.
std::optional<double> level(std::string_view text) {
    text = trim(text);
    if (text.empty() || text.size() > 12) return std::nullopt;
    if (!std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+'; }))
        return std::nullopt;
    std::string copy(text);
    char* end = nullptr;
    double v = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size() || !std::isfinite(v)) return std::nullopt;
    return std::round(v * 10) / 10;
}

std::string level_text(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", v);
    return text;
}

using TagField = std::optional<std::string> OutputTags::*;
// The tags' names in forms, flags and JSON, with FFmpeg's metadata key for each.
constexpr std::array<std::tuple<const char*, TagField, const char*>, 6> kTags = {{
    {"title", &OutputTags::title, "title"},
    {"artist", &OutputTags::artist, "artist"},
    {"album", &OutputTags::album, "album"},
    {"year", &OutputTags::year, "date"},
    {"track", &OutputTags::track, "track"},
    {"genre", &OutputTags::genre, "genre"},
}};

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// C1 controls (U+0080 to U+009F, such as NEL) and the line and paragraph separators (U+2028, U+2029), in text
// known to be valid UTF-8: line breaks that players and tag editors show in odd ways.
bool has_unicode_line_breaks_or_controls(std::string_view v) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(v[k]); };
    for (size_t i = 0; i + 1 < v.size(); ++i) {
        if (byte(i) == 0xC2 && byte(i + 1) >= 0x80 && byte(i + 1) <= 0x9F) return true;
        if (i + 2 < v.size() && byte(i) == 0xE2 && byte(i + 1) == 0x80 && (byte(i + 2) == 0xA8 || byte(i + 2) == 0xA9))
            return true;
    }
    return false;
}

std::optional<std::string> check_tag(std::string_view name, const std::string& value) {
    auto named = [&](const std::string& what) { return std::string(name) + " " + what; };
    if (value.empty() || trim(value) != value) return named("must not be empty or start or end with spaces");
    if (value.size() > OutputTags::kMaxTagBytes) {
        return named("must be at most " + std::to_string(OutputTags::kMaxTagBytes) + " bytes of UTF-8");
    }
    if (!is_valid_utf8(value)) return named("must be UTF-8 text");
    if (std::any_of(value.begin(), value.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }) ||
        has_unicode_line_breaks_or_controls(value))
        return named("must not contain control characters (line breaks, tabs)");
    if (name == "year" && (value.size() != 4 || !all_digits(value) || value == "0000"))
        return named("must be a year of four digits, such as 2024");
    if (name == "track") {
        auto parts = split(value, '/');
        auto number = [](std::string_view p) { return all_digits(p) && p.size() <= 4 ? std::stoi(std::string(p)) : 0; };
        int n = number(parts[0]), of = parts.size() == 2 ? number(parts[1]) : n;
        if (parts.size() > 2 || n < 1 || of < n)
            return named("must be n or n/N, with 1 <= n <= N <= 9999, such as 3/12");
    }
    return std::nullopt;
}

std::optional<int64_t> digits_value(std::string_view s) {
    if (!all_digits(s) || s.size() > 9) return std::nullopt;
    return std::stoll(std::string(s));
}

std::string seconds_text(int64_t ms) {
    std::string text = std::to_string(ms / 1000);
    if (ms % 1000 != 0) {
        std::string fraction = std::to_string(1000 + ms % 1000).substr(1);
        while (fraction.back() == '0') fraction.pop_back();
        text += "." + fraction;
    }
    return text;
}

}  // namespace

std::optional<int64_t> parse_trim_time(std::string_view text) {
    text = trim(text);
    int64_t fraction_ms = 0;
    if (auto dot = text.find('.'); dot != std::string_view::npos) {
        std::string_view fraction = text.substr(dot + 1);
        if (fraction.empty() || fraction.size() > 3 || !all_digits(fraction)) return std::nullopt;
        fraction_ms = std::stoll(std::string(fraction) + std::string(3 - fraction.size(), '0'));
        text = text.substr(0, dot);
    }
    auto parts = split(text, ':');
    if (parts.size() > 3) return std::nullopt;
    int64_t seconds = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
        auto v = digits_value(parts[i]);
        if (!v) return std::nullopt;
        // Below the first part, minutes and seconds are two digits under 60.
        if (i > 0 && (parts[i].size() != 2 || *v >= 60)) return std::nullopt;
        seconds = seconds * 60 + *v;
    }
    return seconds * 1000 + fraction_ms;
}

std::vector<std::pair<const char*, std::string>> OutputTags::ffmpeg_metadata() const {
    std::vector<std::pair<const char*, std::string>> metadata;
    for (auto [name, field, key] : kTags) {
        if (this->*field) metadata.emplace_back(key, *(this->*field));
    }
    return metadata;
}

nlohmann::json OutputOptions::to_json() const {
    auto value = [](const std::optional<int>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    nlohmann::json json = {{"bitrate", value(bitrate_kbps)},
                           {"quality", value(vbr_quality)},
                           {"channels", value(channels)},
                           {"sample_rate", value(sample_rate)}};
    if (start_ms) json["start"] = static_cast<double>(*start_ms) / 1000;
    if (end_ms) json["end"] = static_cast<double>(*end_ms) / 1000;
    if (chapters) json["chapters"] = *chapters;
    if (cover) json["cover"] = *cover;
    if (loudness_lufs) json["loudness"] = *loudness_lufs;
    if (true_peak_dbtp) json["true_peak"] = *true_peak_dbtp;
    if (!tags.empty()) {
        auto& t = json["tags"] = nlohmann::json::object();
        for (auto [name, field, key] : kTags) {
            if (tags.*field) t[name] = *(tags.*field);
        }
    }
    return json;
}

std::optional<OutputOptions> OutputOptions::from_json(const nlohmann::json& json) {
    if (json.is_null()) return OutputOptions{};
    if (!json.is_object()) return std::nullopt;
    OutputOptions o;
    for (auto [name, field] : {std::pair{"bitrate", &o.bitrate_kbps}, std::pair{"quality", &o.vbr_quality},
                               std::pair{"channels", &o.channels}, std::pair{"sample_rate", &o.sample_rate}}) {
        auto it = json.find(name);
        if (it == json.end() || it->is_null()) continue;
        if (!it->is_number_integer()) return std::nullopt;
        *field = it->get<int>();
    }
    for (auto [name, field] : {std::pair{"start", &o.start_ms}, std::pair{"end", &o.end_ms}}) {
        auto it = json.find(name);
        if (it == json.end() || it->is_null()) continue;
        if (!it->is_number()) return std::nullopt;
        double seconds = it->get<double>();
        if (!(seconds >= 0 && seconds <= static_cast<double>(kMaxTrimMs) / 1000)) return std::nullopt;
        *field = std::llround(seconds * 1000);
    }
    for (auto [name, field] : {std::pair{"chapters", &o.chapters}, std::pair{"cover", &o.cover}}) {
        auto c = json.find(name);
        if (c == json.end() || c->is_null()) continue;
        if (!c->is_string()) return std::nullopt;
        *field = c->get<std::string>();
    }
    for (auto [name, field] : {std::pair{"loudness", &o.loudness_lufs}, std::pair{"true_peak", &o.true_peak_dbtp}}) {
        auto it = json.find(name);
        if (it == json.end() || it->is_null()) continue;
        if (!it->is_number()) return std::nullopt;
        *field = it->get<double>();
    }
    if (auto t = json.find("tags"); t != json.end() && !t->is_null()) {
        if (!t->is_object()) return std::nullopt;
        for (auto [name, field, key] : kTags) {
            auto it = t->find(name);
            if (it == t->end() || it->is_null()) continue;
            if (!it->is_string()) return std::nullopt;
            o.tags.*field = it->get<std::string>();
        }
    }
    if (!check_output_options(o)) return std::nullopt;
    return o;
}

Check check_output_options(const OutputOptions& o) {
    if (o.bitrate_kbps && !kBitrates.count(*o.bitrate_kbps)) {
        return std::string("bitrate must be one of 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 (kb/s)");
    }
    if (o.vbr_quality && (*o.vbr_quality < 0 || *o.vbr_quality > 9)) {
        return std::string("quality must be a whole number from 0 (best) to 9 (smallest)");
    }
    if (o.bitrate_kbps && o.vbr_quality)
        return std::string("give either bitrate (constant) or quality (variable), not both");
    if (o.channels && *o.channels != 1 && *o.channels != 2)
        return std::string("channels must be 1 (mono) or 2 (stereo)");
    if (o.sample_rate && !kSampleRates.count(*o.sample_rate)) {
        return std::string(
            "sample_rate must be one of 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000 (Hz)");
    }
    for (auto [name, field] : {std::pair{"start", &o.start_ms}, std::pair{"end", &o.end_ms}}) {
        if (*field && (**field < 0 || **field > OutputOptions::kMaxTrimMs)) {
            return std::string(name) + " must be at most 24 hours (" + seconds_text(OutputOptions::kMaxTrimMs) + " s)";
        }
    }
    if (o.chapters && *o.chapters != "keep" && *o.chapters != "split" && *o.chapters != "none") {
        return std::string(
            "chapters must be keep (the source's, as ID3 chapters), split (one MP3 per chapter) or none");
    }
    if (o.cover && *o.cover != "auto" && *o.cover != "none") {
        return std::string("cover must be auto (the source's own picture) or none");
    }
    if (o.loudness_lufs &&
        !(*o.loudness_lufs >= OutputOptions::kMinLoudness && *o.loudness_lufs <= OutputOptions::kMaxLoudness)) {
        return "loudness must be from " + level_text(OutputOptions::kMinLoudness) + " to " +
               level_text(OutputOptions::kMaxLoudness) + " (LUFS; -16 for podcasts, -14 for streaming)";
    }
    if (o.true_peak_dbtp &&
        !(*o.true_peak_dbtp >= OutputOptions::kMinTruePeak && *o.true_peak_dbtp <= OutputOptions::kMaxTruePeak)) {
        return "true_peak must be from " + level_text(OutputOptions::kMinTruePeak) + " to " +
               level_text(OutputOptions::kMaxTruePeak) + " (dBTP)";
    }
    if (o.true_peak_dbtp && !o.loudness_lufs)
        return std::string("true_peak is the ceiling of loudness: give loudness too");
    if (o.end_ms && *o.end_ms == 0) return std::string("end must be after the start of the file");
    if (o.start_ms && o.end_ms && *o.end_ms <= *o.start_ms) {
        return "end (" + seconds_text(*o.end_ms) + " s) must be after start (" + seconds_text(*o.start_ms) + " s)";
    }
    for (auto [name, field, key] : kTags) {
        if (!(o.tags.*field)) continue;
        if (auto wrong = check_tag(name, *(o.tags.*field))) return *wrong;
    }
    return Ok{};
}

Result<OutputOptions, std::string> parse_output_options(const std::map<std::string, std::string>& fields) {
    OutputOptions o;
    for (auto [name, field] : {std::pair{"bitrate", &o.bitrate_kbps}, std::pair{"quality", &o.vbr_quality},
                               std::pair{"channels", &o.channels}, std::pair{"sample_rate", &o.sample_rate}}) {
        auto it = fields.find(name);
        if (it == fields.end() || trim(it->second).empty()) continue;
        auto v = whole_number(it->second);
        if (!v) return std::string(name) + " must be a whole number";
        *field = *v;
    }
    for (auto [name, field] : {std::pair{"start", &o.start_ms}, std::pair{"end", &o.end_ms}}) {
        auto it = fields.find(name);
        if (it == fields.end() || trim(it->second).empty()) continue;
        *field = parse_trim_time(it->second);
        if (!*field) {
            return std::string(name) + " must be seconds (90, 12.5) or [hh:]mm:ss[.fff] (1:30, 0:01:30.5)";
        }
    }
    for (auto [name, field] : {std::pair{"chapters", &o.chapters}, std::pair{"cover", &o.cover}}) {
        auto it = fields.find(name);
        if (it != fields.end() && !trim(it->second).empty()) *field = to_lower_ascii(trim(it->second));
    }
    if (auto it = fields.find("loudness");
        it != fields.end() && !trim(it->second).empty() && to_lower_ascii(trim(it->second)) != "off") {
        o.loudness_lufs = level(it->second);
        if (!o.loudness_lufs) return std::string("loudness must be a number of LUFS, such as -16, or off");
    }
    if (auto it = fields.find("true_peak"); it != fields.end() && !trim(it->second).empty()) {
        o.true_peak_dbtp = level(it->second);
        if (!o.true_peak_dbtp) return std::string("true_peak must be a number of dBTP, such as -1");
    }
    for (auto [name, field, key] : kTags) {
        auto it = fields.find(name);
        if (it == fields.end()) continue;
        if (auto value = trim(it->second); !value.empty()) o.tags.*field = std::string(value);
    }
    if (auto checked = check_output_options(o); !checked) return checked.error();
    return o;
}

OutputOptions OutputOptions::effective() const {
    OutputOptions e = *this;
    if (!e.vbr_quality && !e.bitrate_kbps) e.bitrate_kbps = kDefaultBitrateKbps;
    if (!e.sample_rate) e.sample_rate = kDefaultSampleRate;
    if (e.loudness_lufs && !e.true_peak_dbtp) e.true_peak_dbtp = kDefaultTruePeak;
    return e;
}

}  // namespace mp3c
