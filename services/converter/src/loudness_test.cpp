#include "loudness.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace mp3c::converter {
namespace {

constexpr int kRate = 48000;

// Planar audio: `channels` copies of one signal.
struct Audio {
    std::vector<std::vector<float>> planes;
    std::vector<const float*> pointers() const {
        std::vector<const float*> p;
        for (const auto& plane : planes) p.push_back(plane.data());
        return p;
    }
    size_t samples() const { return planes.at(0).size(); }
};

Audio make(int channels, size_t samples, const std::function<float(size_t)>& at) {
    Audio a;
    a.planes.assign(static_cast<size_t>(channels), std::vector<float>(samples));
    for (size_t i = 0; i < samples; ++i) {
        float v = at(i);
        for (auto& plane : a.planes) plane[i] = v;
    }
    return a;
}

float sine(size_t i, double amplitude, double hz = 1000) {
    return static_cast<float>(amplitude * std::sin(2 * M_PI * hz * static_cast<double>(i) / kRate));
}

// Runs the normaliser over the audio in chunks of `chunk` samples; what comes out, in order.
Audio normalise(Normaliser& n, const Audio& in, size_t chunk) {
    Audio out;
    out.planes.resize(in.planes.size());
    auto sink = [&](const float* const* planes, int samples) {
        for (size_t c = 0; c < out.planes.size(); ++c)
            out.planes[c].insert(out.planes[c].end(), planes[c], planes[c] + samples);
    };
    auto p = in.pointers();
    for (size_t at = 0; at < in.samples(); at += chunk) {
        std::vector<const float*> from;
        for (const float* plane : p) from.push_back(plane + at);
        n.process(from.data(), static_cast<int>(std::min(chunk, in.samples() - at)), sink);
    }
    n.finish(sink);
    return out;
}

LoudnessMeter measured(const Audio& a) {
    LoudnessMeter m(static_cast<int>(a.planes.size()), kRate, true);
    auto p = a.pointers();
    m.add(p.data(), static_cast<int>(a.samples()));
    return m;
}

TEST(LoudnessMeter, AStereoSineAtMinus23DbfsIsMinus23Lufs) {
    // EBU Tech 3341's first case: 1 kHz, -23 dBFS in both channels.
    auto a = make(2, 20 * kRate, [](size_t i) { return sine(i, std::pow(10.0, -23.0 / 20)); });
    auto m = measured(a);
    ASSERT_TRUE(m.integrated_lufs());
    EXPECT_NEAR(*m.integrated_lufs(), -23.0, 0.1);
    EXPECT_NEAR(*m.true_peak_dbtp(), -23.0, 0.2);
    auto mono = make(1, 20 * kRate, [](size_t i) { return sine(i, std::pow(10.0, -23.0 / 20)); });
    EXPECT_NEAR(*measured(mono).integrated_lufs(), -26.0, 0.1) << "one channel: 3 dB less";
}

TEST(LoudnessMeter, SilenceAndTooShortHaveNoLoudness) {
    auto silence = make(2, 5 * kRate, [](size_t) { return 0.0f; });
    EXPECT_FALSE(measured(silence).integrated_lufs());
    EXPECT_FALSE(measured(silence).true_peak_dbtp());
    auto blip = make(2, kRate / 10, [](size_t i) { return sine(i, 0.5); });
    EXPECT_FALSE(measured(blip).integrated_lufs()) << "under one 400 ms gating block";
}

TEST(Normaliser, AGainAloneScalesEverySampleAndKeepsTheLength) {
    auto in = make(2, 3 * kRate + 17, [](size_t i) { return sine(i, 0.1); });
    Normaliser n(2, kRate, 6.0, /*limit=*/false, -1);
    auto out = normalise(n, in, 1000);
    ASSERT_EQ(out.samples(), in.samples());
    for (size_t i = 0; i < in.samples(); i += 101) ASSERT_NEAR(out.planes[1][i], in.planes[1][i] * 1.99526f, 1e-5);
    EXPECT_EQ(n.limited_blocks(), 0);
    EXPECT_NEAR(*measured(out).integrated_lufs(), *measured(in).integrated_lufs() + 6.0, 0.01);
}

TEST(Normaliser, TheLimiterHoldsTheTruePeakUnderTheCeilingAndLeavesTheRestAlone) {
    // A quiet tone with a loud click every second: +12 dB puts the clicks far over -1 dBTP, the tone not.
    auto in = make(2, 10 * kRate, [](size_t i) {
        float v = sine(i, 0.1, 440);
        if (i % kRate < 48) v += (i % 2 == 0 ? 0.8f : -0.8f);
        return v;
    });
    Normaliser n(2, kRate, 12.0, /*limit=*/true, -1);
    auto out = normalise(n, in, 4096);
    ASSERT_EQ(out.samples(), in.samples());
    auto tp = measured(out).true_peak_dbtp();
    ASSERT_TRUE(tp);
    EXPECT_LE(*tp, -1.0 + 0.05);
    EXPECT_GT(*tp, -3.0) << "limited, not silenced";
    EXPECT_GT(n.limited_blocks(), 0);
    EXPECT_LT(n.limited_blocks(), n.blocks() / 2) << "only around the clicks";
    // Half a second after a click the tone has its full gain again.
    for (size_t i = kRate / 2; i < kRate / 2 + 1000; ++i)
        ASSERT_NEAR(out.planes[0][i], in.planes[0][i] * 3.98107f, 1e-4);
}

TEST(Normaliser, NoiseDrivenFarOverFullScaleStaysUnderTheCeilingWhateverTheChunks) {
    std::mt19937 random(7);
    std::uniform_real_distribution<float> noise(-1, 1);
    auto in = make(2, 4 * kRate, [&](size_t) { return noise(random); });
    Normaliser whole(2, kRate, 20.0, true, -2), bits(2, kRate, 20.0, true, -2);
    auto a = normalise(whole, in, in.samples());
    auto b = normalise(bits, in, 1);
    ASSERT_EQ(a.planes, b.planes) << "the chunks the audio comes in do not matter";
    EXPECT_LE(*measured(a).true_peak_dbtp(), -2.0 + 0.05);
}

}  // namespace
}  // namespace mp3c::converter
