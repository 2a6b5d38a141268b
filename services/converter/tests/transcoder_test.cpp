// The transcoder on a media corpus made at test time with the ffmpeg command line; every MP3 is checked with ffprobe.
#include "transcoder.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>
#include <tuple>

#include "hostile_media.hpp"
#include "input_format.hpp"
#include "media_corpus.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/testing/process.hpp"
#include "temporary_file.hpp"

namespace mp3c::converter {
namespace {

namespace fs = std::filesystem;
using namespace test;

struct Case {
    std::string name;  // file name, its extension chooses the container
    std::vector<std::string> args;
    int expected_channels;
    double tolerance = 0.05;  // seconds between the MP3's length and the source's
};

class FormatTest : public ::testing::TestWithParam<Case> {
  protected:
    static Corpus* corpus_;
    static void SetUpTestSuite() { corpus_ = new Corpus(); }
    static void TearDownTestSuite() {
        delete corpus_;
        corpus_ = nullptr;
    }
};
Corpus* FormatTest::corpus_ = nullptr;

TEST_P(FormatTest, ConvertsToAValidMp3WithTheSourceDuration) {
    const Case& c = GetParam();
    std::string in = corpus_->make(c.name, c.args);
    std::string out = corpus_->path(c.name + ".mp3");
    auto result = convert_file(in, out);
    auto info = probe(out);
    // The audio, and for a video a cover made from one of its frames (an MJPEG attached picture).
    nlohmann::json stream;
    size_t audio = 0;
    for (const auto& s : info["streams"]) {
        if (s["codec_name"] == "mp3") {
            stream = s;
            ++audio;
        } else {
            EXPECT_EQ(s["codec_name"], "mjpeg") << info.dump();
        }
    }
    ASSERT_EQ(audio, 1u) << info.dump();
    EXPECT_LE(info["streams"].size(), 2u) << info.dump();
    EXPECT_EQ(stream["sample_rate"], "44100");
    EXPECT_EQ(stream["channels"], c.expected_channels);
    EXPECT_EQ(stream["bit_rate"], "192000");
    double source = decoded_seconds(in);
    EXPECT_NEAR(decoded_seconds(out), source, c.tolerance) << "the MP3 lasts as long as the source's audio";
    EXPECT_NEAR(result.duration_seconds, source, c.tolerance);
    EXPECT_FALSE(fs::exists(out + ".part"));
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, FormatTest,
    ::testing::Values(
        Case{"h264_aac_faststart.mp4",
             concat({video(),
                     sine(),
                     {"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-movflags", "+faststart"}}),
             1},
        Case{"h264_aac_index_at_end.mp4",
             concat({video(), sine(), {"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"}}), 1},
        Case{"opus.mkv", concat({sine(), {"-c:a", "libopus"}}), 1},
        Case{"vorbis.webm", concat({sine(), {"-c:a", "libvorbis"}}), 1},
        Case{"pcm.mov", concat({sine(), {"-c:a", "pcm_s16le"}}), 1},
        Case{"mp3.avi", concat({video(), sine(), {"-c:v", "mpeg4", "-c:a", "libmp3lame"}}), 1},
        Case{"video.flv", concat({video(), sine(44100), {"-c:v", "flv", "-c:a", "aac"}}), 1},
        Case{"audio.wav", sine(), 1}, Case{"audio.flac", sine(), 1},
        Case{"aac.m4a", concat({sine(), {"-c:a", "aac"}}), 1},
        Case{"surround.flac", concat({sine(), {"-af", "aformat=channel_layouts=5.1"}}), 2},
        Case{"stereo_96k.flac", concat({sine(96000), {"-ac", "2"}}), 2}, Case{"mono_8k.wav", sine(8000), 1},
        // Every other family on the allow-list that Debian's ffmpeg can write (docs/architecture.md, untrusted media).
        Case{"h264_aac.ts", concat({video(), sine(), {"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"}}), 1},
        Case{"mpeg1_mp2.mpg", concat({video(), sine(44100), {"-c:v", "mpeg1video", "-r", "25", "-c:a", "mp2"}}), 1},
        // FFmpeg counts the WMA encoder's padding (65 ms here) as audio; the MP3 leaves it out.
        Case{"wmv_wma.wmv", concat({video(), sine(44100), {"-c:v", "wmv2", "-c:a", "wmav2"}}), 1, 0.1},
        Case{"h264_aac.3gp", concat({video(), sine(44100), {"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"}}),
             1},
        Case{"vorbis.ogg", concat({sine(), {"-c:a", "libvorbis"}}), 1},
        Case{"opus.opus", concat({sine(), {"-c:a", "libopus"}}), 1},
        Case{"audio.mp3", concat({sine(44100), {"-c:a", "libmp3lame"}}), 1},
        Case{"adts.aac", concat({sine(), {"-c:a", "aac"}}), 1}, Case{"audio.aiff", sine(), 1},
        Case{"alac.caf", concat({sine(), {"-c:a", "alac"}}), 1}, Case{"audio.w64", sine(), 1},
        Case{"audio.ac3", concat({sine(), {"-c:a", "ac3"}}), 1},
        Case{"audio.eac3", concat({sine(), {"-c:a", "eac3"}}), 1},
        Case{"audio.wv", concat({sine(), {"-c:a", "wavpack"}}), 1}),
    [](const ::testing::TestParamInfo<Case>& info) {
        std::string name = info.param.name;
        for (auto& ch : name)
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        return name;
    });

class TranscoderTest : public ::testing::Test {
  protected:
    Corpus corpus_;
};

TEST_F(TranscoderTest, OptionsApply) {
    std::string in = corpus_.make("stereo.flac", concat({sine(), {"-ac", "2"}}));
    OutputOptions options;
    options.bitrate_kbps = 128;
    options.channels = 1;
    options.sample_rate = 22050;
    convert_file(in, corpus_.path("a.mp3"), options);
    auto s = probe(corpus_.path("a.mp3"))["streams"][0];
    EXPECT_EQ(s["bit_rate"], "128000");
    EXPECT_EQ(s["channels"], 1);
    EXPECT_EQ(s["sample_rate"], "22050");

    OutputOptions vbr;
    vbr.vbr_quality = 2;
    auto result = convert_file(in, corpus_.path("vbr.mp3"), vbr);
    EXPECT_EQ(probe(corpus_.path("vbr.mp3"))["streams"][0]["codec_name"], "mp3");
    EXPECT_EQ(result.channels, 2);
}

TEST_F(TranscoderTest, TagsBecomeId3) {
    std::string in =
        corpus_.make("tagged.m4a", concat({sine(),
                                           {"-c:a", "aac", "-metadata", "title=Night Drive", "-metadata", "artist=Zoë",
                                            "-metadata", "album=Roads", "-metadata", "date=2024"}}));
    convert_file(in, corpus_.path("tagged.mp3"));
    auto tags = probe(corpus_.path("tagged.mp3"))["format"]["tags"];
    EXPECT_EQ(tags["title"], "Night Drive");
    EXPECT_EQ(tags["artist"], "Zoë");
    EXPECT_EQ(tags["album"], "Roads");
    EXPECT_EQ(tags["date"], "2024");

    OutputOptions options;
    options.tags.title = "Nuit étoilée — 夜";
    options.tags.year = "1999";
    options.tags.track = "3/12";
    options.tags.genre = "Ambient";
    convert_file(in, corpus_.path("retagged.mp3"), options);
    tags = probe(corpus_.path("retagged.mp3"))["format"]["tags"];
    EXPECT_EQ(tags["title"], "Nuit étoilée — 夜") << "the user's tags override the source's";
    EXPECT_EQ(tags["date"], "1999");
    EXPECT_EQ(tags["track"], "3/12");
    EXPECT_EQ(tags["genre"], "Ambient");
    EXPECT_EQ(tags["artist"], "Zoë") << "and the source's fill the rest";
    EXPECT_EQ(tags["album"], "Roads");
}

// The loudest sample, in dB, of `duration` seconds of a file's audio from `from` (ffmpeg's volumedetect).
double max_volume(const std::string& path, double from, double duration) {
    auto r = testing::run_command(
        "/usr/bin/ffmpeg",
        {"-hide_banner", "-nostats", "-i", path, "-af",
         "atrim=start=" + std::to_string(from) + ":duration=" + std::to_string(duration) + ",volumedetect", "-f",
         "null", "-"},
        {});
    auto at = r.out.rfind("max_volume: ");
    if (r.status != 0 || at == std::string::npos) throw std::runtime_error("volumedetect failed: " + r.out);
    return std::stod(r.out.substr(at + 12));
}

TEST_F(TranscoderTest, TrimKeepsExactlyThePartAsked) {
    // 4 s of silence, then 4 s of a tone: where a cut falls can be heard.
    auto source = [](int rate) {
        return std::vector<std::string>{
            "-f", "lavfi", "-i",
            "aevalsrc=if(gte(t\\,4)\\,0.5*sin(2*PI*440*t)\\,0):s=" + std::to_string(rate) + ":d=8"};
    };
    const double mp3_frame = 1152.0 / 44100;
    std::string flac = corpus_.make("halves.flac", source(44100));
    std::string m4a = corpus_.make("halves.m4a", concat({source(48000), {"-c:a", "aac"}}));
    for (const std::string& in : {flac, m4a}) {
        SCOPED_TRACE(in);
        OutputOptions tone;  // a cut at an MP3 frame boundary (4 s = 172.27 frames: not one) and one inside a frame
        tone.start_ms = 4000;
        tone.end_ms = 6321;
        auto result = convert_file(in, corpus_.path("tone.mp3"), tone);
        EXPECT_NEAR(result.duration_seconds, 2.321, 1.0 / 44100 * 2);
        EXPECT_NEAR(decoded_seconds(corpus_.path("tone.mp3")), 2.321, mp3_frame);
        EXPECT_GT(max_volume(corpus_.path("tone.mp3"), 0, 0.05), -10) << "begins with the tone, not the silence";

        OutputOptions silence;
        silence.end_ms = 3950;
        convert_file(in, corpus_.path("silence.mp3"), silence);
        EXPECT_NEAR(decoded_seconds(corpus_.path("silence.mp3")), 3.95, mp3_frame);
        EXPECT_LT(max_volume(corpus_.path("silence.mp3"), 0, 3.9), -50) << "ends before the tone";

        OutputOptions past;  // an end past the end of the source keeps the rest
        past.start_ms = 7500;
        past.end_ms = 60000;
        convert_file(in, corpus_.path("tail.mp3"), past);
        EXPECT_NEAR(decoded_seconds(corpus_.path("tail.mp3")), 0.5, mp3_frame);

        OutputOptions after;
        after.start_ms = 9000;
        try {
            convert_file(in, corpus_.path("none.mp3"), after);
            ADD_FAILURE() << "a start after the end";
        } catch (const ConversionError& e) {
            EXPECT_EQ(e.kind(), ConversionError::Kind::trim_out_of_range);
            EXPECT_NE(std::string(e.what()).find("start (9 s) is not before the end of the audio (8"),
                      std::string::npos)
                << e.what();
        }
    }
}

TEST_F(TranscoderTest, TheWaveformShowsTheMp3sSilenceAndTone) {
    // 2 s of silence, then 4 s of a tone at half scale, in a video; the waveform is of the MP3's audio, so a trim
    // moves it (the tone starts at 1 s of the trimmed MP3).
    std::string in =
        corpus_.make("waveform.mkv", {"-f", "lavfi", "-i", "testsrc=size=128x96:rate=10:duration=6", "-f", "lavfi",
                                      "-i", "aevalsrc=if(gte(t\\,2)\\,0.5*sin(2*PI*440*t)\\,0):s=44100:d=6", "-c:v",
                                      "mpeg4", "-c:a", "flac"});
    for (std::optional<int64_t> start : {std::optional<int64_t>(), std::optional<int64_t>(1000)}) {
        OutputOptions options;
        options.start_ms = start;
        auto result = convert_file(in, corpus_.path("waveform.mp3"), options);
        const auto& w = result.waveform;
        ASSERT_FALSE(w.peaks.empty());
        EXPECT_NEAR(w.seconds_per_point * static_cast<double>(w.peaks.size()), result.duration_seconds,
                    w.seconds_per_point);
        EXPECT_GE(w.peaks.size(), 300u) << "enough points to draw";
        double tone_at = start ? 1.0 : 2.0;
        for (size_t i = 0; i < w.peaks.size(); ++i) {
            double t = static_cast<double>(i) * w.seconds_per_point;
            if (t + w.seconds_per_point < tone_at - 0.05) {
                ASSERT_LT(w.peaks[i], 0.01) << "silence at " << t << " s";
            } else if (t > tone_at + 0.05 && t < result.duration_seconds - 0.1) {
                ASSERT_NEAR(w.peaks[i], 0.5, 0.02) << "the tone at " << t << " s";
            }
        }
    }
}

// The integrated loudness (LUFS) and true peak (dBTP) of a file, by FFmpeg's own EBU R128 meter.
std::pair<double, double> r128_of(const std::string& path) {
    auto r = testing::run_command(
        "/usr/bin/ffmpeg", {"-hide_banner", "-nostats", "-i", path, "-af", "ebur128=peak=true", "-f", "null", "-"}, {});
    auto i = r.out.rfind("I:"), peak = r.out.rfind("Peak:");
    if (r.status != 0 || i == std::string::npos || peak == std::string::npos) {
        throw std::runtime_error("ebur128 failed: " + r.out);
    }
    return {std::stod(r.out.substr(i + 2)), std::stod(r.out.substr(peak + 5))};
}

TEST_F(TranscoderTest, LoudnessIsNormalisedToTheTargetUnderTheTruePeakCeiling) {
    // A quiet tone with a loud 3 ms burst every second (together about -26 LUFS): brought to -16 LUFS, the bursts would
    // go far over full scale, so the limiter holds them under -1 dBTP.
    std::string quiet = corpus_.make(
        "quiet.flac",
        {"-f", "lavfi", "-i",
         "aevalsrc=0.03*sin(2*PI*440*t)+if(lt(mod(t\\,1)\\,0.003)\\,0.9*sin(2*PI*3000*t)\\,0):s=48000:d=20"});
    OutputOptions podcast;
    podcast.loudness_lufs = -16;
    auto result = convert_file(quiet, corpus_.path("podcast.mp3"), podcast);
    ASSERT_TRUE(result.loudness);
    const auto& l = *result.loudness;
    EXPECT_LT(*l.input_lufs, -20);
    EXPECT_GT(*l.input_true_peak_dbtp, -2) << "the bursts";
    EXPECT_TRUE(l.limited);
    EXPECT_NEAR(*l.output_lufs, -16, 0.5);
    EXPECT_LE(*l.output_true_peak_dbtp, -1.0);
    EXPECT_NEAR(result.duration_seconds, 20, 0.05) << "the limiter's delay costs no audio";
    auto [lufs, peak] = r128_of(corpus_.path("podcast.mp3"));
    EXPECT_NEAR(lufs, -16, 1) << "the MP3 itself, measured by FFmpeg";
    EXPECT_LT(peak, -0.3) << "the MP3 does not clip (its encoding may add a little over the ceiling)";
    EXPECT_LT(max_volume(corpus_.path("podcast.mp3"), 0.5, 0.4), -10) << "between bursts only the tone, raised";

    // Loud noise (about -10 LUFS) down to -23 with a -2 dBTP ceiling: a gain alone does it.
    std::string loud = corpus_.make(
        "loud.wav", {"-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.9:seed=3:r=44100:d=8", "-ac", "2"});
    OutputOptions broadcast;
    broadcast.loudness_lufs = -23;
    broadcast.true_peak_dbtp = -2;
    result = convert_file(loud, corpus_.path("broadcast.mp3"), broadcast);
    ASSERT_TRUE(result.loudness);
    EXPECT_LT(result.loudness->gain_db, -5);
    EXPECT_FALSE(result.loudness->limited);
    EXPECT_NEAR(*result.loudness->output_lufs, -23, 0.2);
    EXPECT_NEAR(r128_of(corpus_.path("broadcast.mp3")).first, -23, 1);

    // Silence has no loudness to measure: it is left as it is, and said so.
    std::string silence = corpus_.make("silence.wav", {"-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "3"});
    result = convert_file(silence, corpus_.path("silence.mp3"), podcast);
    ASSERT_TRUE(result.loudness);
    EXPECT_FALSE(result.loudness->input_lufs);
    EXPECT_EQ(result.loudness->gain_db, 0);
    EXPECT_NEAR(result.duration_seconds, 3, 0.05);
}

TEST_F(TranscoderTest, TrimFarInSeeksInsteadOfDecodingEverythingBefore) {
    // A minute: silence until 30 s, then a tone.
    std::vector<std::string> source = {"-f", "lavfi", "-i",
                                       "aevalsrc=if(gte(t\\,30)\\,0.5*sin(2*PI*440*t)\\,0):s=44100:d=60"};
    const double mp3_frame = 1152.0 / 44100;
    for (const auto& [name, codec] : std::vector<std::pair<std::string, std::vector<std::string>>>{
             {"minute.flac", {}},
             {"minute.m4a", {"-c:a", "aac"}},
             {"minute.mkv", {"-c:a", "libopus"}},
             {"minute.mp3", {"-c:a", "libmp3lame", "-q:a", "4"}},
             {"minute.wav", {}}}) {
        SCOPED_TRACE(name);
        std::string in = corpus_.make(name, concat({source, codec}));
        OutputOptions around;  // 0.1 s of silence, then 0.3 s of the tone
        around.start_ms = 29900;
        around.end_ms = 30300;
        auto result = convert_file(in, corpus_.path("around.mp3"), around);
        EXPECT_NEAR(decoded_seconds(corpus_.path("around.mp3")), 0.4, mp3_frame);
        EXPECT_LT(result.decoded_seconds, 10)
            << "seeked: not the 30 s before; the pre-roll, the part kept, and up to a "
               "cluster more in Matroska";
        EXPECT_LT(max_volume(corpus_.path("around.mp3"), 0, 0.06), -30) << "the silence before 30 s";
        EXPECT_GT(max_volume(corpus_.path("around.mp3"), 0.14, 0.1), -10) << "the tone from 30 s";

        OutputOptions beyond;  // the seek finds nothing to keep: the job says how long the audio is
        beyond.start_ms = 70000;
        try {
            convert_file(in, corpus_.path("beyond.mp3"), beyond);
            ADD_FAILURE() << "a start after the end";
        } catch (const ConversionError& e) {
            EXPECT_EQ(e.kind(), ConversionError::Kind::trim_out_of_range) << e.what();
            EXPECT_NE(std::string(e.what()).find("start (70 s) is not before the end of the audio (60"),
                      std::string::npos)
                << e.what();
        }
    }
}

// A 10 s tone with `count` chapters of equal length, titled "Part N" (the first with non-ASCII), made from an
// ffmetadata file.
std::string with_chapters(Corpus& corpus, const std::string& name, int count) {
    std::string metadata = ";FFMETADATA1\n";
    for (int i = 0; i < count; ++i) {
        metadata += "[CHAPTER]\nTIMEBASE=1/1000\nSTART=" + std::to_string(i * 10000 / count) +
                    "\nEND=" + std::to_string((i + 1) * 10000 / count) +
                    "\ntitle=" + (i == 0 ? std::string("Ouverture — été") : "Part " + std::to_string(i + 1)) + "\n";
    }
    std::ofstream(corpus.path(name + ".txt")) << metadata;
    return corpus.make(name, concat({sine(44100, 10),
                                     {"-f", "ffmetadata", "-i", corpus.path(name + ".txt"), "-map", "0:a",
                                      "-map_chapters", "1", "-c:a", "aac"}}));
}

nlohmann::json chapters_of(const std::string& path) {
    auto r = testing::run_command("/usr/bin/ffprobe", {"-v", "error", "-show_chapters", "-of", "json", path}, {});
    if (r.status != 0) throw std::runtime_error("ffprobe failed: " + r.out);
    return nlohmann::json::parse(r.out)["chapters"];
}

TEST_F(TranscoderTest, ChaptersAreKeptWithTheirTitlesAndFollowTheTrim) {
    std::string in = with_chapters(corpus_, "lecture.m4a", 4);
    convert_file(in, corpus_.path("lecture.mp3"));
    auto chapters = chapters_of(corpus_.path("lecture.mp3"));
    ASSERT_EQ(chapters.size(), 4u) << chapters.dump();
    EXPECT_EQ(chapters[0]["tags"]["title"], "Ouverture — été");
    EXPECT_EQ(chapters[3]["tags"]["title"], "Part 4");
    EXPECT_EQ(chapters[1]["start_time"], "2.500000");
    EXPECT_EQ(chapters[3]["end_time"], "10.000000");

    OutputOptions trimmed;  // 3 s to 8 s: the second chapter from its middle, the fourth cut short
    trimmed.start_ms = 3000;
    trimmed.end_ms = 8000;
    convert_file(in, corpus_.path("middle.mp3"), trimmed);
    chapters = chapters_of(corpus_.path("middle.mp3"));
    ASSERT_EQ(chapters.size(), 3u) << chapters.dump();
    EXPECT_EQ(chapters[0]["tags"]["title"], "Part 2");
    EXPECT_EQ(chapters[0]["start_time"], "0.000000");
    EXPECT_EQ(chapters[0]["end_time"], "2.000000");
    EXPECT_EQ(chapters[2]["tags"]["title"], "Part 4");
    EXPECT_EQ(chapters[2]["end_time"], "5.000000");

    OutputOptions none;
    none.chapters = "none";
    convert_file(in, corpus_.path("none.mp3"), none);
    EXPECT_TRUE(chapters_of(corpus_.path("none.mp3")).empty());

    std::string one = with_chapters(corpus_, "one.m4a", 1);
    convert_file(one, corpus_.path("one.mp3"));
    EXPECT_EQ(chapters_of(corpus_.path("one.mp3")).size(), 1u);

    std::string many = with_chapters(corpus_, "many.m4a", 200);
    convert_file(many, corpus_.path("many.mp3"));
    chapters = chapters_of(corpus_.path("many.mp3"));
    ASSERT_EQ(chapters.size(), 200u);
    EXPECT_EQ(chapters[199]["tags"]["title"], "Part 200");
    EXPECT_EQ(chapters[199]["start_time"], "9.950000");

    std::string too_many = with_chapters(corpus_, "too_many.m4a", 300);
    convert_file(too_many, corpus_.path("too_many.mp3"));
    EXPECT_EQ(chapters_of(corpus_.path("too_many.mp3")).size(), 255u)
        << "the first 255: ID3's table of contents counts them in one byte";
}

// Parts into a directory, as "NN - title.mp3".
class PartDirectory : public PartSink {
  public:
    explicit PartDirectory(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
    std::unique_ptr<MediaOutput> open(const PartPlan& plan) override {
        plans.push_back(plan);
        return std::make_unique<FileOutput>(path(plan));
    }
    messages::Part commit(const PartPlan& plan, MediaOutput& output) override {
        static_cast<FileOutput&>(output).commit();
        return {.size = fs::file_size(path(plan)), .fid = "local"};
    }
    std::string path(const PartPlan& plan) const {
        return (dir_ / messages::part_filename(plan.index, plan.count, plan.title)).string();
    }
    std::vector<PartPlan> plans;

  private:
    fs::path dir_;
};

ConversionResult split_file(const std::string& in, const std::string& out, PartDirectory& parts,
                            OutputOptions options = {}) {
    options.chapters = "split";
    FileInput input(in);
    FileOutput output(out);
    auto result = convert(input, output, options, {}, nullptr, &parts);
    output.commit();
    return result;
}

TEST_F(TranscoderTest, SplitMakesOneMp3PerChapterWithItsOwnTagsBesideTheWhole) {
    constexpr double kFrame = 1152.0 / 44100;  // one MP3 frame at the output's rate
    std::string in = with_chapters(corpus_, "lecture.m4a", 4);
    OutputOptions trimmed;  // 3 s to 8 s: parts of 2, 2.5 and 0.5 s
    trimmed.start_ms = 3000;
    trimmed.end_ms = 8000;
    trimmed.tags.artist = "Prof. Ünal";
    PartDirectory parts(corpus_.dir() / "lecture");
    auto result = split_file(in, corpus_.path("lecture.mp3"), parts, trimmed);
    ASSERT_EQ(result.parts.size(), 3u);
    EXPECT_EQ(chapters_of(corpus_.path("lecture.mp3")).size(), 3u) << "the whole keeps its chapters";
    const double lengths[] = {2, 2.5, 0.5};
    const char* titles[] = {"Part 2", "Part 3", "Part 4"};
    double sum = 0;
    for (size_t i = 0; i < 3; ++i) {
        const auto& part = result.parts[i];
        EXPECT_EQ(part.index, static_cast<int>(i) + 1);
        EXPECT_EQ(part.title, titles[i]);
        EXPECT_NEAR(part.duration_seconds, lengths[i], 0.001);
        EXPECT_NEAR(part.start_seconds, sum, 0.001);
        std::string path = parts.path(parts.plans[i]);
        EXPECT_EQ(fs::path(path).filename().string(), "0" + std::to_string(i + 1) + " - " + titles[i] + ".mp3");
        EXPECT_EQ(part.size, fs::file_size(path));
        EXPECT_NEAR(decoded_seconds(path), lengths[i], kFrame) << path;
        auto tags = probe(path)["format"]["tags"];
        EXPECT_EQ(tags["title"], titles[i]);
        EXPECT_EQ(tags["track"], std::to_string(i + 1) + "/3");
        EXPECT_EQ(tags["artist"], "Prof. Ünal") << "the job's tags go to every part";
        EXPECT_TRUE(chapters_of(path).empty());
        sum += lengths[i];
    }
    EXPECT_NEAR(decoded_seconds(corpus_.path("lecture.mp3")), sum, kFrame);

    // One chapter: one part, the whole length; no chapters: no parts, the whole as usual.
    PartDirectory one(corpus_.dir() / "one");
    auto single = split_file(with_chapters(corpus_, "one.m4a", 1), corpus_.path("one.mp3"), one);
    ASSERT_EQ(single.parts.size(), 1u);
    EXPECT_EQ(fs::path(one.path(one.plans[0])).filename().string(), "01 - Ouverture — été.mp3");
    EXPECT_NEAR(decoded_seconds(one.path(one.plans[0])), 10, kFrame);
    PartDirectory none(corpus_.dir() / "none");
    auto plain = split_file(corpus_.make("plain.flac", sine(44100, 2)), corpus_.path("plain.mp3"), none);
    EXPECT_TRUE(plain.parts.empty());
    EXPECT_NEAR(decoded_seconds(corpus_.path("plain.mp3")), 2, kFrame);

    // 200 chapters of 50 ms: 200 parts, numbered with three digits, each within a frame of its length.
    PartDirectory many(corpus_.dir() / "many");
    auto lots = split_file(with_chapters(corpus_, "many.m4a", 200), corpus_.path("many.mp3"), many);
    ASSERT_EQ(lots.parts.size(), 200u);
    EXPECT_EQ(fs::path(many.path(many.plans[199])).filename().string(), "200 - Part 200.mp3");
    EXPECT_EQ(fs::path(many.path(many.plans[8])).filename().string(), "009 - Part 9.mp3");
    for (int i : {0, 99, 199}) EXPECT_NEAR(decoded_seconds(many.path(many.plans[i])), 0.05, kFrame) << i;
    EXPECT_EQ(probe(many.path(many.plans[199]))["format"]["tags"]["track"], "200/200");
}

TEST_F(TranscoderTest, SplitPartsShareTheWholesLoudnessGainAndItsOutputLimit) {
    // A quiet source, normalised: every part gets the whole's gain (parts of one recording keep their balance).
    std::string metadata =
        ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=4000\ntitle=Quiet\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=4000\nEND=8000\ntitle=Loud\n";
    std::ofstream(corpus_.path("two.txt")) << metadata;
    std::string in =
        corpus_.make("two.m4a", {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=8", "-f",
                                 "ffmetadata", "-i", corpus_.path("two.txt"), "-map", "0:a", "-map_chapters", "1",
                                 "-af", "volume='if(lt(t,4),0.05,0.2)':eval=frame", "-c:a", "aac"});
    OutputOptions loud;
    loud.loudness_lufs = -16;
    PartDirectory parts(corpus_.dir() / "two");
    auto result = split_file(in, corpus_.path("two.mp3"), parts, loud);
    ASSERT_TRUE(result.loudness);
    ASSERT_EQ(result.parts.size(), 2u);
    double quiet = max_volume(parts.path(parts.plans[0]), 0.5, 3),
           louder = max_volume(parts.path(parts.plans[1]), 0.5, 3);
    EXPECT_NEAR(louder - quiet, 12, 1) << "0.05 against 0.2 is 12 dB, in the parts as in the source";
    EXPECT_NEAR(max_volume(corpus_.path("two.mp3"), 4.5, 3), louder, 0.5) << "the same gain as the whole";

    // The parts count against the output limit with the whole: a limit the whole fits in but not the parts too.
    OutputOptions split;
    split.bitrate_kbps = 128;
    split.chapters = "split";
    Limits limits;
    limits.max_output_bytes = 8 * 128000 / 8 * 3 / 2;  // the whole (128 kB) and half of it again
    PartDirectory cut(corpus_.dir() / "cut");
    FileInput input(in);
    FileOutput output(corpus_.path("cut.mp3"));
    try {
        convert(input, output, split, limits, nullptr, &cut);
        FAIL() << "the parts did not fit";
    } catch (const ConversionError& e) {
        EXPECT_EQ(e.kind(), ConversionError::Kind::output_too_large) << e.what();
    }
}

TEST_F(TranscoderTest, TwoAudioTracksUseOne) {
    std::string in =
        corpus_.make("two_tracks.mkv", concat({sine(48000),
                                               {"-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=3"},
                                               {"-map", "0", "-map", "1", "-c:a", "flac"}}));
    auto result = convert_file(in, corpus_.path("two.mp3"));
    EXPECT_NEAR(result.duration_seconds, 3.0, 0.05);
    EXPECT_NEAR(decoded_seconds(corpus_.path("two.mp3")), 3.0, 0.05);
}

void expect_failure(const std::string& in, const std::string& out, ConversionError::Kind kind, const std::string& words,
                    const Limits& limits = {}) {
    try {
        convert_file(in, out, {}, limits);
        ADD_FAILURE() << in << " converted";
    } catch (const ConversionError& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        EXPECT_EQ(e.outcome(), Outcome::permanent);
    }
    EXPECT_FALSE(fs::exists(out)) << "no MP3 for a failed conversion";
    EXPECT_FALSE(fs::exists(out + ".part")) << "and no temporary file";
}

TEST_F(TranscoderTest, BadInputsFailWithAReason) {
    std::string silent = corpus_.make("silent.mp4", concat({video(), {"-c:v", "libx264", "-preset", "ultrafast"}}));
    expect_failure(silent, corpus_.path("1.mp3"), ConversionError::Kind::no_audio, "no audio track");

    // An image is no demuxer's on the allow-list (FFmpeg's image demuxers read sequences of files).
    std::string png = corpus_.make("image.png", {"-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1"});
    expect_failure(png, corpus_.path("2.mp3"), ConversionError::Kind::unsupported_format, "an image");
    std::string jpeg = corpus_.make("image.jpg", {"-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1"});
    expect_failure(jpeg, corpus_.path("2b.mp3"), ConversionError::Kind::unsupported_format, "an image");

    std::ofstream(corpus_.path("empty.mp4")).close();
    expect_failure(corpus_.path("empty.mp4"), corpus_.path("3.mp3"), ConversionError::Kind::unsupported_format,
                   "this file is empty");

    std::ofstream(corpus_.path("text.mp4")) << "this is not a video, just words in a file named .mp4\n";
    expect_failure(corpus_.path("text.mp4"), corpus_.path("4.mp3"), ConversionError::Kind::unsupported_format,
                   "a text file, not a video or audio file");

    // The first half of a file whose index is at the end: the index never arrives.
    std::string whole = corpus_.make(
        "whole.mp4", concat({video(), sine(), {"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"}}));
    auto size = fs::file_size(whole);
    fs::copy_file(whole, corpus_.path("truncated.mp4"));
    fs::resize_file(corpus_.path("truncated.mp4"), size / 2);
    try {
        convert_file(corpus_.path("truncated.mp4"), corpus_.path("5.mp3"));
        ADD_FAILURE() << "a truncated file converted";
    } catch (const ConversionError& e) {
        EXPECT_EQ(e.outcome(), Outcome::permanent) << e.what();
    }
    EXPECT_FALSE(fs::exists(corpus_.path("5.mp3.part")));

    std::string long_audio = corpus_.make("long.flac", sine(8000, 20));
    expect_failure(long_audio, corpus_.path("7.mp3"), ConversionError::Kind::too_long, "limit",
                   Limits{std::chrono::seconds(10)});
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST_F(TranscoderTest, EncoderThreadMakesTheSameMp3) {
    std::string in = corpus_.make("threads.m4a", concat({sine(48000, 20), {"-ac", "2", "-c:a", "aac"}}));
    Limits one;
    one.threads = 1;
    Limits two;
    two.threads = 2;
    auto a = convert_file(in, corpus_.path("one.mp3"), {}, one);
    auto b = convert_file(in, corpus_.path("two.mp3"), {}, two);
    EXPECT_EQ(a.duration_seconds, b.duration_seconds);
    std::string one_bytes = read_all(corpus_.path("one.mp3"));
    EXPECT_GT(one_bytes.size(), 400'000u);
    EXPECT_TRUE(one_bytes == read_all(corpus_.path("two.mp3"))) << "the pipeline changes when, not what, is encoded";
}

// An output that fails after a number of bytes with the system's error, as a full (or broken) disk would.
class FailingOutput : public MediaOutput {
  public:
    explicit FailingOutput(size_t budget, int error = ENOSPC) : budget_(budget), error_(error) {}
    void write(const uint8_t*, size_t size) override {
        if (size > budget_) throw std::system_error(error_, std::generic_category(), "write");
        budget_ -= size;
    }

  private:
    size_t budget_;
    int error_;
};

TEST_F(TranscoderTest, OutputFailureStopsTheConversionOnAnyThread) {
    std::string in = corpus_.make("long.wav", sine(48000, 30));
    for (int threads : {1, 2, 3}) {  // 3: parallel segments (the writer is the decoder's thread)
        FileInput input(in);
        FailingOutput output(100'000);
        Limits limits;
        limits.threads = threads;
        if (threads == 3) {
            limits.parallel_from = std::chrono::seconds(0);
            limits.segment_seconds = 2;
        }
        try {
            convert(input, output, {}, limits);
            ADD_FAILURE() << "converted into a failing output with " << threads << " thread(s)";
        } catch (const ConversionError& e) {
            EXPECT_EQ(e.kind(), ConversionError::Kind::io) << e.what();
            EXPECT_EQ(e.outcome(), Outcome::transient) << "a storage failure is worth a retry";
            EXPECT_NE(std::string(e.what()).find("No space left"), std::string::npos) << e.what();
            EXPECT_TRUE(e.no_space()) << "the worker waits for space on it, without counting an attempt";
        }
    }
    // Another failure of the disk is not a full one: the job's attempts count.
    FileInput input(in);
    FailingOutput broken(100'000, EIO);
    try {
        convert(input, broken, {}, {});
        ADD_FAILURE() << "converted into a failing output";
    } catch (const ConversionError& e) {
        EXPECT_EQ(e.kind(), ConversionError::Kind::io) << e.what();
        EXPECT_FALSE(e.no_space()) << e.what();
    }
}

// An input whose reads fail after a number of bytes with the system's error: the local copy of an upload that cannot
// seek (SpooledInput) filling its disk.
class FailingInput : public MediaInput {
  public:
    FailingInput(const std::string& path, size_t budget, int error) : file_(path), budget_(budget), error_(error) {}
    size_t read(uint8_t* buffer, size_t size) override {
        if (size > budget_) throw std::system_error(error_, std::generic_category(), "spooling the upload");
        budget_ -= size;
        return file_.read(buffer, size);
    }
    void seek(uint64_t offset) override { file_.seek(offset); }
    uint64_t size() const override { return file_.size(); }

  private:
    FileInput file_;
    size_t budget_;
    int error_;
};

TEST_F(TranscoderTest, AFullDiskWhileReadingTheUploadIsTold) {
    std::string in = corpus_.make("spooled.wav", sine(48000, 30));
    for (int error : {ENOSPC, EIO}) {
        FailingInput input(in, 200'000, error);
        FileOutput output(corpus_.path("spooled.mp3"));
        try {
            convert(input, output, {}, {});
            ADD_FAILURE() << "converted an input that failed";
        } catch (const ConversionError& e) {
            EXPECT_EQ(e.kind(), ConversionError::Kind::io) << e.what();
            EXPECT_NE(std::string(e.what()).find("reading the upload"), std::string::npos) << e.what();
            EXPECT_EQ(e.no_space(), error == ENOSPC) << e.what();
        }
    }
}

TEST_F(TranscoderTest, SpooledInputServesAFrontToBackSourceWhoseIndexIsAtTheEnd) {
    std::string in = corpus_.make(
        "index_at_end.mp4", concat({video(), sine(), {"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"}}));
    auto spool_dir = corpus_.dir() / "spool";
    fs::create_directories(spool_dir);
    FileInput file(in);
    SpooledInput input(
        [&](uint8_t* buffer, size_t size) {
            return file.read(buffer, size);  // never seeks: front to back, like a GridFS download
        },
        file.size(), spool_dir.string());
    EXPECT_TRUE(fs::is_empty(spool_dir)) << "the spool has no name";
    TemporaryFile output(spool_dir.string());
    auto result = convert(input, output, {}, {});
    EXPECT_NEAR(result.duration_seconds, 3.0, 0.05);
    EXPECT_EQ(input.spooled(), file.size()) << "the whole input was read once";
    EXPECT_TRUE(fs::is_empty(spool_dir));

    // Byte for byte what the same conversion from the seekable file gives.
    convert_file(in, corpus_.path("direct.mp3"));
    std::string direct = read_all(corpus_.path("direct.mp3"));
    std::string spooled(output.size(), '\0');
    ASSERT_EQ(output.read_at(0, reinterpret_cast<uint8_t*>(spooled.data()), spooled.size()), spooled.size());
    EXPECT_TRUE(spooled == direct);
}

TEST_F(TranscoderTest, SpooledInputSeeksAnywhere) {
    std::string data(300'000, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 256);
    size_t source_at = 0;
    SpooledInput input(
        [&](uint8_t* buffer, size_t size) {
            size_t n = std::min(size, data.size() - source_at);
            std::memcpy(buffer, data.data() + source_at, n);
            source_at += n;
            return n;
        },
        data.size(), corpus_.dir().string());
    auto read_at = [&](uint64_t offset, size_t size) {
        input.seek(offset);
        std::string out(size, '\0');
        size_t got = 0;
        while (got < size) {
            size_t n = input.read(reinterpret_cast<uint8_t*>(out.data()) + got, size - got);
            if (n == 0) break;
            got += n;
        }
        out.resize(got);
        return out;
    };
    EXPECT_EQ(read_at(290'000, 20'000), data.substr(290'000)) << "forward past the spool, clamped at the end";
    EXPECT_EQ(read_at(10, 1000), data.substr(10, 1000)) << "back, from the copy";
    EXPECT_EQ(read_at(0, data.size()), data);
    EXPECT_EQ(source_at, data.size()) << "the source is read once";
}

TEST_F(TranscoderTest, CommandLineConvertsAndExplainsFailures) {
    std::string in = corpus_.make("cli.wav", sine());
    auto ok = testing::run_command(kBinary, {"convert", in, corpus_.path("cli.mp3"), "--bitrate", "128"}, {});
    EXPECT_EQ(ok.status, 0) << ok.out;
    EXPECT_EQ(probe(corpus_.path("cli.mp3"))["streams"][0]["bit_rate"], "128000");
    auto trimmed = testing::run_command(
        kBinary, {"convert", in, corpus_.path("cut.mp3"), "--start", "0:01", "--end", "2.5", "--title", "Cut"}, {});
    EXPECT_EQ(trimmed.status, 0) << trimmed.out;
    EXPECT_NEAR(decoded_seconds(corpus_.path("cut.mp3")), 1.5, 1152.0 / 44100);
    EXPECT_EQ(probe(corpus_.path("cut.mp3"))["format"]["tags"]["title"], "Cut");
    auto late = testing::run_command(kBinary, {"convert", in, corpus_.path("late.mp3"), "--start", "5"}, {});
    EXPECT_EQ(late.status, 1);
    EXPECT_NE(late.out.find("is not before the end of the audio"), std::string::npos) << late.out;

    std::ofstream(corpus_.path("notes.mp4")) << "words";
    auto bad = testing::run_command(kBinary, {"convert", corpus_.path("notes.mp4"), corpus_.path("x.mp3")}, {});
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.out.find("not a video or audio file"), std::string::npos) << bad.out;
    EXPECT_EQ(std::count(bad.out.begin(), bad.out.end(), '\n'), 1) << "one line: " << bad.out;

    EXPECT_EQ(testing::run_command(kBinary, {"convert", in, corpus_.path("y.mp3"), "--bitrate", "100"}, {}).status, 2);
    EXPECT_EQ(
        testing::run_command(kBinary, {"convert", in, corpus_.path("y.mp3"), "--bitrate", "128", "--quality", "2"}, {})
            .status,
        2);
    EXPECT_EQ(testing::run_command(kBinary, {"convert", corpus_.path("missing.mp4"), corpus_.path("y.mp3")}, {}).status,
              1);
    EXPECT_EQ(testing::run_command(kBinary, {"frobnicate"}, {}).status, 2);
    EXPECT_FALSE(fs::exists(corpus_.path("x.mp3.part")));
}

// The MP3's attached pictures: codec, size and the picture's own bytes (as the muxer stored them).
struct Picture {
    std::string codec;
    int width = 0, height = 0;
    std::string bytes;
};
std::vector<Picture> pictures_of(Corpus& corpus, const std::string& path) {
    auto r =
        testing::run_command("/usr/bin/ffprobe",
                             {"-v", "error", "-show_entries",
                              "stream=codec_name,width,height:stream_disposition=attached_pic", "-of", "json", path},
                             {});
    if (r.status != 0) throw std::runtime_error("ffprobe failed: " + r.out);
    std::vector<Picture> out;
    int index = 0;
    const auto probed = nlohmann::json::parse(r.out);  // named: a range-for over a temporary's member dangles
    for (const auto& s : probed["streams"]) {
        ++index;
        if (s.value("disposition", nlohmann::json::object()).value("attached_pic", 0) != 1) continue;
        Picture p{s["codec_name"], s["width"], s["height"], ""};
        std::string file = corpus.path("picture.bin");
        testing::run_command("/usr/bin/ffmpeg",
                             {"-v", "error", "-y", "-i", path, "-map", "0:" + std::to_string(index - 1), "-c", "copy",
                              "-f", "data", file},
                             {});
        std::ifstream in(file, std::ios::binary);
        p.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        out.push_back(p);
    }
    return out;
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(TranscoderTest, Mp3WithCoverArtLargerThanTheProbeBufferConvertsWithItScaledDown) {
    // Album art of several megabytes sits in the ID3v2 tag ahead of the audio: the probe looks past it. The MP3 gets
    // it as a JPEG of at most 600x600.
    std::string cover = corpus_.make(
        "noise.png", {"-f", "lavfi", "-i", "nullsrc=s=1024x768,geq=random(1)*255:128:128", "-frames:v", "1"});
    std::string in =
        corpus_.make("cover.mp3", concat({sine(44100),
                                          {"-i", cover, "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "copy",
                                           "-id3v2_version", "3", "-disposition:v", "attached_pic"}}));
    ASSERT_GT(fs::file_size(in), 1u << 20) << "the tag is larger than FFmpeg's largest probe buffer";
    auto result = convert_file(in, corpus_.path("cover_out.mp3"));
    EXPECT_NEAR(result.duration_seconds, 3.0, 0.05);
    EXPECT_TRUE(result.cover);
    auto pictures = pictures_of(corpus_, corpus_.path("cover_out.mp3"));
    ASSERT_EQ(pictures.size(), 1u);
    EXPECT_EQ(pictures[0].codec, "mjpeg");
    EXPECT_EQ(pictures[0].width, 600);
    EXPECT_EQ(pictures[0].height, 450) << "proportions kept";
    EXPECT_LT(pictures[0].bytes.size(), 400'000u);

    OutputOptions none;
    none.cover = "none";
    result = convert_file(in, corpus_.path("no_cover.mp3"), none);
    EXPECT_FALSE(result.cover);
    EXPECT_TRUE(pictures_of(corpus_, corpus_.path("no_cover.mp3")).empty());
}

TEST_F(TranscoderTest, ASmallJpegOrPngCoverIsCopiedAsItIsFromM4aAndFlac) {
    std::string jpeg = corpus_.make("small.jpg", {"-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1"});
    std::string png = corpus_.make("small.png", {"-f", "lavfi", "-i", "testsrc=size=200x200", "-frames:v", "1"});
    std::string m4a = corpus_.make("covered.m4a", concat({sine(44100),
                                                          {"-i", jpeg, "-map", "0", "-map", "1", "-c:a", "aac", "-c:v",
                                                           "copy", "-disposition:v", "attached_pic"}}));
    std::string flac = corpus_.make("covered.flac", concat({sine(44100),
                                                            {"-i", png, "-map", "0", "-map", "1", "-c:a", "flac",
                                                             "-c:v", "copy", "-disposition:v", "attached_pic"}}));
    for (auto [in, picture, codec] : {std::tuple{m4a, jpeg, "mjpeg"}, std::tuple{flac, png, "png"}}) {
        SCOPED_TRACE(in);
        auto result = convert_file(in, corpus_.path("covered.mp3"));
        EXPECT_TRUE(result.cover) << result.cover_problem;
        auto pictures = pictures_of(corpus_, corpus_.path("covered.mp3"));
        ASSERT_EQ(pictures.size(), 1u);
        EXPECT_EQ(pictures[0].codec, codec);
        EXPECT_EQ(pictures[0].bytes, file_bytes(picture)) << "the very bytes";
    }
}

TEST_F(TranscoderTest, ADamagedCoverIsLeftOutAndAudioWithoutOneGetsNone) {
    std::string png = corpus_.make("damaged.png", {"-f", "lavfi", "-i", "testsrc=size=800x800", "-frames:v", "1"});
    std::string in =
        corpus_.make("damaged_cover.mp3", concat({sine(44100),
                                                  {"-i", png, "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v",
                                                   "copy", "-disposition:v", "attached_pic"}}));
    // Break the picture inside the tag: its header chunk (IHDR, right after the signature) becomes zeros.
    std::string bytes = file_bytes(in);
    auto at = bytes.find("\x89PNG");
    ASSERT_NE(at, std::string::npos);
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(at) + 8, bytes.begin() + static_cast<std::ptrdiff_t>(at) + 40,
              '\0');
    std::ofstream(in, std::ios::binary | std::ios::trunc) << bytes;
    auto result = convert_file(in, corpus_.path("damaged_out.mp3"));
    EXPECT_NEAR(result.duration_seconds, 3.0, 0.05) << "the audio converts";
    EXPECT_FALSE(result.cover);
    EXPECT_NE(result.cover_problem, "");
    EXPECT_TRUE(pictures_of(corpus_, corpus_.path("damaged_out.mp3")).empty());

    std::string wav = corpus_.make("plain.wav", sine(44100));
    result = convert_file(wav, corpus_.path("plain.mp3"));
    EXPECT_FALSE(result.cover) << "audio alone without a picture has none";
    EXPECT_EQ(result.cover_problem, "");
}

// The mean brightness (0-255) of a picture's bytes, as FFmpeg decodes them.
int mean_luma(Corpus& corpus, const std::string& bytes) {
    std::string file = corpus.path("luma.jpg");
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    auto r = testing::run_command("/usr/bin/ffmpeg",
                                  {"-v", "error", "-i", file, "-vf", "scale=1:1:flags=area,format=gray", "-f",
                                   "rawvideo", "-frames:v", "1", "pipe:1"},
                                  {});
    if (r.status != 0 || r.out.size() != 1) throw std::runtime_error("no luma: " + r.out);
    return static_cast<unsigned char>(r.out[0]);
}

TEST_F(TranscoderTest, AVideoWithoutAPictureGetsAFrameFromATenthInSkippingBlackOnes) {
    // 10 s: 3 s of black (a fade-in, a title card), then a test pattern. A tenth in (1 s) is black: the first frame
    // that is not becomes the cover, as a JPEG of the video's size (it fits 600x600).
    auto fade = [&](const std::string& name, const std::string& size, const std::vector<std::string>& codec) {
        std::vector<std::string> args = {"-f",
                                         "lavfi",
                                         "-i",
                                         "color=c=black:s=" + size + ":r=10:d=3[a];testsrc=s=" + size +
                                             ":r=10:d=7[b];[a][b]concat=n=2:v=1:a=0[out0]",
                                         "-f",
                                         "lavfi",
                                         "-i",
                                         "sine=frequency=440:sample_rate=44100:duration=10",
                                         "-shortest",
                                         "-c:a",
                                         "aac"};
        args.insert(args.end(), codec.begin(), codec.end());
        return corpus_.make(name, args);
    };
    std::string movie = fade("fade.mp4", "320x240", {"-c:v", "libx264", "-preset", "ultrafast"});
    auto result = convert_file(movie, corpus_.path("fade.mp3"));
    EXPECT_TRUE(result.cover);
    EXPECT_EQ(result.cover_problem, "");
    auto pictures = pictures_of(corpus_, corpus_.path("fade.mp3"));
    ASSERT_EQ(pictures.size(), 1u);
    EXPECT_EQ(pictures[0].codec, "mjpeg");
    EXPECT_EQ(pictures[0].width, 320);
    EXPECT_EQ(pictures[0].height, 240);
    EXPECT_GT(mean_luma(corpus_, pictures[0].bytes), 60) << "not one of the black frames";
    EXPECT_NEAR(decoded_seconds(corpus_.path("fade.mp3")), 10, 0.05) << "the audio is untouched";

    // A larger video: scaled to fit 600x600, proportions kept. MPEG-4 Part 2 (another decoder on the list).
    std::string wide = fade("wide.mkv", "1280x720", {"-c:v", "mpeg4"});
    convert_file(wide, corpus_.path("wide.mp3"));
    pictures = pictures_of(corpus_, corpus_.path("wide.mp3"));
    ASSERT_EQ(pictures.size(), 1u);
    EXPECT_EQ(pictures[0].width, 600);
    EXPECT_EQ(pictures[0].height, 338);

    // cover=none: none. A video all black: none, and why. A video codec off the decoder list (FFV1): none, and why.
    OutputOptions none;
    none.cover = "none";
    EXPECT_FALSE(convert_file(movie, corpus_.path("none.mp3"), none).cover);
    std::string black = corpus_.make(
        "black.mp4", {"-f", "lavfi", "-i", "color=c=black:s=160x120:r=10:d=4", "-f", "lavfi", "-i", "sine=duration=4",
                      "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"});
    result = convert_file(black, corpus_.path("black.mp3"));
    EXPECT_FALSE(result.cover);
    EXPECT_EQ(result.cover_problem, "no frame of the video that is not black");
    std::string lossless = fade("ffv1.mkv", "160x120", {"-c:v", "ffv1"});
    result = convert_file(lossless, corpus_.path("ffv1.mp3"));
    EXPECT_FALSE(result.cover);
    EXPECT_EQ(result.cover_problem, "the video's format is not one a cover is taken from");
    EXPECT_TRUE(pictures_of(corpus_, corpus_.path("ffv1.mp3")).empty());
    // Frames over the pixel limit (4200x4100 is 17.2 megapixels) are not decoded for a cover.
    std::string huge = corpus_.make("huge.mkv", {"-f", "lavfi", "-i", "color=c=red:s=4200x4100:r=1:d=3", "-f", "lavfi",
                                                 "-i", "sine=duration=3", "-shortest", "-c:v", "mjpeg", "-c:a", "aac"});
    result = convert_file(huge, corpus_.path("huge.mp3"));
    EXPECT_FALSE(result.cover);
    EXPECT_EQ(result.cover_problem, "the video's frames are larger than 16 megapixels: no cover is taken from them");
    EXPECT_NEAR(result.duration_seconds, 3, 0.05);
}

TEST_F(TranscoderTest, AmrVoiceMemoConverts) {
    // Debian's ffmpeg has no AMR encoder: 150 frames of 12.2 kb/s AMR-NB (20 ms each) written by hand.
    std::string amr = "#!AMR\n";
    for (int i = 0; i < 150; ++i) {
        amr += '\x3c';
        for (int b = 0; b < 31; ++b) amr += static_cast<char>((i * 31 + b) * 37 & 0xff);
    }
    std::ofstream(corpus_.path("memo.amr"), std::ios::binary) << amr;
    auto result = convert_file(corpus_.path("memo.amr"), corpus_.path("memo.mp3"));
    EXPECT_NEAR(result.duration_seconds, 3.0, 0.05);
    EXPECT_EQ(result.channels, 1);
}

TEST_F(TranscoderTest, ReferencesToOtherFilesAndAddressesAreRefusedWithoutReadingThem) {
    std::string victim = corpus_.make("secret.mp3", concat({sine(44100), {"-c:a", "libmp3lame"}}));
    std::string relative = fs::relative(victim, fs::current_path()).string();
    test::LoopbackListener listener;
    test::FileWatch watch(victim);
    auto cases = test::hostile_files(victim, relative, listener);
    for (const auto& c : cases) {
        std::ofstream(corpus_.path(c.name), std::ios::binary) << c.content;
        SCOPED_TRACE(c.name);
        expect_failure(corpus_.path(c.name), corpus_.path(c.name + ".mp3"), ConversionError::Kind::unsupported_format,
                       c.mentions);
    }
    EXPECT_EQ(listener.connections(), 0) << "nothing connected to the address named in a playlist";
    EXPECT_EQ(watch.events(), 0) << "nothing opened the file named in a script";

    // The controls: the same files are real attacks on FFmpeg as such, and the tripwires see them.
    auto concat_probe = testing::run_command("/usr/bin/ffprobe",
                                             {"-v", "error", "-safe", "0", "-show_entries", "format=format_name", "-of",
                                              "csv=p=0", corpus_.path("concat_absolute_path.mp4")},
                                             {});
    EXPECT_NE(concat_probe.out.find("concat"), std::string::npos) << concat_probe.out;
    EXPECT_GT(watch.events(), 0) << "FFmpeg's own probe picks the concat demuxer, which opens the named file";
    testing::run_command("/usr/bin/ffprobe",
                         {"-v", "quiet", "-protocol_whitelist", "file,http,tcp", "-rw_timeout", "500000",
                          corpus_.path("dash_manifest.mp4")},
                         {});
    EXPECT_GT(listener.connections(), 0) << "the DASH demuxer connects to the address in the manifest";
}

TEST_F(TranscoderTest, DemuxersThatFollowReferencesAreNotOnTheList) {
    // The full names FFmpeg matches (format_whitelist): none of the demuxers that open other files or addresses.
    for (const char* refused : {"concat", "hls", "dash", "image2", "image2pipe", "imf", "sdp", "rtsp", "rtp", "data",
                                "png_pipe", "webm_dash_manifest", "mxf"}) {
        std::string names = "," + allowed_demuxer_names() + ",";
        EXPECT_EQ(names.find("," + std::string(refused) + ","), std::string::npos) << refused;
    }
}

TEST_F(TranscoderTest, OutputLimitRefusesAConstantBitrateAtOnceAndStopsAVariableOne) {
    std::string in = corpus_.make("minute.flac", sine(44100, 60));  // 60 s at 192 kb/s: 1.44 MB of MP3
    Limits limits;
    limits.max_output_bytes = 500'000;
    expect_failure(in, corpus_.path("cbr.mp3"), ConversionError::Kind::output_too_large, "larger than the limit",
                   limits);

    // VBR gives no size in advance: the bytes written are counted and the conversion stops at the limit. With
    // parallel segments too, though later: the decoder runs up to three segments ahead of what is written.
    limits.output_limit_is_quota = true;
    limits.max_output_bytes = 250'000;
    for (int threads : {1, 2}) {
        SCOPED_TRACE("threads: " + std::to_string(threads));
        limits.threads = threads;
        limits.segment_seconds = 5;
        FileInput input(in);
        FileOutput output(corpus_.path("vbr.mp3"));
        OutputOptions vbr;
        vbr.vbr_quality = 0;
        double reached = 0;
        try {
            auto result = convert(input, output, vbr, limits, [&](double f) { reached = f; });
            ADD_FAILURE() << "a VBR MP3 over the limit was produced, in " << result.segments << " segments";
        } catch (const ConversionError& e) {
            EXPECT_EQ(e.kind(), ConversionError::Kind::output_too_large) << e.what();
            EXPECT_NE(std::string(e.what()).find("storage quota"), std::string::npos) << e.what();
        }
        EXPECT_GT(reached, 0.1) << "stopped while converting, not before";
        if (threads == 1) {
            EXPECT_LT(reached, 0.9);
        }
    }
}

TEST_F(TranscoderTest, ConversionSlowerThanAllowedTimesOut) {
    // 120 s of audio allowed 1 ms plus a millisecond per ten seconds of audio: far faster than any decoder and LAME.
    std::string in = corpus_.make("slow.flac", sine(44100, 120));
    Limits limits;
    limits.timeout_floor = std::chrono::milliseconds(1);
    limits.timeout_ratio = 0.0001;
    expect_failure(in, corpus_.path("slow.mp3"), ConversionError::Kind::timeout, "took longer than allowed", limits);

    Limits generous;  // the defaults let the same file through
    EXPECT_NEAR(convert_file(in, corpus_.path("ok.mp3"), {}, generous).duration_seconds, 120.0, 0.05);
}

TEST_F(TranscoderTest, ChannelSampleRateAndStreamLimitsEachHaveTheirReason) {
    std::string surround = corpus_.make("six.flac", concat({sine(), {"-af", "aformat=channel_layouts=5.1"}}));
    Limits two_channels;
    two_channels.max_channels = 2;
    expect_failure(surround, corpus_.path("six.mp3"), ConversionError::Kind::too_many_channels, "6 channels",
                   two_channels);

    std::string hires = corpus_.make("hires.wav", sine(384000, 1));  // over the default of 192 kHz
    expect_failure(hires, corpus_.path("hires.mp3"), ConversionError::Kind::sample_rate_too_high, "384000 Hz");

    Limits four_streams;
    four_streams.max_streams = 4;
    std::string mkv = corpus_.make("six_tracks.mkv", test::many_tracks(6, "flac"));
    expect_failure(mkv, corpus_.path("mkv.mp3"), ConversionError::Kind::too_many_streams, "more than 4 streams",
                   four_streams);
    EXPECT_NEAR(convert_file(corpus_.make("four_tracks.mkv", test::many_tracks(4, "flac")), corpus_.path("four.mp3"),
                             {}, four_streams)
                    .duration_seconds,
                1.0, 0.05)
        << "a file with exactly the limit's streams converts";
    // A transport stream announces its streams as they come.
    std::string ts = corpus_.make("six_tracks.ts", test::many_tracks(6, "mp2"));
    expect_failure(ts, corpus_.path("ts.mp3"), ConversionError::Kind::too_many_streams, "more than 4 streams",
                   four_streams);
    EXPECT_NEAR(convert_file(ts, corpus_.path("ts_ok.mp3")).duration_seconds, 1.0, 0.1) << "within the default";
}

TEST_F(TranscoderTest, AudioThatChangesShapeMidwayConverts) {
    // A TV recording switching from mono 44.1 kHz to 5.1 at 48 kHz: two transport streams back to back.
    std::string first = corpus_.make("first.ts", concat({sine(44100, 2), {"-c:a", "aac"}}));
    std::string second =
        corpus_.make("second.ts", concat({sine(48000, 2), {"-af", "aformat=channel_layouts=5.1", "-c:a", "aac"}}));
    std::ofstream joined(corpus_.path("joined.ts"), std::ios::binary);
    joined << read_all(first) << read_all(second);
    joined.close();
    auto result = convert_file(corpus_.path("joined.ts"), corpus_.path("joined.mp3"));
    EXPECT_NEAR(result.duration_seconds, 4.0, 0.2);
    EXPECT_NEAR(decoded_seconds(corpus_.path("joined.mp3")), 4.0, 0.2);
}

TEST_F(TranscoderTest, CommandLineTakesRelativePathsAndWorksInAnEmptiedDirectory) {
    corpus_.make("relative.wav", sine());
    auto r = testing::run_command(
        "/bin/sh", {"-c", "cd '" + corpus_.dir().string() + "' && exec '" + kBinary + "' convert relative.wav out.mp3"},
        {{"TMPDIR", corpus_.dir().string()}});
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(fs::exists(corpus_.path("out.mp3")));
    for (const auto& e : fs::directory_iterator(corpus_.dir())) {
        EXPECT_FALSE(e.is_directory()) << "the emptied working directory is removed: " << e.path();
    }
}

}  // namespace
}  // namespace mp3c::converter
