#include "segment_encoder.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <span>

#include "mp3_frames.hpp"

namespace mp3c::converter::detail {

namespace {

constexpr int kReferenceFrame = 1152;  // the overlaps are sized in samples of MPEG-1 frames
// Measured on 10 minutes of a chirp and pink noise and of a sine (bench/seam_check.py): 4 frames of priming leave the
// first joins of a 320 kb/s encode up to 2.9 dB worse than one encoder in their 100 ms window, 8 frames 1.3 dB. Joins
// fall in the first 6 frames of the overrun (most in the first); past them a frame is grown instead.
constexpr int kPrimeSamples = 8 * kReferenceFrame;
// Below 32 kHz (MPEG-2 and 2.5, one granule a frame) twice that: at 8 kHz, 32 kb/s, 8 reference frames left a join
// window up to 3.2 dB worse than one encoder's, 16 under 0.3 dB. Such encodes are cheap.
constexpr int kLowRatePrimeSamples = 16 * kReferenceFrame;
constexpr int kOverrunSamples = 8 * kReferenceFrame;
constexpr int kMarginSamples = 3 * kReferenceFrame;
// Short segments keep memory low and lose little: 6 s segments took 2.65 s for 10 minutes against 2.88 s for 12 s
// ones (the last segment, encoded alone, is shorter), with a peak RSS of 50 MiB instead of 62.
constexpr double kPcmBudgetBytes = 10.0 * 1024 * 1024;
constexpr double kShortestSegmentSeconds = 3, kLongestSegmentSeconds = 10;
constexpr int kReservoirFrames = 8;  // 511 bytes of reservoir lie within this many frames before a join

int frames_for(int samples, int frame_size) { return (samples + frame_size - 1) / frame_size; }

}  // namespace

SegmentPlan SegmentPlan::for_output(int frame_size, int sample_rate, int channels, int threads, double seconds) {
    SegmentPlan plan;
    plan.frame_size = frame_size;
    plan.threads = std::max(threads, 1);
    plan.prime_frames = frames_for(frame_size < kReferenceFrame ? kLowRatePrimeSamples : kPrimeSamples, frame_size);
    plan.overrun_frames = frames_for(kOverrunSamples, frame_size);
    plan.join_margin = frames_for(kMarginSamples, frame_size);
    double frame_bytes = static_cast<double>(frame_size) * channels * sizeof(float);
    double frames_per_second = static_cast<double>(sample_rate) / frame_size;
    double fits = kPcmBudgetBytes / ((plan.threads + 2) * frame_bytes);
    plan.segment_frames = static_cast<int64_t>(
        std::clamp(fits, kShortestSegmentSeconds * frames_per_second, kLongestSegmentSeconds * frames_per_second));
    if (seconds > 0) plan.segment_frames = static_cast<int64_t>(seconds * frames_per_second);
    plan.segment_frames = std::max<int64_t>(plan.segment_frames, 2 * (plan.prime_frames + plan.overrun_frames));
    return plan;
}

SegmentEncoder::SegmentEncoder(const SegmentPlan& plan, OpenEncoder open, Write write)
    : plan_(plan), open_(std::move(open)), write_(std::move(write)) {
    auto first = std::make_shared<Job>();
    first->end_frame = plan_.segment_frames;
    filling_.push_back(first);
    next_start_ = plan_.segment_frames - plan_.prime_frames;
    for (int i = 0; i < plan_.threads; ++i) threads_.emplace_back([this] { run(); });
}

SegmentEncoder::~SegmentEncoder() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    for (auto& thread : threads_) thread.join();
}

void SegmentEncoder::push(FramePtr frame) {
    rethrow_failure();
    if (!frame) {
        // The end: the oldest segment still filling takes the rest; a later one only had frames it also has.
        filling_.front()->end_frame = next_frame_;
        dispatch(filling_.front());
        filling_.clear();
        write_joined(true);
        return;
    }
    if (next_frame_ == next_start_) {
        auto job = std::make_shared<Job>();
        job->first_frame = job->keep_from = next_frame_;
        job->end_frame = next_frame_ + plan_.prime_frames + plan_.segment_frames;
        filling_.push_back(job);
        next_start_ += plan_.segment_frames;
    }
    ++next_frame_;
    for (size_t i = 0; i + 1 < filling_.size(); ++i) {
        filling_[i]->frames.emplace_back(av_frame_clone(frame.get()));
        if (!filling_[i]->frames.back()) fail(Kind::internal, "out of memory");
    }
    filling_.back()->frames.push_back(std::move(frame));
    const Job& oldest = *filling_.front();
    if (oldest.first_frame + static_cast<int64_t>(oldest.frames.size()) == oldest.end_frame + plan_.overrun_frames) {
        dispatch(filling_.front());
        filling_.pop_front();
    }
}

