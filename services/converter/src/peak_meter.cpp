#include "peak_meter.hpp"

#include <algorithm>
#include <cmath>

namespace mp3c::converter {

void PeakMeter::add(const float* const* planes, int channels, int samples) {
    for (int i = 0; i < samples;) {
        int run = static_cast<int>(std::min<int64_t>(samples - i, samples_per_point_ - in_point_));
        float peak = peak_;
        for (int c = 0; c < channels; ++c) {
            const float* from = planes[c] + i;
            for (int k = 0; k < run; ++k) {
                float v = std::fabs(from[k]);
                if (v > peak) peak = v;  // NaN never compares greater: it counts as silence
            }
        }
        peak_ = peak;
        in_point_ += run;
        i += run;
        if (in_point_ == samples_per_point_) close_point();
    }
}

void PeakMeter::close_point() {
    points_.push_back(std::min(peak_, 1.0f));  // a float decoder may go past full scale; the MP3 clips there
    peak_ = 0;
    in_point_ = 0;
    if (points_.size() < kMaxPoints) return;
    // Full: each pair becomes one point of twice the run.
    for (size_t i = 0; i < points_.size() / 2; ++i) points_[i] = std::max(points_[2 * i], points_[2 * i + 1]);
    points_.resize(points_.size() / 2);
    samples_per_point_ *= 2;
}

messages::Waveform PeakMeter::waveform(int sample_rate) const {
    messages::Waveform w;
    w.seconds_per_point = static_cast<double>(samples_per_point_) / std::max(sample_rate, 1);
    w.peaks = points_;
    if (in_point_ > 0) w.peaks.push_back(std::min(peak_, 1.0f));  // the last, shorter run
    return w;
}

}  // namespace mp3c::converter
