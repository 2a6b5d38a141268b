#include "peak_meter.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace mp3c::converter {
namespace {

// Feeds `samples` of one channel in chunks of `chunk`, the same samples on both channels of a stereo stream except
// where `right` differs.
void feed(PeakMeter& meter, const std::vector<float>& left, const std::vector<float>& right, size_t chunk) {
    for (size_t at = 0; at < left.size(); at += chunk) {
        const float* planes[] = {left.data() + at, right.data() + at};
        meter.add(planes, 2, static_cast<int>(std::min(chunk, left.size() - at)));
    }
}

TEST(PeakMeter, SilenceThenAToneShowsWhereTheToneStarts) {
    std::vector<float> left(16000, 0.0f), right(16000, 0.0f);
    for (size_t i = 8000; i < left.size(); ++i) right[i] = (i % 2 == 0 ? 0.5f : -0.5f);  // only on one channel
    PeakMeter meter;
    feed(meter, left, right, 1000);
    auto w = meter.waveform(8000);
    EXPECT_DOUBLE_EQ(w.seconds_per_point, 256.0 / 8000);
    ASSERT_EQ(w.peaks.size(), 63u) << "62 whole runs and the shorter last one";
    for (size_t i = 0; i < 31; ++i) EXPECT_EQ(w.peaks[i], 0.0f) << i;
    for (size_t i = 32; i < w.peaks.size(); ++i) EXPECT_EQ(w.peaks[i], 0.5f) << i;
}

TEST(PeakMeter, LongAudioEndsWithBoundedPointsThatCoverIt) {
    const int64_t exactly_full = PeakMeter::kFirstRun * static_cast<int64_t>(PeakMeter::kMaxPoints);
    for (int64_t samples : {exactly_full, int64_t{10'000'000}, int64_t{44100} * 3600}) {
        PeakMeter meter;
        std::vector<float> block(1152, 0.25f);
        for (int64_t at = 0; at < samples; at += 1152) {
            const float* planes[] = {block.data()};
            meter.add(planes, 1, static_cast<int>(std::min<int64_t>(1152, samples - at)));
        }
        auto w = meter.waveform(44100);
        EXPECT_GE(w.peaks.size(), PeakMeter::kMaxPoints / 2) << samples;
        EXPECT_LE(w.peaks.size(), PeakMeter::kMaxPoints) << samples;
        double seconds = static_cast<double>(samples) / 44100;
        EXPECT_GE(w.seconds_per_point * static_cast<double>(w.peaks.size()), seconds - 1e-9) << samples;
        EXPECT_LT(w.seconds_per_point * static_cast<double>(w.peaks.size() - 1), seconds) << samples;
        for (float peak : w.peaks) ASSERT_EQ(peak, 0.25f);
    }
}

TEST(PeakMeter, AClickStaysWhereItIsThroughMergesAndChunking) {
    const size_t samples = 3'000'000, click = 2'345'678;
    std::vector<float> audio(samples, 0.0f);
    audio[click] = -0.9f;
    PeakMeter whole, pieces;
    feed(whole, audio, audio, samples);
    feed(pieces, audio, audio, 7);
    auto a = whole.waveform(48000), b = pieces.waveform(48000);
    ASSERT_EQ(a.peaks, b.peaks) << "chunk sizes do not matter";
    size_t loud = 0;
    for (size_t i = 0; i < a.peaks.size(); ++i) {
        if (a.peaks[i] > 0) {
            EXPECT_FLOAT_EQ(a.peaks[i], 0.9f);
            ++loud;
            EXPECT_EQ(i, click / static_cast<size_t>(std::llround(a.seconds_per_point * 48000)));
        }
    }
    EXPECT_EQ(loud, 1u);
}

TEST(PeakMeter, OverFullScaleIsClippedNotANumberIsSilenceAndNoAudioHasNoPoints) {
    std::vector<float> audio = {2.5f, std::numeric_limits<float>::quiet_NaN()};
    audio.resize(PeakMeter::kFirstRun * 2, 0.0f);
    audio[PeakMeter::kFirstRun] = std::numeric_limits<float>::quiet_NaN();
    PeakMeter meter;
    feed(meter, audio, audio, audio.size());
    auto w = meter.waveform(44100);
    ASSERT_EQ(w.peaks.size(), 2u);
    EXPECT_EQ(w.peaks[0], 1.0f);
    EXPECT_EQ(w.peaks[1], 0.0f);
    EXPECT_TRUE(PeakMeter().waveform(44100).peaks.empty());
}

}  // namespace
}  // namespace mp3c::converter
