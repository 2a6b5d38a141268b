#pragma once

#include <chrono>
#include <memory>
#include <variant>

#include "handler_support.hpp"
#include "mp3c/metrics.hpp"
#include "rate_limits.hpp"

namespace mp3c::gateway {

struct UploadLimits {
    uint64_t max_upload_bytes = 2ull << 30;
    uint64_t max_queued_jobs = 1000;  // 0: no backpressure
    uint64_t user_quota_bytes = 0;    // 0: no quota
    uint64_t max_uploads_per_user = 2;
    uint64_t max_waiting_jobs_per_user = 50;
    // How often an upload still arriving renews its quota reservation (which lapses 10 minutes after it was touched).
    std::chrono::milliseconds reservation_renewal{60'000};
    std::string ticket_key;  // JOB_TICKET_SECRET: the ticket of a reused job's `mp3` message; empty: none
};

// An upload's share of its owner's quota (Jobs::reserve).
struct QuotaReservation {
    std::string id;
    uint64_t bytes = 0;   // reserved so far
    uint64_t others = 0;  // what the owner's other jobs and uploads held at the first reservation
    std::chrono::steady_clock::time_point renewed = std::chrono::steady_clock::now();
};

// POST /upload: a multipart body whose one file streams into the video store as it arrives; the job is recorded and
// queued once the whole request succeeded (nothing is kept otherwise).
class UploadHandler {
  public:
    UploadHandler(Backends backends, UploadLimits limits, metrics::Registry& registry);
    void add_routes(http::Router& router);

    // Everything that can be refused from the header is refused here, before a byte of the file is read; otherwise
    // the consumer that takes the body.
    std::variant<http::Response, std::unique_ptr<http::BodyConsumer>> begin(const http::Request& request);
    // The caller's usage against the upload limits, for GET /account: {"usage": {...}, "limits": {...}}.
    nlohmann::json usage(const Caller& caller);

  private:
    friend class UploadConsumer;
    static constexpr uint64_t kReservationStep = 8 << 20;
    http::Response quota_exceeded(const std::string& what) const;

    Backends b_;
    UploadLimits limits_;
    Slots in_progress_{limits_.max_uploads_per_user};  // per caller
    metrics::Family<metrics::Counter>& uploads_;       // by result
    metrics::Counter& upload_bytes_;
    metrics::Family<metrics::Counter>& reuses_;  // hit, miss
};

}  // namespace mp3c::gateway
