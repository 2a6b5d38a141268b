#pragma once

// The converter tests' media, made at test time with the ffmpeg command line, and what they ask of ffprobe and ffmpeg
// about the results.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mp3c/crypto.hpp"
#include "mp3c/testing/process.hpp"
#include "transcoder.hpp"

namespace mp3c::converter::test {

namespace fs = std::filesystem;

inline const std::string kBinary = std::string(MP3C_BIN_DIR) + "/converter";

class Corpus {
  public:
    Corpus() : dir_(fs::temp_directory_path() / ("mp3c-corpus-" + crypto::random_hex(6))) {
        fs::create_directories(dir_);
    }
    ~Corpus() {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    // Runs ffmpeg to make `name` in the corpus directory.
    std::string make(const std::string& name, const std::vector<std::string>& args) {
        std::vector<std::string> all = {"-hide_banner", "-loglevel", "error", "-y"};
        all.insert(all.end(), args.begin(), args.end());
        std::string path = (dir_ / name).string();
        all.push_back(path);
        auto r = testing::run_command("/usr/bin/ffmpeg", all, {});
        if (r.status != 0) throw std::runtime_error("ffmpeg failed for " + name + ": " + r.out);
        return path;
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    const fs::path& dir() const { return dir_; }

  private:
    fs::path dir_;
};

inline nlohmann::json probe(const std::string& path) {
    auto r =
        testing::run_command("/usr/bin/ffprobe",
                             {"-v", "error", "-show_entries",
                              "stream=codec_name,sample_rate,channels,bit_rate:format=duration,bit_rate,format_name:"
                              "format_tags=title,artist,album,date,track,genre",
                              "-of", "json", path},
                             {});
    if (r.status != 0) throw std::runtime_error("ffprobe failed: " + r.out);
    return nlohmann::json::parse(r.out);
}

// The length of a file's (first) audio track as FFmpeg decodes it, honouring gapless information (an MP3's LAME
// header, an MP4's edit list): what a listener hears.
inline double decoded_seconds(const std::string& path) {
    auto r = testing::run_command(
        "/usr/bin/ffmpeg",
        {"-hide_banner", "-nostats", "-i", path, "-map", "0:a:0", "-f", "null", "-progress", "pipe:1", "-"}, {});
    auto at = r.out.rfind("out_time_us=");
    if (r.status != 0 || at == std::string::npos)
        throw std::runtime_error("ffmpeg could not decode " + path + ": " + r.out);
    return std::stod(r.out.substr(at + 12)) / 1e6;
}

inline ConversionResult convert_file(const std::string& in, const std::string& out, const OutputOptions& options = {},
                                     const Limits& limits = {}) {
    FileInput input(in);
    FileOutput output(out);
    auto result = convert(input, output, options, limits);
    output.commit();
    return result;
}

// Sine audio of exactly 3 s at the given rate; -shortest keeps the video no longer than the audio.
inline std::vector<std::string> sine(int rate = 48000, double seconds = 3) {
    return {"-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=" + std::to_string(rate) + ":duration=" + std::to_string(seconds)};
}
inline std::vector<std::string> video() { return {"-f", "lavfi", "-i", "testsrc=size=128x96:rate=10:duration=3"}; }
inline std::vector<std::string> concat(std::initializer_list<std::vector<std::string>> parts) {
    std::vector<std::string> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

}  // namespace mp3c::converter::test