void SegmentEncoder::dispatch(std::shared_ptr<Job> job) {
    // Memory stays bounded: at most one segment more than there are encoders waits to be encoded or written.
    for (;;) {
        write_joined(false);
        std::unique_lock lock(mutex_);
        if (error_) break;
        if (sent_.size() <= static_cast<size_t>(plan_.threads)) break;
        changed_.wait(lock, [&] { return error_ || (sent_.size() >= 2 && sent_[0]->done && sent_[1]->done); });
    }
    rethrow_failure();
    ++stats_.segments;
    sent_.push_back(job);
    {
        std::lock_guard lock(mutex_);
        todo_.push_back(job.get());
    }
    changed_.notify_all();
}

// Writes each segment whose successor is encoded too (the join needs both); with `all`, waits for every segment.
void SegmentEncoder::write_joined(bool all) {
    for (;;) {
        bool both = false, last = false;
        {
            std::unique_lock lock(mutex_);
            auto ready = [&] {
                both = sent_.size() >= 2 && sent_[0]->done && sent_[1]->done;
                last = sent_.size() == 1 && sent_[0]->done;
                return error_ || both || last || sent_.empty();
            };
            if (all) {
                changed_.wait(lock, ready);
            } else {
                ready();
            }
        }
        rethrow_failure();
        if (both) {
            int64_t at = join(*sent_[0], *sent_[1]);
            write_packets(*sent_[0], sent_[0]->keep_from, at);
            sent_[1]->keep_from = at;
            sent_.pop_front();
        } else if (last && all) {
            Job& job = *sent_[0];
            write_packets(job, job.keep_from, job.first_frame + static_cast<int64_t>(job.packets.size()));
            sent_.pop_front();
        } else {
            return;
        }
    }
}

// Where two segments join: the first frame of the overlap where the later segment's reservoir fits into the room the
// earlier one leaves. Two encoders of the same audio often run in step with the later one holding a few bytes more
// in its reservoir; where no frame fits, the earlier segment's last kept frame grows to a higher bitrate (a frame of
// a different bitrate is ordinary MP3, as in every VBR file) to make the room.
int64_t SegmentEncoder::join(Job& earlier, Job& later) {
    for (bool grow : {false, true}) {
        for (int64_t at = earlier.end_frame; at <= earlier.end_frame + plan_.overrun_frames - plan_.join_margin; ++at) {
            if (try_join(earlier, later, at, grow)) {
                stats_.latest_join = std::max(stats_.latest_join, static_cast<int>(at - earlier.end_frame));
                return at;
            }
        }
    }
    throw JoinFailed("joining segments: no frame of the overlap has room for the next segment's bit reservoir");
}

