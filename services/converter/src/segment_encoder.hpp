#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ffmpeg_io.hpp"

namespace mp3c::converter::detail {

// How a long input is cut for parallel encoding, in MP3 frames of the output (1152 samples, 576 below 32 kHz).
struct SegmentPlan {
    int frame_size = 1152;
    int64_t segment_frames = 0;  // a segment's own length: its start and end are frame boundaries of the whole
    int prime_frames = 0;        // encoded before a segment's start and dropped: the encoder's state settles on them
    int overrun_frames = 0;      // encoded after a segment's end: the join may fall anywhere in them
    int join_margin = 0;         // the last overrun frames are never a join (the encoder's end is near)
    int threads = 2;

    // Segments as long as memory allows (the PCM of threads + 2 segments at once stays under 10 MiB), 3 to 10 s.
    // `seconds` > 0 asks for segments about that long (at least twice the overlaps).
    static SegmentPlan for_output(int frame_size, int sample_rate, int channels, int threads, double seconds = 0);
};

// No frame of an overlap could take the later segment's reservoir, even grown (a constant bitrate at the top of its
// table has no larger frame). Not seen in the tests; the conversion then runs again with one encoder.
class JoinFailed : public ConversionError {
  public:
    explicit JoinFailed(const std::string& reason) : ConversionError(Kind::internal, reason) {}
};

struct SegmentStats {
    int segments = 0;
    int64_t extra_frames = 0;  // priming and overrun frames encoded and dropped
    int latest_join = 0;       // the most frames past a segment's end a join had to move to find room
    int grown_frames = 0;      // joins that grew a frame to a higher bitrate to make room
};

// Encodes one conversion's audio as segments on `threads` threads at once and joins them into one stream of MP3
// frames that a decoder cannot tell from one encoder's: the same frame boundaries (segments start on frames of the
// whole), each segment's encoder primed on the audio before its start (those frames are dropped, so the overlap of
// the MDCT and the psychoacoustic state are the whole signal's), and the bit reservoir repaired at each join: the
// first kept frame's main data that lies in its dropped predecessors is moved into the room the earlier segment
// leaves unused (mp3_frames.hpp), at the first frame of the overlap where it fits. Packets reach `write` on the
// pushing thread, in order, timed as the whole's; the first carries the encoder delay and the last the padding, so
// the LAME header is the whole's.
class SegmentEncoder {
  public:
    using OpenEncoder = std::function<std::unique_ptr<AVCodecContext, CodecContextFree>()>;
    using Write = std::function<void(AVPacket*)>;

    SegmentEncoder(const SegmentPlan& plan, OpenEncoder open, Write write);
    ~SegmentEncoder();
    SegmentEncoder(const SegmentEncoder&) = delete;
    SegmentEncoder& operator=(const SegmentEncoder&) = delete;

    // Frames of frame_size samples (the last may be shorter). nullptr ends the input: everything is encoded and
    // written before it returns. Blocks while enough segments are waiting; rethrows a segment's failure.
    void push(FramePtr frame);
    const SegmentStats& stats() const { return stats_; }

  private:
    struct Job {
        int64_t first_frame = 0;  // the whole's index of frames[0] and packets[0]
        int64_t end_frame = 0;    // the segment's own end (its overrun follows)
        std::vector<FramePtr> frames;
        std::vector<PacketPtr> packets;
        int64_t keep_from = 0;  // the whole's index of the first packet to write (after the join before it)
        bool done = false;      // encoded (under mutex_)
    };

    void run();
    void encode(Job& job);
    void dispatch(std::shared_ptr<Job> job);
    void write_joined(bool all);
    int64_t join(Job& earlier, Job& later);
    bool try_join(Job& earlier, Job& later, int64_t at, bool grow);
    void write_packets(Job& job, int64_t from, int64_t to);
    void rethrow_failure();

    SegmentPlan plan_;
    OpenEncoder open_;
    Write write_;
    SegmentStats stats_;
    int64_t next_frame_ = 0;                    // the whole's index of the next frame pushed
    int64_t next_start_ = 0;                    // where the next segment's priming starts
    std::deque<std::shared_ptr<Job>> filling_;  // taking frames (two while one's overrun and the next's priming meet)
    std::deque<std::shared_ptr<Job>> sent_;     // to the encoders, in order, not yet written

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Job*> todo_;
    bool stopping_ = false;
    std::exception_ptr error_;
    std::vector<std::thread> threads_;  // last: started once everything above exists
};

}  // namespace mp3c::converter::detail
