#include "loudness.hpp"

#include <ebur128.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mp3c::converter {

namespace {

Ebur128State make_state(int channels, int sample_rate, int mode) {
    Ebur128State state(ebur128_init(static_cast<unsigned>(channels), static_cast<unsigned long>(sample_rate), mode));
    if (!state)
        throw std::runtime_error("libebur128: cannot measure " + std::to_string(channels) + " channels at " +
                                 std::to_string(sample_rate) + " Hz");
    return state;
}

void interleave(const float* const* planes, int channels, int offset, int samples, std::vector<float>& out) {
    out.resize(static_cast<size_t>(channels) * static_cast<size_t>(samples));
    for (int c = 0; c < channels; ++c) {
        const float* from = planes[c] + offset;
        for (int i = 0; i < samples; ++i) out[static_cast<size_t>(i) * channels + c] = from[i];
    }
}

double to_db(double linear) { return 20 * std::log10(linear); }

ebur128_state* raw(const Ebur128State& state) { return static_cast<ebur128_state*>(state.get()); }

}  // namespace

void Ebur128Free::operator()(void* state) const {
    auto* s = static_cast<ebur128_state*>(state);
    ebur128_destroy(&s);
}

LoudnessMeter::LoudnessMeter(int channels, int sample_rate, bool true_peak)
    : state_(make_state(channels, sample_rate,
                        EBUR128_MODE_I | EBUR128_MODE_HISTOGRAM | (true_peak ? EBUR128_MODE_TRUE_PEAK : 0))),
      channels_(channels),
      true_peak_(true_peak) {}

void LoudnessMeter::add(const float* const* planes, int samples) {
    if (samples <= 0) return;
    interleave(planes, channels_, 0, samples, interleaved_);
    ebur128_add_frames_float(raw(state_), interleaved_.data(), static_cast<size_t>(samples));
}

std::optional<double> LoudnessMeter::integrated_lufs() const {
    double lufs = 0;
    if (ebur128_loudness_global(raw(state_), &lufs) != EBUR128_SUCCESS || !std::isfinite(lufs)) return std::nullopt;
    return lufs;
}

std::optional<double> LoudnessMeter::true_peak_dbtp() const {
    if (!true_peak_) return std::nullopt;
    double peak = 0;
    for (int c = 0; c < channels_; ++c) {
        double p = 0;
        if (ebur128_true_peak(raw(state_), static_cast<unsigned>(c), &p) == EBUR128_SUCCESS) peak = std::max(peak, p);
    }
    if (!(peak > 0)) return std::nullopt;
    return to_db(peak);
}

Normaliser::Normaliser(int channels, int sample_rate, double gain_db, bool limit, double ceiling_dbtp)
    : channels_(channels),
      gain_(std::pow(10.0, gain_db / 20)),
      limit_(limit),
      // Aimed 0.15 dB under: the gain moving within a block changes the waveform between samples a little.
      ceiling_(std::pow(10.0, (ceiling_dbtp - 0.15) / 20)),
      // 5 ms ahead (at least two blocks): long enough to ramp down without a click, short enough not to be heard.
      lookahead_(std::max(2, static_cast<int>(std::ceil(0.005 * sample_rate / kBlock)))),
      rise_(std::pow(10.0, kReleaseDbPerSecond * kBlock / sample_rate / 20)),
      planes_(static_cast<size_t>(channels)) {
    if (limit_) detector_ = make_state(channels, sample_rate, EBUR128_MODE_TRUE_PEAK);
    filling_ = fresh_block();
}

Normaliser::Block Normaliser::fresh_block() {
    if (spare_.empty()) {
        Block block;
        block.samples.resize(static_cast<size_t>(channels_) * kBlock);
        return block;
    }
    Block block = std::move(spare_.back());
    spare_.pop_back();
    block.length = 0;
    block.allowed = 1;
    return block;
}

Normaliser::~Normaliser() = default;

void Normaliser::process(const float* const* planes, int samples, const Sink& sink) {
    for (int at = 0; at < samples;) {
        int n = std::min(samples - at, kBlock - filling_.length);
        for (int c = 0; c < channels_; ++c) {
            float* to = filling_.samples.data() + static_cast<size_t>(c) * kBlock + filling_.length;
            const float* from = planes[c] + at;
            for (int i = 0; i < n; ++i) to[i] = static_cast<float>(from[i] * gain_);
        }
        filling_.length += n;
        at += n;
        if (filling_.length == kBlock) {
            close_block();
            release_ready(sink, false);
        }
    }
}

void Normaliser::finish(const Sink& sink) {
    if (filling_.length > 0) close_block();
    release_ready(sink, true);
}

void Normaliser::close_block() {
    Block block = std::move(filling_);
    filling_ = fresh_block();
    if (limit_) {
        for (int c = 0; c < channels_; ++c) planes_[c] = block.samples.data() + static_cast<size_t>(c) * kBlock;
        interleave(planes_.data(), channels_, 0, block.length, interleaved_);
        ebur128_add_frames_float(raw(detector_), interleaved_.data(), static_cast<size_t>(block.length));
        double peak = 0;
        for (int c = 0; c < channels_; ++c) {
            double p = 0;
            if (ebur128_prev_true_peak(raw(detector_), static_cast<unsigned>(c), &p) == EBUR128_SUCCESS) {
                peak = std::max(peak, p);
            }
        }
        if (peak > ceiling_) block.allowed = ceiling_ / peak;
    }
    pending_.push_back(std::move(block));
}

// A block goes out once the `lookahead` blocks after it are known (all of them at the end). Its gain at its end is
// the lowest of: what it and the next block allow, each later block's allowance raised by a ramp (the further ahead,
// the less it counts now), and the last gain raised by the release.
void Normaliser::release_ready(const Sink& sink, bool all) {
    while (!pending_.empty() && (all || static_cast<int>(pending_.size()) > lookahead_)) {
        double target = last_gain_ * rise_;
        for (size_t j = 0; j < pending_.size() && static_cast<int>(j) <= lookahead_; ++j) {
            double allowed = pending_[j].allowed;
            double ramp = j <= 1 ? 0 : static_cast<double>(j - 1) / lookahead_;
            target = std::min(target, allowed + (1 - allowed) * ramp);
        }
        target = std::min(target, 1.0);
        Block block = std::move(pending_.front());
        pending_.pop_front();
        emit(block, target, sink);
        spare_.push_back(std::move(block));
    }
}

void Normaliser::emit(Block& block, double to, const Sink& sink) {
    ++blocks_;
    if (to < 1 || last_gain_ < 1) ++limited_blocks_;
    // The gain at the end of the block before is within this block's allowance (it was worked out with this block one
    // ahead), except for the first block, which has none before it.
    double from = std::min(last_gain_, block.allowed);
    if (from != 1 || to != 1) {
        for (int c = 0; c < channels_; ++c) {
            float* s = block.samples.data() + static_cast<size_t>(c) * kBlock;
            for (int i = 0; i < block.length; ++i) {
                s[i] = static_cast<float>(s[i] * (from + (to - from) * (i + 1) / block.length));
            }
        }
    }
    last_gain_ = to;
    for (int c = 0; c < channels_; ++c) planes_[c] = block.samples.data() + static_cast<size_t>(c) * kBlock;
    sink(planes_.data(), block.length);
}

}  // namespace mp3c::converter
