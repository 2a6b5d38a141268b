#pragma once

#include <chrono>

#include "handler_support.hpp"

namespace mp3c::gateway {

// The MP3s: GET /jobs/{id}/mp3 (with a token, or a signed link instead), POST /jobs/{id}/link (a short-lived signed
// URL for one MP3: an <audio> element cannot send an Authorization header, and the token never goes into a URL),
// and the original's GET /download?fid=. Ranges, ETag and If-None-Match, streamed from the blob store.
class DownloadHandlers {
  public:
    // link_secret: signs the links (GatewayApp derives it from JWT_SECRET, so that nothing else needs configuring).
    DownloadHandlers(Backends backends, std::string link_secret, std::chrono::seconds link_ttl);
    void add_routes(http::Router& router);

    http::Response job_mp3(const http::Request& request);
    http::Response create_link(const http::Request& request);
    http::Response download(const http::Request& request);

  private:
    http::Response signed_mp3(const http::Request& request, const std::string& signature);
    http::Response send_mp3(const http::Request& request, const Job& job);
    std::string link_signature(const std::string& job_id, uint64_t expires) const;

    Backends b_;
    std::string link_key_;
    std::chrono::seconds link_ttl_;
};

}  // namespace mp3c::gateway
