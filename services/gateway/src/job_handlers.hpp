#pragma once

#include <chrono>

#include "handler_support.hpp"
#include "job_events.hpp"

namespace mp3c::gateway {

// The jobs resource: GET /jobs (a page of the caller's jobs, or everyone's for admins), GET and DELETE /jobs/{id},
// and GET /jobs/{id}/events (Server-Sent Events).
struct StreamLimits {
    uint64_t max_per_user = 8;  // open at once, per caller
    std::chrono::milliseconds lifetime{600'000};
};

// What retries and kept-longer jobs may do.
struct JobRules {
    uint64_t max_waiting_jobs_per_user = 50;         // a retry counts like an upload
    std::chrono::seconds max_retention{90 * 86400};  // PATCH may move an expiry this far from now; 0: not at all
};

class JobHandlers {
  public:
    JobHandlers(Backends backends, JobEventHub& hub, StreamLimits limits = {}, JobRules rules = {})
        : b_(backends), hub_(hub), limits_(limits), rules_(rules), streams_(limits.max_per_user) {}
    void add_routes(http::Router& router);

    http::Response list(const http::Request& request);
    http::Response get(const http::Request& request);
    // GET /jobs/{id}/waveform: a done job's peaks for drawing (messages::Waveform), with its length.
    http::Response waveform(const http::Request& request);
    // A queued or converting job is cancelled (its row stays, to show what happened); an ended one is deleted with its
    // files.
    http::Response remove(const http::Request& request);
    // POST /jobs/{id}/retry: a failed job whose upload is kept goes back to the queue, with the same or new options.
    http::Response retry(const http::Request& request);
    // PATCH /jobs/{id} {"expires_at"}: keeps a job's files longer (up to MAX_RETENTION from now), or less long.
    http::Response update(const http::Request& request);
    http::Response events(const http::Request& request);
    // GET /account: who the caller is, what they use and what they may (with the upload handler's part).
    http::Response account(const http::Request& request, const std::function<nlohmann::json(const Caller&)>& uploads);

  private:
    Backends b_;
    JobEventHub& hub_;
    StreamLimits limits_;
    JobRules rules_;
    Slots streams_;  // open event streams per caller
};

}  // namespace mp3c::gateway