bool SegmentEncoder::try_join(Job& earlier, Job& later, int64_t at, bool grow) {
    auto span_of = [](const PacketPtr& p) { return std::span<uint8_t>(p->data, static_cast<size_t>(p->size)); };
    const int64_t in_earlier = at - earlier.first_frame, in_later = at - later.first_frame;
    const int64_t earliest_kept = earlier.keep_from - earlier.first_frame;
    if (in_earlier >= static_cast<int64_t>(earlier.packets.size()) ||
        in_later >= static_cast<int64_t>(later.packets.size()) || in_earlier <= earliest_kept) {
        return false;
    }
    const AVPacket& own = *earlier.packets[static_cast<size_t>(in_earlier)];
    const AVPacket& next = *later.packets[static_cast<size_t>(in_later)];
    auto room = mp3::parse_frame({own.data, static_cast<size_t>(own.size)});
    auto needed = mp3::parse_frame({next.data, static_cast<size_t>(next.size)});
    if (!room || !needed) fail(Kind::internal, "joining segments: the encoder made something not an MP3 frame");
    int free_bytes = room->main_data_begin;
    const int deficit = needed->main_data_begin - free_bytes;
    PacketPtr& last_kept = earlier.packets[static_cast<size_t>(in_earlier - 1)];
    std::optional<mp3::GrownHeader> grown;
    if (deficit > 0) {
        if (!grow) return false;
        grown = mp3::grow_bitrate(span_of(last_kept), deficit);
        if (!grown) return false;
        free_bytes += grown->added;
    }
    // The later segment's reservoir, and the earlier's frames it goes into (their last main-data bytes).
    std::vector<std::span<const uint8_t>> lead;
    for (int64_t i = std::max<int64_t>(in_later - kReservoirFrames, 0); i < in_later; ++i) {
        lead.push_back(span_of(later.packets[static_cast<size_t>(i)]));
    }
    if (grown) {
        const int size = last_kept->size;
        check(av_grow_packet(last_kept.get(), grown->added), Kind::internal, "out of memory");
        std::fill(last_kept->data + size, last_kept->data + last_kept->size, uint8_t{0});
        last_kept->data[2] = grown->third_byte;
        ++stats_.grown_frames;
    }
    std::vector<std::span<uint8_t>> before;
    for (int64_t i = std::max(in_earlier - kReservoirFrames, earliest_kept); i < in_earlier; ++i) {
        PacketPtr& packet = earlier.packets[static_cast<size_t>(i)];
        check(av_packet_make_writable(packet.get()), Kind::internal, "out of memory");
        before.push_back(span_of(packet));
    }
    if (mp3::move_reservoir(before, lead, needed->main_data_begin, free_bytes)) return true;
    if (grown) fail(Kind::internal, "joining segments: a grown frame did not make the room it should");
    return false;
}

void SegmentEncoder::write_packets(Job& job, int64_t from, int64_t to) {
    stats_.extra_frames += static_cast<int64_t>(job.packets.size()) - (to - from);
    for (int64_t i = from; i < to; ++i) {
        PacketPtr& packet = job.packets[static_cast<size_t>(i - job.first_frame)];
        write_(packet.get());
        packet.reset();
    }
    job.packets.clear();
}

void SegmentEncoder::rethrow_failure() {
    std::lock_guard lock(mutex_);
    if (error_) std::rethrow_exception(error_);
}

void SegmentEncoder::run() {
    for (;;) {
        Job* job = nullptr;
        {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return !todo_.empty() || stopping_; });
            if (stopping_) return;
            job = todo_.front();
            todo_.pop_front();
        }
        try {
            encode(*job);
            std::lock_guard lock(mutex_);
            job->done = true;
        } catch (...) {
            std::lock_guard lock(mutex_);
            if (!error_) error_ = std::current_exception();
            stopping_ = true;
        }
        changed_.notify_all();
    }
}

// One segment from its priming to its overrun (or the end), with an encoder of its own. Frames are freed as they are
// encoded.
void SegmentEncoder::encode(Job& job) {
    auto encoder = open_();
    PacketPtr packet(av_packet_alloc());
    if (!packet) fail(Kind::internal, "out of memory");
    auto drain = [&] {
        for (;;) {
            int rc = avcodec_receive_packet(encoder.get(), packet.get());
            if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
            check(rc, Kind::internal, "encoding");
            // Timed as the whole's packets: the muxer sees one stream.
            int64_t index = job.first_frame + static_cast<int64_t>(job.packets.size());
            packet->pts = packet->dts = index * plan_.frame_size - encoder->initial_padding;
            job.packets.emplace_back(av_packet_clone(packet.get()));
            if (!job.packets.back()) fail(Kind::internal, "out of memory");
            av_packet_unref(packet.get());
        }
    };
    for (size_t i = 0; i < job.frames.size(); ++i) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) fail(Kind::internal, "stopped");
        }
        AVFrame* frame = job.frames[i].get();
        frame->pts = (job.first_frame + static_cast<int64_t>(i)) * plan_.frame_size;
        check(avcodec_send_frame(encoder.get(), frame), Kind::internal, "encoding");
        job.frames[i].reset();
        drain();
    }
    job.frames.clear();
    check(avcodec_send_frame(encoder.get(), nullptr), Kind::internal, "encoding");
    drain();
}

}  // namespace mp3c::converter::detail
