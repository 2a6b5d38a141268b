#pragma once

// What the gateway's handlers need from the world outside the process, as three small interfaces. gateway_app.cpp
// wires the real ones (MariaDB, RabbitMQ, the system clock); the handlers' unit tests give in-memory ones, so every
// route's logic is tested without servers (the integration tests cover the real ones).
#include <chrono>
#include <cstdint>
#include <functional>
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
    // The waveform a done job's event brought (JSON text, messages::Waveform); nullopt when it has none.
    virtual std::optional<std::string> waveform(const std::string& id) = 0;
    // Bytes a user keeps stored: uploads of jobs not yet converted, and MP3s.
    virtual uint64_t stored_bytes(uint64_t owner_id) = 0;
    // Applies an event if it moves the job forward (never out of a final state, progress never backwards). Returns
    // whether the job changed.
    virtual bool apply(const StatusEvent& event) = 0;
    // queued or processing → cancelled; false when the job had ended already.
    virtual bool cancel_unfinished(const std::string& id) = 0;
    virtual void forget_video(const std::string& id) = 0;  // the upload was deleted after conversion or cancellation
    virtual bool remove(const std::string& id) = 0;
    // Jobs of the owner that are queued (waiting or dispatched) or being converted.
    virtual uint64_t active_jobs(uint64_t owner_id) = 0;

    // Fair dispatch (dispatcher.hpp): a job is recorded waiting, and dispatched when its owner's turn comes.
    // The waiting jobs that may go now: for each owner with fewer than `per_owner` jobs dispatched and not ended, their
    // oldest waiting ones up to that many; everyone's first before anyone's second; at most `limit`.
    virtual std::vector<Job> dispatchable(uint64_t per_owner, size_t limit) = 0;
    // Claims the job if it is still waiting (one another replica is claiming is skipped), runs `publish`, then marks
    // it dispatched. False when it was not claimed; an exception from publish leaves it waiting.
    virtual bool dispatch(const std::string& id, const std::function<void()>& publish) = 0;
    // Jobs dispatched longer ago than `age` that no converter has started: back to waiting (their message was lost:
    // a purged queue, a broker that lost its volume). Returns how many.
    virtual uint64_t requeue_unstarted(std::chrono::seconds age) = 0;
    // The waiting room: how many jobs are recorded and not dispatched yet, and how long the oldest has waited.
    struct Waiting {
        uint64_t jobs = 0;
        double oldest_seconds = 0;
    };
    virtual Waiting waiting() = 0;

    // Quota by reservation: an upload reserves its bytes (`bytes` more under `reservation`) atomically with every other
    // upload of the owner. Returns what the owner's other jobs and uploads hold, or nullopt (nothing reserved) when
    // that, this reservation and `bytes` would pass `quota`. A reservation lapses 10 minutes after it last grew (its
    // gateway died mid-upload).
    virtual std::optional<uint64_t> reserve(const std::string& reservation, uint64_t owner_id, uint64_t bytes,
                                            uint64_t quota) = 0;
    virtual void release(const std::string& reservation) = 0;
    // Keeps a reservation from lapsing (an upload that is still arriving): another 10 minutes from now.
    virtual void renew(const std::string& reservation) = 0;
    // Bytes held by the owner's live reservations (uploads in progress).
    virtual uint64_t reserved_bytes(uint64_t owner_id) = 0;

    // Retention (sweeper.hpp). A done job expires RETENTION after its MP3 was made, a failed one SOURCE_RETENTION
    // after it failed (while its upload is kept for a retry); apply() sets expires_at.
    // Done and failed jobs whose expiry has passed, the earliest first, at most `limit`.
    virtual std::vector<Job> expired(size_t limit) = 0;
    // The job's files are deleted: expired, without video_fid and mp3_fid (the quota no longer counts them). False
    // when it no longer was due (a retry, an extension or a deletion in between).
    virtual bool mark_expired(const std::string& id) = 0;
    // Jobs kept before retention applied to them (RETENTION was 0, or a version without it) get their expiry now.
    virtual uint64_t adopt_retention() = 0;
    // Runs `f` holding the lock called `name`, one holder across every replica; false (f not run) when another
    // replica holds it.
    virtual bool exclusively(const std::string& name, const std::function<void()>& f) = 0;
    // Moves the job's expiry (done or failed jobs that still keep their files). False when it does not apply.
    virtual bool set_expiry(const std::string& id, int64_t expires_ms) = 0;

    // POST /jobs/{id}/retry: a failed job whose upload is kept goes back to waiting, with `options`. False when it
    // was not failed or its upload is gone (another request retried or the sweeper came first).
    virtual bool requeue_failed(const std::string& id, const nlohmann::json& options) = 0;
    // The owner's newest done job made from the same upload bytes (SHA-256) with the same options, whose MP3 is
    // still kept: its MP3 serves a new upload at once.
    virtual std::optional<Job> find_reusable(uint64_t owner_id, const std::string& source_sha256,
                                             const nlohmann::json& options) = 0;
};

// Hands waiting jobs to the converters (dispatcher.hpp): woken when a job was recorded, ended or cancelled.
class JobDispatch {
  public:
    virtual ~JobDispatch() = default;
    virtual void wake() = 0;
};

// Where jobs go to be converted, and where status changes are announced. Throws amqp::Error when a message was not
// confirmed.
class JobQueue {
  public:
    virtual ~JobQueue() = default;
    virtual void submit(const messages::VideoJob& job) = 0;
    virtual void announce(const messages::StatusEvent& event) = 0;
    // A job done without converting (reused from an earlier identical one): to `mp3`, for its mail and webhook.
    virtual void finished(const messages::Mp3Ready& ready) = 0;
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
