#pragma once

#include <cstdint>
#include <vector>

#include "mp3c/messages.hpp"

namespace mp3c::converter {

// The waveform of the audio going into the encoder, measured as it passes (no second pass, bounded memory): the
// loudest sample of any channel in each run of samples_per_point samples. The run starts short and doubles, merging
// neighbouring points, whenever the points would pass kMaxPoints, so any length ends with kMaxPoints / 2 to kMaxPoints
// points (fewer only for audio shorter than kMaxPoints short runs).
class PeakMeter {
  public:
    static constexpr size_t kMaxPoints = 2048;
    static constexpr int64_t kFirstRun = 256;  // samples: 5.8 ms at 44.1 kHz
    static_assert(kMaxPoints <= messages::Waveform::kMaxPoints);

    // Planar float samples (the encoder's format), `channels` planes of `samples` each.
    void add(const float* const* planes, int channels, int samples);
    // What was measured, at this sample rate; no points for no audio.
    messages::Waveform waveform(int sample_rate) const;

  private:
    void close_point();

    std::vector<float> points_;
    int64_t samples_per_point_ = kFirstRun;
    int64_t in_point_ = 0;  // samples in the point being measured
    float peak_ = 0;        // its loudest so far
};

}  // namespace mp3c::converter
