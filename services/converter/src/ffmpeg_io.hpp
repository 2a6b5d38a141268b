#pragma once

// What the transcoder needs around FFmpeg's C API: owners for its contexts, errors as ConversionError, the
// conversion's watchdog, and the bridges between FFmpeg's I/O callbacks and MediaInput/MediaOutput. Internal to the
// converter: only its sources include it.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libswresample/swresample.h>
}

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "transcoder.hpp"

namespace mp3c::converter::detail {

using Kind = ConversionError::Kind;

constexpr int kIoBufferSize = 64 * 1024;

std::string av_error(int code);
[[noreturn]] void fail(Kind kind, const std::string& reason);
void check(int code, Kind kind, const std::string& what);

struct InputContextFree {
    void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct OutputContextFree {
    void operator()(AVFormatContext* f) const { avformat_free_context(f); }
};
struct IoContextFree {
    void operator()(AVIOContext* io) const {
        av_freep(&io->buffer);  // FFmpeg may have replaced the buffer we gave it: free the one it holds now
        avio_context_free(&io);
    }
};
struct CodecContextFree {
    void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct SwrFree {
    void operator()(SwrContext* s) const { swr_free(&s); }
};
struct FifoFree {
    void operator()(AVAudioFifo* f) const { av_audio_fifo_free(f); }
};
struct FrameFree {
    void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFree {
    void operator()(AVPacket* p) const { av_packet_free(&p); }
};

using FramePtr = std::unique_ptr<AVFrame, FrameFree>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFree>;

// The conversion's clock and its shutdown flag, asked by the input callbacks, FFmpeg's interrupt callback (which its
// probing loops call) and the decode loop. The allowance grows with the audio decoded, never with the length the file
// declares: a file that claims four hours but decodes slowly gets no more time for it.
class Watchdog {
  public:
    explicit Watchdog(const Limits& limits) : limits_(limits), started_(std::chrono::steady_clock::now()) {}

    void decoded(double seconds) { decoded_ms_.store(static_cast<int64_t>(seconds * 1000)); }

    // True once the conversion must stop (time is up, the worker is shutting down, or the job was cancelled).
    bool expired() {
        if (limits_.abandon != nullptr && limits_.abandon->load()) return true;
        if (cancelled()) return true;
        if (timed_out_.load()) return true;
        auto allowed = std::max<std::chrono::milliseconds>(
            limits_.timeout_floor,
            std::chrono::milliseconds(static_cast<int64_t>(limits_.timeout_ratio * static_cast<double>(decoded_ms_))));
        if (std::chrono::steady_clock::now() - started_ <= allowed) return false;
        timed_out_ = true;
        return true;
    }
    bool timed_out() const { return timed_out_.load(); }
    bool abandoned() const { return limits_.abandon != nullptr && limits_.abandon->load(); }
    bool cancelled() const { return limits_.cancel != nullptr && limits_.cancel->load(); }

    static int interrupt(void* opaque) { return static_cast<Watchdog*>(opaque)->expired() ? 1 : 0; }

  private:
    const Limits& limits_;
    std::chrono::steady_clock::time_point started_;
    std::atomic<int64_t> decoded_ms_{0};
    std::atomic<bool> timed_out_{false};
};

// The bridge between FFmpeg's I/O callbacks and MediaInput/MediaOutput. Exceptions never cross into C code: they are
// stored and turned into an I/O error.
struct InputBridge {
    MediaInput* input;
    Watchdog* watchdog;
    uint64_t position = 0;
    std::string error;
    bool no_space = false;  // the error was a full disk (the spooled copy of an upload that cannot seek)

    static int read(void* opaque, uint8_t* buffer, int size);
    static int64_t seek(void* opaque, int64_t offset, int whence);
    // The ConversionError for the stored error, saying whether it was a full disk.
    [[noreturn]] void fail_reading() const;
};

struct OutputBridge {
    MediaOutput* output;
    uint64_t limit = UINT64_MAX;
    uint64_t position = 0;
    uint64_t size = 0;
    std::string error;
    bool no_space = false;  // the error was a full disk
    bool over_limit = false;

    static int write(void* opaque, uint8_t* data, int size);
    static int64_t seek(void* opaque, int64_t offset, int whence);
    // The ConversionError for the stored error, saying whether it was a full disk.
    [[noreturn]] void fail_storing() const;
};

// An AVIOContext over the callbacks, with a buffer FFmpeg owns.
std::unique_ptr<AVIOContext, IoContextFree> make_io(void* opaque, bool writable, int (*read)(void*, uint8_t*, int),
                                                    int (*write)(void*, uint8_t*, int),
                                                    int64_t (*seek)(void*, int64_t, int));

}  // namespace mp3c::converter::detail
