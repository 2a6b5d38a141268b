#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "ffmpeg_io.hpp"

namespace mp3c::converter::detail {

// The MP3 encoder and muxer on a thread of their own (Limits::threads >= 2). LAME is single-threaded and costs about
// as much as demuxing, decoding and resampling together, so on two cores the halves overlap. The queue is short
// (a few hundred kilobytes of PCM), so memory stays flat whichever side is slower.
class EncoderThread {
  public:
    EncoderThread(std::function<void(const AVFrame*)> encode, size_t capacity)
        : encode_(std::move(encode)), capacity_(capacity), thread_([this] { run(); }) {}

    ~EncoderThread() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        changed_.notify_all();
        thread_.join();
    }

    // Blocks while the queue is full. nullptr flushes the encoder and ends the thread. Rethrows the encoder's failure.
    void push(FramePtr frame) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return queue_.size() < capacity_ || error_ || finished_; });
        if (error_) std::rethrow_exception(error_);
        queue_.push_back(std::move(frame));
        // Only an encoder waiting on an empty queue needs waking: a wake-up per frame cost a futex call each way
        // (0.4 s of system time for 10 minutes of audio).
        if (queue_.size() == 1) changed_.notify_all();
    }

    // Waits until everything pushed (including the final nullptr) is encoded; rethrows the encoder's failure.
    void wait() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return finished_ || error_; });
        if (error_) std::rethrow_exception(error_);
    }

  private:
    void run() {
        try {
            for (;;) {
                FramePtr frame;
                {
                    std::unique_lock lock(mutex_);
                    changed_.wait(lock, [&] { return !queue_.empty() || stopping_; });
                    if (stopping_) return;  // the conversion failed elsewhere
                    frame = std::move(queue_.front());
                    queue_.pop_front();
                    // The decoder, when it waits on a full queue, is woken once half of it is free, not per frame.
                    if (queue_.size() == capacity_ / 2) changed_.notify_all();
                }
                encode_(frame.get());
                if (!frame) break;
            }
            std::lock_guard lock(mutex_);
            finished_ = true;
        } catch (...) {
            std::lock_guard lock(mutex_);
            error_ = std::current_exception();
        }
        changed_.notify_all();
    }

    std::function<void(const AVFrame*)> encode_;
    size_t capacity_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<FramePtr> queue_;
    bool stopping_ = false;
    bool finished_ = false;
    std::exception_ptr error_;
    std::thread thread_;  // last: starts once everything above exists
};

}  // namespace mp3c::converter::detail
