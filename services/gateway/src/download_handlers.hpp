#pragma once

#include <chrono>

#include "handler_support.hpp"
#include "rate_limits.hpp"

namespace mp3c::gateway {

// The MP3s: GET /jobs/{id}/mp3 (with a token, or a signed link instead), POST /jobs/{id}/link (a short-lived signed
// URL for one MP3: an <audio> element cannot send an Authorization header, and the token never goes into a URL),
// the links of the "your MP3 is ready" mails (messages::mail_link_path), GET /jobs.zip (many MP3s as one ZIP, streamed)
// and the original's GET /download?fid=. Ranges, ETag and If-None-Match, streamed from the blob store.
struct DownloadOptions {
    std::string link_secret;  // signs the links (GatewayApp derives it from JWT_SECRET: nothing else to configure)
    std::chrono::seconds link_ttl{600};
    std::string mail_link_secret;  // JOB_TICKET_SECRET: checks the mails' links; empty: they are refused
    uint64_t zip_max_bytes = 4ull << 30;
    uint64_t zip_max_entries = 1000;
    uint64_t max_zips_per_user = 2;  // streaming at once: each holds a worker thread
};

class DownloadHandlers {
  public:
    DownloadHandlers(Backends backends, DownloadOptions options);
    void add_routes(http::Router& router);

    http::Response job_mp3(const http::Request& request);
    // GET /jobs/{id}/parts/{n}: part n of a job split by its chapters (chapters=split), like its MP3.
    http::Response job_part(const http::Request& request);
    http::Response create_link(const http::Request& request);
    http::Response download(const http::Request& request);
    // GET /jobs.zip?ids=ID,ID,... or ?status=done: the MP3s as one ZIP (stored, ZIP64 when needed), streamed.
    http::Response zip(const http::Request& request);

  private:
    http::Response signed_mp3(const http::Request& request, const std::string& signature);
    http::Response mail_link_mp3(const http::Request& request, const std::string& signature);
    http::Response send_mp3(const http::Request& request, const Job& job);
    // A stored MP3 (the whole or a part) with ranges and validators, as `disposition` names it.
    http::Response send_file(const http::Request& request, const std::string& fid, const std::string& disposition);
    std::string link_signature(const std::string& job_id, uint64_t expires) const;

    Backends b_;
    std::string link_key_;
    DownloadOptions options_;
    Slots zips_{options_.max_zips_per_user};  // per caller
};

}  // namespace mp3c::gateway
