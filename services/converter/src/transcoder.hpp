#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mp3c/messages.hpp"
#include "mp3c/output_options.hpp"
#include "mp3c/result.hpp"

// Video (or audio) in, MP3 out, in-process with libavformat, libavcodec, libswresample and libmp3lame: only the best
// audio stream is demuxed and decoded, never the video; memory does not grow with the input's size.
namespace mp3c::converter {

// Where the input comes from: random access, so that files whose index sits at the end (MP4 without faststart)
// work. read() returns 0 at the end; seek() is absolute.
class MediaInput {
  public:
    virtual ~MediaInput() = default;
    virtual size_t read(uint8_t* buffer, size_t size) = 0;
    virtual void seek(uint64_t offset) = 0;
    virtual uint64_t size() const = 0;
};

// Where the MP3 goes, as it is produced. An output that can seek back gets the Xing/LAME header rewritten at the
// end: it records the encoder's delay and padding, without which players (and ffprobe) count about 50 ms of silence
// that is not in the source, and it makes VBR durations exact.
class MediaOutput {
  public:
    virtual ~MediaOutput() = default;
    virtual void write(const uint8_t* data, size_t size) = 0;
    virtual bool seekable() const { return false; }
    virtual void seek(uint64_t offset) { (void)offset; }
    // Empties the output to be written again from its start; false when it cannot be.
    virtual bool restart() { return false; }
};

// Every bound on one conversion. Uploads are untrusted, and a legal file can still be hostile: hours of silence in a
// few megabytes of FLAC, hundreds of channels, a megahertz sample rate, thousands of streams, or data that decodes
// slowly. Each limit fails the conversion with a reason of its own (docs/configuration.md).
struct Limits {
    std::chrono::seconds max_duration{4 * 3600};  // MAX_DURATION
    uint64_t max_output_bytes = 256ull << 20;     // MAX_OUTPUT_BYTES, or what the owner's storage quota leaves
    bool output_limit_is_quota = false;           // max_output_bytes came from the owner's quota (said in the reason)
    // Wall-clock time: CONVERSION_TIMEOUT, or CONVERSION_TIMEOUT_RATIO times the audio decoded so far if that is more.
    // Measured against the audio actually decoded, not the length the file declares, which the file chooses.
    std::chrono::milliseconds timeout_floor{std::chrono::minutes(5)};
    double timeout_ratio = 0.5;
    int max_channels = 8;          // MAX_CHANNELS (7.1)
    int max_sample_rate = 192000;  // MAX_SAMPLE_RATE
    int max_streams = 64;          // MAX_STREAMS: video, audio, subtitle and data streams together
    // ENCODER_THREADS. 1: everything on the calling thread. 2 or more: the MP3 encoder on a thread of its own beside
    // the decoder and, for audio of at least `parallel_from` (when `parallel`), that many encoders at once on
    // segments joined without a seam (segment_encoder.hpp). The MP3 is the same with 1 and with one encoder thread.
    int threads = 2;
    bool parallel = true;                    // the worker's rule (worker.cpp) may say no for a job
    std::chrono::seconds parallel_from{60};  // PARALLEL_MIN_DURATION
    double segment_seconds = 0;              // 0: as long as memory allows (5 to 20 s); tests ask for more joins
    // Set to give up (shutdown): the conversion stops with a transient error, so its job is redelivered.
    const std::atomic<bool>* abandon = nullptr;
    // Set when the job was cancelled by its owner: the conversion stops (the worker then drops the job).
    const std::atomic<bool>* cancel = nullptr;
};

// A chapter as the MP3 has it: its place in the MP3 and in the source (they differ by a trim's start).
struct ChapterMark {
    double start_seconds = 0, end_seconds = 0;                // in the MP3
    double source_start_seconds = 0, source_end_seconds = 0;  // in the source
    std::string title;                                        // empty when the source gave none
};

struct ConversionResult {
    double duration_seconds = 0;  // of the audio encoded
    double decoded_seconds = 0;   // of the audio decoded to make it (less than the source's when a trim skipped ahead)
    int sample_rate = 0;
    int channels = 0;
    int64_t bitrate = 0;                         // bits per second (nominal for VBR)
    messages::Waveform waveform;                 // of the MP3's audio (peak_meter.hpp)
    std::optional<messages::Loudness> loudness;  // with the option loudness: what was measured and done
    bool cover = false;                          // the MP3 has the source's picture as its cover
    std::string cover_problem;                   // why the source's picture could not be used (not a failure)
    std::vector<ChapterMark> chapters;           // as written into the MP3 (none with chapters=none)
    std::vector<messages::Part> parts;           // chapters=split: each chapter's own MP3, as the PartSink kept it
    int segments = 0;                            // encoded in parallel as this many segments (0: by one encoder)
    int grown_frames = 0;                        // joins that raised a frame's bitrate to fit the reservoir
    int latest_join = 0;                         // the most frames past a segment's end a join moved
    int64_t dropped_frames = 0;                  // priming and overrun frames encoded and dropped (the overlaps' cost)
};

// chapters=split: where each chapter's own MP3 goes. A part is cut from the source exactly like a trim (same samples
// as that stretch of the whole MP3), with the whole's loudness gain, cover and tags, its own title and track n/N.
struct PartPlan {
    int index = 0, count = 0;                   // 1..count
    std::string title;                          // the chapter's, else "Part <index>"
    double start_seconds = 0, end_seconds = 0;  // in the whole MP3
};
class PartSink {
  public:
    virtual ~PartSink() = default;
    // Where a part is written; called for each part in order, after the whole MP3 is complete.
    virtual std::unique_ptr<MediaOutput> open(const PartPlan& plan) = 0;
    // The part is complete in `output` (the one open() gave): keep it, and say its size and id (messages::Part::fid).
    virtual messages::Part commit(const PartPlan& plan, MediaOutput& output) = 0;
};

// A conversion that failed. Permanent failures (the input is not usable) carry a reason for users; transient ones
// (I/O of the storage) may succeed on a retry.
class ConversionError : public std::runtime_error {
  public:
    enum class Kind {
        not_media,
        no_audio,
        corrupt,
        too_long,
        unsupported,         // the audio codec or its parameters
        unsupported_format,  // no allowed demuxer takes the file (input_format.hpp)
        output_too_large,
        timeout,
        too_many_channels,
        sample_rate_too_high,
        too_many_streams,
        trim_out_of_range,  // the trim's start is not before the end of the audio
        io,
        internal
    };
    // no_space: an io failure because a disk is full (ENOSPC, EDQUOT): the job waits for space, not a retry.
    ConversionError(Kind kind, const std::string& reason, bool no_space = false)
        : std::runtime_error(reason), kind_(kind), no_space_(no_space) {}
    Kind kind() const { return kind_; }
    bool no_space() const { return no_space_; }
    // Whether an exception an output threw says its disk is full: a std::system_error with ENOSPC or EDQUOT, or a
    // ConversionError that says so.
    static bool means_no_space(const std::exception& e);
    Outcome outcome() const {
        return kind_ == Kind::io || kind_ == Kind::internal ? Outcome::transient : Outcome::permanent;
    }
    std::string_view kind_name() const;

