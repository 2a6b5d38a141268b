#pragma once

#include "handler_support.hpp"
#include "job_events.hpp"

namespace mp3c::gateway {

// The jobs resource: GET /jobs (a page of the caller's jobs, or everyone's for admins), GET and DELETE /jobs/{id},
// and GET /jobs/{id}/events (Server-Sent Events).
class JobHandlers {
  public:
    JobHandlers(Backends backends, const JobEventHub& hub) : b_(backends), hub_(hub) {}
    void add_routes(http::Router& router);

    http::Response list(const http::Request& request);
    http::Response get(const http::Request& request);
    // A queued job is cancelled (its row stays, to show what happened); a finished one is deleted with its files.
    http::Response remove(const http::Request& request);
    http::Response events(const http::Request& request);

  private:
    Backends b_;
    const JobEventHub& hub_;
};

}  // namespace mp3c::gateway
