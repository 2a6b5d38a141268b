#pragma once

// What the gateway's handlers need from the world outside the process, as three small interfaces. gateway_app.cpp
// wires the real ones (MariaDB, RabbitMQ, the system clock); the handlers' unit tests give in-memory ones, so every
// route's logic is tested without servers (the integration tests cover the real ones).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "job.hpp"
#include "mp3c/messages.hpp"

namespace mp3c::gateway {

// The job records. Infrastructure failures throw (mysql::Error for the real one).
class Jobs {
  public:
    virtual ~Jobs() = default;
    // Whether the records can be used now (the schema is in place); handlers answer 503 when not.
    virtual bool ready() const = 0;
    virtual void create(const Job& job) = 0;
    virtual std::optional<Job> find(const std::string& id) = 0;
    virtual std::optional<Job> find_by_mp3(const std::string& mp3_fid) = 0;
    virtual std::vector<Job> list(const JobQuery& query) = 0;
    // Bytes a user keeps stored: uploads of jobs not yet converted, and MP3s.
    virtual uint64_t stored_bytes(uint64_t owner_id) = 0;
    // Applies an event if it moves the job forward (never out of a final state, progress never backwards). Returns
    // whether the job changed.
    virtual bool apply(const StatusEvent& event) = 0;
    // queued → cancelled; false when the job was not queued (any more).
    virtual bool cancel_queued(const std::string& id) = 0;
    virtual void forget_video(const std::string& id) = 0;  // the upload was deleted after conversion or cancellation
    virtual bool remove(const std::string& id) = 0;
};

// Where jobs go to be converted, and where status changes are announced. Throws amqp::Error when a message was not
// confirmed.
class JobQueue {
  public:
    virtual ~JobQueue() = default;
    virtual void submit(const messages::VideoJob& job) = 0;
    virtual void announce(const messages::StatusEvent& event) = 0;
    // Jobs waiting for a converter; nullopt when the broker cannot be asked.
    virtual std::optional<uint32_t> depth() = 0;
};

class Clock {
  public:
    virtual ~Clock() = default;
    virtual int64_t now_ms() const = 0;  // since the epoch
};

class SystemClock final : public Clock {
  public:
    int64_t now_ms() const override {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

}  // namespace mp3c::gateway
