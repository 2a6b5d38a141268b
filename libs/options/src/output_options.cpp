#include "mp3c/output_options.hpp"

#include <charconv>
#include <set>

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

}  // namespace

nlohmann::json OutputOptions::to_json() const {
    auto value = [](const std::optional<int>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    return {{"bitrate", value(bitrate_kbps)},
            {"quality", value(vbr_quality)},
            {"channels", value(channels)},
            {"sample_rate", value(sample_rate)}};
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
    if (auto checked = check_output_options(o); !checked) return checked.error();
    return o;
}

OutputOptions OutputOptions::effective() const {
    OutputOptions e = *this;
    if (!e.vbr_quality && !e.bitrate_kbps) e.bitrate_kbps = kDefaultBitrateKbps;
    if (!e.sample_rate) e.sample_rate = kDefaultSampleRate;
    return e;
}

}  // namespace mp3c