  private:
    Kind kind_;
    bool no_space_ = false;
};

// Progress as a fraction 0..1 of the source's duration (called often; the caller throttles).
using ProgressCallback = std::function<void(double fraction)>;

// With chapters=split and a PartSink, the parts follow the whole MP3 (progress: the whole to one half, the parts to
// the end); without a sink, split is keep.
ConversionResult convert(MediaInput& input, MediaOutput& output, const OutputOptions& options, const Limits& limits,
                         const ProgressCallback& progress = nullptr, PartSink* parts = nullptr);

// Local files, for the command line.
class FileInput : public MediaInput {
  public:
    explicit FileInput(const std::string& path);  // throws ConversionError(io)
    ~FileInput() override;
    size_t read(uint8_t* buffer, size_t size) override;
    void seek(uint64_t offset) override;
    uint64_t size() const override { return size_; }

  private:
    int fd_ = -1;
    uint64_t size_ = 0;
};

class FileOutput : public MediaOutput {
  public:
    explicit FileOutput(const std::string& path);  // writes path.part, renamed at commit(); removed otherwise
    ~FileOutput() override;
    void write(const uint8_t* data, size_t size) override;
    bool seekable() const override { return true; }
    void seek(uint64_t offset) override;
    bool restart() override;
    void commit();

  private:
    std::string path_, temporary_;
    int fd_ = -1;
};

}  // namespace mp3c::converter
