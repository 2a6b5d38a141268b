// Parallel segment encoding (segment_encoder.hpp): the joined MP3 against one encoder's, decoded by the ffmpeg
// command line. A join with a click, a gap or a repeated frame shows as a 100 ms window much further from the source
// than the same window of the single encode, or as a different length.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <optional>

#include "media_corpus.hpp"
#include "segment_encoder.hpp"

namespace mp3c::converter {
namespace {

using namespace test;
using detail::SegmentPlan;

// A chirp (50 Hz to near the top of the band) mixed with pink noise: it changes all the time, so no join can hide in
// a stretch that repeats. Exactly `samples` long.
std::string rich(Corpus& corpus, const std::string& name, int rate, int channels, int64_t samples) {
    double seconds = static_cast<double>(samples) / rate + 0.1;
    double top = std::min(8000.0, rate * 0.45);
    std::string sweep = std::to_string((top - 50) / (2 * seconds));
    return corpus.make(
        name,
        {"-f", "lavfi", "-i",
         "aevalsrc=0.25*sin(2*PI*(50*t+" + sweep + "*t*t)):s=" + std::to_string(rate) + ":d=" + std::to_string(seconds),
         "-f", "lavfi", "-i",
         "anoisesrc=color=pink:amplitude=0.25:sample_rate=" + std::to_string(rate) +
             ":duration=" + std::to_string(seconds),
         "-filter_complex", "[0:a][1:a]amix=inputs=2:normalize=0,atrim=end_sample=" + std::to_string(samples), "-ac",
         std::to_string(channels), "-c:a", "pcm_s16le"});
}

// Mono 32-bit float PCM of a file as the ffmpeg command line decodes it (an MP3's delay and padding honoured).
std::vector<float> pcm_of(Corpus& corpus, const std::string& path, int rate) {
    std::string raw = corpus.path(fs::path(path).filename().string() + ".f32");
    auto r = testing::run_command(
        "/usr/bin/ffmpeg",
        {"-v", "error", "-y", "-i", path, "-ac", "1", "-ar", std::to_string(rate), "-f", "f32le", raw}, {});
    if (r.status != 0) throw std::runtime_error("ffmpeg could not decode " + path + ": " + r.out);
    std::ifstream in(raw, std::ios::binary);
    std::vector<float> samples(fs::file_size(raw) / sizeof(float));
    in.read(reinterpret_cast<char*>(samples.data()), static_cast<std::streamsize>(samples.size() * sizeof(float)));
    return samples;
}

struct Seams {
    size_t one_length = 0, parallel_length = 0;  // decoded samples
    double worst_drop_db = 0;                    // the parallel encode's worst window against one encoder's
    double worst_at_seconds = 0;
    size_t windows = 0;
};

// Window by window (100 ms), each MP3's signal-to-error ratio against the source, and how much worse the parallel
// encode's is than the single encode's in the same window.
Seams compare(Corpus& corpus, const std::string& source, const std::string& one, const std::string& parallel,
              int rate) {
    auto reference = pcm_of(corpus, source, rate), a = pcm_of(corpus, one, rate), b = pcm_of(corpus, parallel, rate);
    Seams seams{.one_length = a.size(), .parallel_length = b.size()};
    const size_t window = static_cast<size_t>(rate / 10);
    auto snr = [&](const std::vector<float>& decoded, size_t from) {
        double signal = 1e-12, error = 1e-12;
        for (size_t i = from; i < from + window; ++i) {
            signal += double{reference[i]} * reference[i];
            error += (double{reference[i]} - decoded[i]) * (double{reference[i]} - decoded[i]);
        }
        return 10 * std::log10(signal / error);
    };
    size_t length = std::min({reference.size(), a.size(), b.size()});
    for (size_t from = 0; from + window <= length; from += window, ++seams.windows) {
        double drop = snr(b, from) - snr(a, from);
        if (drop < seams.worst_drop_db) {
            seams.worst_drop_db = drop;
            seams.worst_at_seconds = static_cast<double>(from) / rate;
        }
    }
    return seams;
}

constexpr double kAllowedDropDb = 3;

Limits parallel_limits(double segment_seconds = 1) {
    Limits limits;
    limits.threads = 3;
    limits.parallel_from = std::chrono::seconds(0);
    limits.segment_seconds = segment_seconds;
    return limits;
}

Limits one_encoder() {
    Limits limits;
    limits.threads = 1;
    return limits;
}

struct JoinCase {
    std::string name;
    int rate, channels;
    std::optional<int> bitrate_kbps, vbr_quality;
    double seconds;
};

class SegmentJoinTest : public ::testing::TestWithParam<JoinCase> {
  protected:
    Corpus corpus_;
};

TEST_P(SegmentJoinTest, DecodesLikeOneEncoderAtEveryJoin) {
    const JoinCase& c = GetParam();
    std::string source = rich(corpus_, c.name + ".wav", c.rate, c.channels, static_cast<int64_t>(c.seconds * c.rate));
    OutputOptions options;
    options.sample_rate = c.rate;
    options.bitrate_kbps = c.bitrate_kbps;
    options.vbr_quality = c.vbr_quality;
    options.cover = "none";
    auto one = convert_file(source, corpus_.path("one.mp3"), options, one_encoder());
    auto parallel = convert_file(source, corpus_.path("parallel.mp3"), options, parallel_limits());
    EXPECT_EQ(one.segments, 0);
    EXPECT_GE(parallel.segments, 3) << "the test needs joins";
    EXPECT_EQ(parallel.duration_seconds, one.duration_seconds);
    auto seams = compare(corpus_, source, corpus_.path("one.mp3"), corpus_.path("parallel.mp3"), c.rate);
    EXPECT_EQ(seams.parallel_length, seams.one_length) << "a frame lost or repeated at a join";
    EXPECT_EQ(seams.one_length, static_cast<size_t>(c.seconds * c.rate)) << "the LAME header's delay and padding";
    EXPECT_GT(seams.windows, 50u);
    std::cerr << c.name << ": " << parallel.segments << " segments, worst window " << seams.worst_drop_db
              << " dB against one encoder's, at " << seams.worst_at_seconds << " s\n";
    EXPECT_GE(seams.worst_drop_db, -kAllowedDropDb) << "a seam at " << seams.worst_at_seconds << " s";
    EXPECT_EQ(probe(corpus_.path("parallel.mp3"))["format"]["duration"],
              probe(corpus_.path("one.mp3"))["format"]["duration"]);
}

INSTANTIATE_TEST_SUITE_P(
    BitrateModesChannelsAndRates, SegmentJoinTest,
    ::testing::Values(JoinCase{"cbr_stereo_44k", 44100, 2, 192, std::nullopt, 12},
                      JoinCase{"cbr_stereo_320k", 44100, 2, 320, std::nullopt, 12},  // the fullest reservoir
                      JoinCase{"vbr_stereo_48k", 48000, 2, std::nullopt, 2, 12},
                      JoinCase{"vbr_mono_22k", 22050, 1, std::nullopt, 5, 24},  // MPEG-2: 576 samples a frame
                      JoinCase{"cbr_mono_8k", 8000, 1, 32, std::nullopt, 40}),  // MPEG-2.5
    [](const auto& info) { return info.param.name; });

// Inputs that end exactly on, just before and just after a segment's end and its overrun's end, and inputs shorter
// than one segment or one frame: the same length as one encoder's, to the sample, and no seam. (One encoder's MP3 of
// audio whose last frame holds a single sample decodes 46 samples long, FFmpeg's libmp3lame wrapper and LAME as they
// are: the parallel encode matches it.)
TEST(SegmentBoundaries, EveryEndFallsRight) {
    Corpus corpus;
    const int rate = 44100;
    const auto plan = SegmentPlan::for_output(1152, rate, 2, 3, 1);
    const int64_t segment = plan.segment_frames * 1152, overrun = plan.overrun_frames * 1152;
    OutputOptions options;
    options.cover = "none";
    for (int64_t samples : {int64_t{100}, int64_t{1152}, segment - 1, segment, segment + 1, segment + overrun - 1,
                            segment + overrun, segment + overrun + 1, 2 * segment, 2 * segment + 577}) {
        SCOPED_TRACE("samples: " + std::to_string(samples));
        std::string name = std::to_string(samples);
        std::string source = rich(corpus, name + ".wav", rate, 2, samples);
        auto one = convert_file(source, corpus.path(name + "-one.mp3"), options, one_encoder());
        auto parallel = convert_file(source, corpus.path(name + "-parallel.mp3"), options, parallel_limits());
        // A segment goes to its encoder once its overrun is complete; the one filling at the end takes the rest.
        const int64_t frames = (samples + 1151) / 1152;
        EXPECT_EQ(parallel.segments, 1 + (frames >= plan.segment_frames + plan.overrun_frames) +
                                         (frames >= 2 * plan.segment_frames + plan.overrun_frames));
        EXPECT_EQ(parallel.duration_seconds, one.duration_seconds);
        auto seams = compare(corpus, source, corpus.path(name + "-one.mp3"), corpus.path(name + "-parallel.mp3"), rate);
        EXPECT_EQ(seams.parallel_length, seams.one_length);
        EXPECT_GE(seams.worst_drop_db, -kAllowedDropDb) << "a seam at " << seams.worst_at_seconds << " s";
    }
}

TEST(ParallelConversion, KeepsTagsChaptersAndTheLengthOnceAndProgressOnlyGrows) {
    Corpus corpus;
    std::string metadata = ";FFMETADATA1\n";
    for (int i = 0; i < 3; ++i) {
        metadata += "[CHAPTER]\nTIMEBASE=1/1000\nSTART=" + std::to_string(i * 4000) +
                    "\nEND=" + std::to_string((i + 1) * 4000) + "\ntitle=Chapter " + std::to_string(i + 1) + "\n";
    }
    std::ofstream(corpus.path("chapters.txt")) << metadata;
    std::string wav = rich(corpus, "talk.wav", 44100, 2, 12 * 44100);
    std::string source = corpus.make("talk.m4a", {"-i", wav, "-f", "ffmetadata", "-i", corpus.path("chapters.txt"),
                                                  "-map", "0:a", "-map_chapters", "1", "-c:a", "aac"});
    OutputOptions options;
    options.tags.title = "Vorlesung";
    options.tags.artist = "Prof. Ünal";
    convert_file(source, corpus.path("one.mp3"), options, one_encoder());
    std::vector<double> progress;
    FileInput input(source);
    FileOutput output(corpus.path("parallel.mp3"));
    auto result = convert(input, output, options, parallel_limits(), [&](double f) { progress.push_back(f); });
    output.commit();
    EXPECT_GE(result.segments, 3);
    auto tags = [&](const std::string& name) {
        auto r = testing::run_command(
            "/usr/bin/ffprobe",
            {"-v", "error", "-show_chapters", "-show_entries", "format=duration:format_tags:stream=index,codec_name",
             "-of", "json", corpus.path(name)},
            {});
        return nlohmann::json::parse(r.out);
    };
    auto one = tags("one.mp3"), parallel = tags("parallel.mp3");
    EXPECT_EQ(parallel, one);
    EXPECT_EQ(parallel["chapters"].size(), 3u);
    EXPECT_EQ(parallel["format"]["tags"]["title"], "Vorlesung");
    ASSERT_FALSE(progress.empty());
    EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
    EXPECT_GT(progress.back(), 0.99);
}

TEST(ParallelConversion, CancellingStopsEveryEncoder) {
    Corpus corpus;
    std::string source = rich(corpus, "long.wav", 44100, 2, 30 * 44100);
    std::atomic<bool> cancel{false};
    Limits limits = parallel_limits();
    limits.cancel = &cancel;
    FileInput input(source);
    FileOutput output(corpus.path("cancelled.mp3"));
    try {
        convert(input, output, {}, limits, [&](double f) {
            if (f > 0.3) cancel = true;
        });
        ADD_FAILURE() << "a cancelled conversion finished";
    } catch (const ConversionError& e) {
        EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
    }
}

// Planar float frames of a 440 Hz tone, as the transcoder gives the encoders.
detail::FramePtr tone_frame(int64_t index) {
    detail::FramePtr frame(av_frame_alloc());
    frame->nb_samples = 1152;
    frame->format = AV_SAMPLE_FMT_FLTP;
    frame->sample_rate = 44100;
    av_channel_layout_default(&frame->ch_layout, 2);
    if (av_frame_get_buffer(frame.get(), 0) < 0) throw std::runtime_error("out of memory");
    for (int c = 0; c < 2; ++c) {
        auto* samples = reinterpret_cast<float*>(frame->data[c]);
        for (int i = 0; i < 1152; ++i) samples[i] = 0.3f * std::sin(2 * M_PI * 440 * (index * 1152 + i) / 44100.0);
    }
    return frame;
}

std::unique_ptr<AVCodecContext, detail::CodecContextFree> lame() {
    const AVCodec* codec = avcodec_find_encoder_by_name("libmp3lame");
    std::unique_ptr<AVCodecContext, detail::CodecContextFree> encoder(avcodec_alloc_context3(codec));
    av_channel_layout_default(&encoder->ch_layout, 2);
    encoder->sample_rate = 44100;
    encoder->sample_fmt = AV_SAMPLE_FMT_FLTP;
    encoder->time_base = AVRational{1, 44100};
    encoder->bit_rate = 128000;
    if (avcodec_open2(encoder.get(), codec, nullptr) < 0) throw std::runtime_error("libmp3lame");
    return encoder;
}

TEST(SegmentEncoder, AFailingSegmentFailsTheWholeAndWritesNothingAfterIt) {
    const auto plan = SegmentPlan::for_output(1152, 44100, 2, 2, 1);
    std::atomic<int> opened{0};
    std::vector<int64_t> written;  // the packets' timestamps, in the order written
    try {
        detail::SegmentEncoder encoder(
            plan,
            [&] {
                // The third segment's encoder breaks, as an FFmpeg failure in a segment would.
                if (++opened == 3) throw ConversionError(ConversionError::Kind::internal, "segment 3 broke");
                return lame();
            },
            [&](AVPacket* p) { written.push_back(p->pts); });
        for (int64_t i = 0; i < 6 * plan.segment_frames; ++i) encoder.push(tone_frame(i));
        encoder.push(nullptr);
        ADD_FAILURE() << "a failed segment went unnoticed";
    } catch (const ConversionError& e) {
        EXPECT_STREQ(e.what(), "segment 3 broke");
    }
    // What was written before the failure is the first segment, in order; nothing of the third or later.
    EXPECT_TRUE(std::is_sorted(written.begin(), written.end()));
    EXPECT_LE(written.size(), static_cast<size_t>(2 * plan.segment_frames + plan.overrun_frames));
}

TEST(SegmentEncoder, AJoinWithoutAFrameToJoinAtSaysSo) {
    auto plan = SegmentPlan::for_output(1152, 44100, 2, 2, 1);
    plan.join_margin = plan.overrun_frames + 1;  // no frame of the overlap may be a join
    detail::SegmentEncoder encoder(plan, lame, [](AVPacket*) {});
    try {
        for (int64_t i = 0; i < 3 * plan.segment_frames; ++i) encoder.push(tone_frame(i));
        encoder.push(nullptr);
        ADD_FAILURE() << "joined without a frame to join at";
    } catch (const detail::JoinFailed& e) {
        EXPECT_EQ(e.kind(), ConversionError::Kind::internal);  // the transcoder then runs with one encoder
    }
}

TEST(SegmentEncoder, WritesEveryFrameOnceInOrder) {
    const auto plan = SegmentPlan::for_output(1152, 44100, 2, 2, 1);
    std::vector<int64_t> written;
    detail::SegmentEncoder encoder(plan, lame, [&](AVPacket* p) { written.push_back(p->pts); });
    const int64_t frames = 3 * plan.segment_frames + plan.overrun_frames + 7;
    for (int64_t i = 0; i < frames; ++i) encoder.push(tone_frame(i));
    encoder.push(nullptr);
    EXPECT_EQ(encoder.stats().segments, 4);
    // One encoder makes a packet per frame plus those the encoder delay pushes out at the end.
    auto reference = lame();
    int64_t one_encoder_packets = 0;
    auto packet = detail::PacketPtr(av_packet_alloc());
    for (int64_t i = 0; i <= frames; ++i) {
        auto frame = i < frames ? tone_frame(i) : nullptr;
        avcodec_send_frame(reference.get(), frame.get());
        while (avcodec_receive_packet(reference.get(), packet.get()) == 0) {
            ++one_encoder_packets;
            av_packet_unref(packet.get());
        }
    }
    ASSERT_EQ(static_cast<int64_t>(written.size()), one_encoder_packets);
    for (size_t i = 0; i < written.size(); ++i) {
        EXPECT_EQ(written[i], static_cast<int64_t>(i) * 1152 - reference->initial_padding) << "packet " << i;
    }
}

}  // namespace
}  // namespace mp3c::converter
