#include "download_handlers.hpp"

#include "mp3c/crypto.hpp"
#include "mp3c/strings.hpp"
#include "request_parsing.hpp"

namespace mp3c::gateway {

using http::Request;
using http::Response;

namespace {

// Streams a blob (or a range of it) into a response.
class BlobSource : public http::BodySource {
  public:
    explicit BlobSource(std::unique_ptr<storage::BlobReader> reader) : reader_(std::move(reader)) {}
    size_t read(char* buffer, size_t size) override { return reader_->read(buffer, size); }

  private:
    std::unique_ptr<storage::BlobReader> reader_;
};

}  // namespace

DownloadHandlers::DownloadHandlers(Backends backends, std::string link_secret, std::chrono::seconds link_ttl)
    : b_(backends), link_key_(crypto::hmac_sha256(link_secret, "mp3converter download links")), link_ttl_(link_ttl) {}

void DownloadHandlers::add_routes(http::Router& r) {
    r.add("GET", "/jobs/{id}/mp3", [this](Request& q) { return job_mp3(q); });
    r.add("POST", "/jobs/{id}/link", [this](Request& q) { return create_link(q); });
    r.add("GET", "/download", [this](Request& q) { return download(q); });
}

Response DownloadHandlers::job_mp3(const Request& request) {
    if (!request.headers.get("Authorization")) {
        if (auto signature = request.query_param("signature")) return signed_mp3(request, *signature);
    }
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    return send_mp3(request, found.value());
}

std::string DownloadHandlers::link_signature(const std::string& job_id, uint64_t expires) const {
    return crypto::to_hex(crypto::hmac_sha256(link_key_, "mp3\n" + job_id + "\n" + std::to_string(expires)));
}

Response DownloadHandlers::create_link(const Request& request) {
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    const Job& job = found.value();
    if (job.status != JobStatus::done) return mp3_not_ready(job);
    auto expires = static_cast<uint64_t>(b_.clock.now_ms() / 1000 + link_ttl_.count());
    std::string url =
        "/jobs/" + job.id + "/mp3?expires=" + std::to_string(expires) + "&signature=" + link_signature(job.id, expires);
    return Response::json(200, {{"url", url}, {"expires_at", iso8601(static_cast<int64_t>(expires) * 1000)}});
}

Response DownloadHandlers::signed_mp3(const Request& request, const std::string& signature) {
    const std::string& id = request.path_param("id");
    std::optional<uint64_t> expires;
    if (auto text = request.query_param("expires")) expires = parse_unsigned(*text);
    if (!expires || !storage::is_valid_id(id) ||
        !crypto::constant_time_equal(signature, link_signature(id, *expires))) {
        return Response::error(403, "invalid_link", "this download link is not valid");
    }
    if (*expires < static_cast<uint64_t>(b_.clock.now_ms() / 1000)) {
        return Response::error(403, "link_expired", "this download link has expired: ask for a new one");
    }
    if (!b_.jobs.ready()) return database_unavailable();
    auto job = b_.jobs.find(id);
    if (!job) return Response::error(404, "job_not_found", "no such job");
    return send_mp3(request, *job);
}

Response DownloadHandlers::download(const Request& request) {
    auto caller = b_.auth.authenticate(request);
    if (!caller) return caller.error();
    auto fid = request.query_param("fid");
    if (!fid || fid->empty()) return Response::error(400, "fid_required", "fid is required");
    if (!storage::is_valid_id(*fid)) return Response::error(400, "invalid_id", "a fid is 24 hexadecimal characters");
    if (!b_.jobs.ready()) return database_unavailable();
    auto job = b_.jobs.find_by_mp3(*fid);
    if (!job || (job->owner_id != caller.value().user_id && !caller.value().admin)) {
        return Response::error(404, "file_not_found", "no such file");
    }
    return send_mp3(request, *job);
}

Response DownloadHandlers::send_mp3(const Request& request, const Job& job) {
    if (job.status != JobStatus::done || !job.mp3_fid) return mp3_not_ready(job);
    auto info = b_.mp3s.stat(*job.mp3_fid);
    if (!info) return Response::error(404, "file_not_found", "the MP3 is gone");
    std::string etag = "\"" + info->sha256 + "\"";
    Response r;
    r.headers.set("Content-Type", "audio/mpeg");
    r.headers.set("Accept-Ranges", "bytes");
    r.headers.set("ETag", etag);
    r.headers.set("Cache-Control", "private, max-age=0, must-revalidate");
    r.headers.set("Content-Disposition", mp3_content_disposition(job.filename));
    if (auto match = request.headers.get("If-None-Match"); match && (trim(*match) == etag || trim(*match) == "*")) {
        r.status = 304;
        return r;
    }
    auto range_header = request.headers.get("Range");
    if (auto if_range = request.headers.get("If-Range"); if_range && trim(*if_range) != etag) range_header.reset();
    auto range = parse_range(range_header, info->size);
    if (range.unsatisfiable) {
        Response refused = Response::error(416, "range_not_satisfiable", "the requested range is outside the file");
        refused.headers.set("Content-Range", "bytes */" + std::to_string(info->size));
        return refused;
    }
    uint64_t offset = range.range ? range.range->offset : 0;
    uint64_t length = range.range ? range.range->length : info->size;
    auto reader = b_.mp3s.open(*job.mp3_fid, offset, length);
    if (!reader) return Response::error(404, "file_not_found", "the MP3 is gone");
    if (range.range) {
        r.status = 206;
        r.headers.set("Content-Range", "bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) +
                                           "/" + std::to_string(info->size));
    }
    r.source = std::make_shared<BlobSource>(std::move(reader));
    r.source_length = length;
    return r;
}

}  // namespace mp3c::gateway
