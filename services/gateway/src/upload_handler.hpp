#pragma once

#include <memory>
#include <variant>

#include "handler_support.hpp"
#include "mp3c/metrics.hpp"

namespace mp3c::gateway {

struct UploadLimits {
    uint64_t max_upload_bytes = 2ull << 30;
    uint64_t max_queued_jobs = 1000;  // 0: no backpressure
    uint64_t user_quota_bytes = 0;    // 0: no quota
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

  private:
    friend class UploadConsumer;
    Backends b_;
    UploadLimits limits_;
    metrics::Family<metrics::Counter>& uploads_;  // by result
    metrics::Counter& upload_bytes_;
};

}  // namespace mp3c::gateway
