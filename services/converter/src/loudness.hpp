#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

// Loudness normalisation (EBU R128 / ITU-R BS.1770) for the converter, on planar float audio at the MP3's rate and
// channels: a meter (libebur128) and the stage that applies a gain with a look-ahead true-peak limiter.
namespace mp3c::converter {

// libebur128's state: its header declares it as an anonymous struct, which cannot be named here.
struct Ebur128Free {
    void operator()(void* state) const;
};
using Ebur128State = std::unique_ptr<void, Ebur128Free>;

class LoudnessMeter {
  public:
    // true_peak: also the true peak (4x oversampled), which costs more.
    LoudnessMeter(int channels, int sample_rate, bool true_peak);
    void add(const float* const* planes, int samples);
    // Integrated loudness in LUFS; nullopt when nothing passes the absolute gate (silence, or under 0.4 s of audio).
    std::optional<double> integrated_lufs() const;
    // The highest true peak of any channel, in dBTP; nullopt for digital silence or without true_peak.
    std::optional<double> true_peak_dbtp() const;

  private:
    Ebur128State state_;
    int channels_;
    bool true_peak_;
    std::vector<float> interleaved_;
};

// Multiplies by a gain and, when `limit` is set, keeps the true peak under a ceiling with a look-ahead limiter: the
// audio is cut into blocks of kBlock samples, each block's true peak (libebur128's, 4x oversampled, of the gained
// audio) says the gain it may have, and the gain applied follows the lowest of those over the next `lookahead`
// blocks, ramping down before a peak and recovering at kReleaseDbPerSecond after it. Within a block the gain moves
// linearly between its two ends, each no higher than the block allows, so no block goes over. The output lags the
// input by `lookahead` + 1 blocks; finish() sends the rest.
class Normaliser {
  public:
    static constexpr int kBlock = 64;
    static constexpr double kReleaseDbPerSecond = 40;
    // Planes of `samples` samples each, in order.
    using Sink = std::function<void(const float* const* planes, int samples)>;

    Normaliser(int channels, int sample_rate, double gain_db, bool limit, double ceiling_dbtp);
    ~Normaliser();
    void process(const float* const* planes, int samples, const Sink& sink);
    void finish(const Sink& sink);
    // Blocks whose gain the limiter lowered, of all blocks.
    int64_t limited_blocks() const { return limited_blocks_; }
    int64_t blocks() const { return blocks_; }

  private:
    struct Block {
        std::vector<float> samples;  // channels × kBlock (planar), `length` of each used
        int length = 0;
        double allowed = 1;  // the gain this block may have, at most 1
    };
    void close_block();
    Block fresh_block();  // a sent block's storage again, once there is one (no allocation per block)
    void release_ready(const Sink& sink, bool all);
    void emit(Block& block, double to, const Sink& sink);

    int channels_;
    double gain_;
    bool limit_;
    double ceiling_;
    int lookahead_;
    double rise_;  // the gain's largest increase from one block to the next, as a factor
    Ebur128State detector_;
    std::vector<float> interleaved_;
    Block filling_;
    std::deque<Block> pending_;
    std::vector<Block> spare_;  // sent blocks, whose storage the next ones reuse
    double last_gain_ = 1;      // the limiter's gain at the end of the last block sent
    int64_t limited_blocks_ = 0, blocks_ = 0;
    std::vector<const float*> planes_;
};

}  // namespace mp3c::converter
