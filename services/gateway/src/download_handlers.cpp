#include "download_handlers.hpp"

#include "mp3c/crypto.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/strings.hpp"
#include "request_parsing.hpp"
#include "zip_stream.hpp"

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

// A ZIP that holds its caller's slot until the response is over.
class SlottedSource : public http::BodySource {
  public:
    SlottedSource(std::shared_ptr<http::BodySource> source, std::unique_ptr<Slots::Slot> slot)
        : source_(std::move(source)), slot_(std::move(slot)) {}
    size_t read(char* buffer, size_t size) override { return source_->read(buffer, size); }

  private:
    std::shared_ptr<http::BodySource> source_;
    std::unique_ptr<Slots::Slot> slot_;
};

}  // namespace

DownloadHandlers::DownloadHandlers(Backends backends, DownloadOptions options)
    : b_(backends),
      link_key_(crypto::hmac_sha256(options.link_secret, "mp3converter download links")),
      options_(std::move(options)) {}

void DownloadHandlers::add_routes(http::Router& r) {
    r.add("GET", "/jobs/{id}/mp3", [this](Request& q) { return job_mp3(q); });
    r.add("GET", "/jobs/{id}/parts/{n}", [this](Request& q) { return job_part(q); });
    r.add("POST", "/jobs/{id}/link", [this](Request& q) { return create_link(q); });
    r.add("GET", "/download", [this](Request& q) { return download(q); });
    r.add("GET", "/jobs.zip", [this](Request& q) { return zip(q); });
}

Response DownloadHandlers::job_mp3(const Request& request) {
    if (!request.headers.get("Authorization")) {
        if (auto signature = request.query_param("signature")) return signed_mp3(request, *signature);
    }
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    return send_mp3(request, found.value());
}

Response DownloadHandlers::job_part(const Request& request) {
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    const Job& job = found.value();
    if (job.status == JobStatus::expired) return mp3_expired(job);
    if (job.status != JobStatus::done || !job.mp3_fid) return mp3_not_ready(job);
    auto index = parse_unsigned(request.path_param("n"));
    const messages::Part* part = index && *index <= 1000 ? job.part(static_cast<int>(*index)) : nullptr;
    if (part == nullptr) {
        return Response::json(
            404, {{"error", "part_not_found"},
                  {"message", job.parts.empty() ? "this job was not split into parts"
                                                : "this job has parts 1 to " + std::to_string(job.parts.size())},
                  {"parts", job.parts.size()}});
    }
    return send_file(request, part->fid, mp3_content_disposition(job.part_filename(*part)));
}

std::string DownloadHandlers::link_signature(const std::string& job_id, uint64_t expires) const {
    return crypto::to_hex(crypto::hmac_sha256(link_key_, "mp3\n" + job_id + "\n" + std::to_string(expires)));
}

Response DownloadHandlers::create_link(const Request& request) {
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    const Job& job = found.value();
    if (job.status != JobStatus::done) return mp3_not_ready(job);
    auto expires = static_cast<uint64_t>(b_.clock.now_ms() / 1000 + options_.link_ttl.count());
    std::string url =
        "/jobs/" + job.id + "/mp3?expires=" + std::to_string(expires) + "&signature=" + link_signature(job.id, expires);
    return Response::json(200, {{"url", url}, {"expires_at", iso8601(static_cast<int64_t>(expires) * 1000)}});
}

Response DownloadHandlers::signed_mp3(const Request& request, const std::string& signature) {
    const std::string& id = request.path_param("id");
    auto expires_text = request.query_param("expires");
    if (!expires_text) return mail_link_mp3(request, signature);
    std::optional<uint64_t> expires = parse_unsigned(*expires_text);
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
    return send_mp3(request, with_latest_event(b_, std::move(*job)));
}

Response DownloadHandlers::mail_link_mp3(const Request& request, const std::string& signature) {
    const std::string& id = request.path_param("id");
    if (options_.mail_link_secret.empty() || !storage::is_valid_id(id) ||
        !crypto::constant_time_equal(signature, messages::mail_link_signature(options_.mail_link_secret, id))) {
        return Response::error(403, "invalid_link", "this download link is not valid");
    }
    // No date of its own: the link works while the job keeps its MP3 (until it expires or is deleted).
    if (!b_.jobs.ready()) return database_unavailable();
    auto job = b_.jobs.find(id);
    if (!job) return Response::error(404, "job_not_found", "this MP3 was deleted by its owner");
    return send_mp3(request, with_latest_event(b_, std::move(*job)));
}

Response DownloadHandlers::download(const Request& request) {
    auto caller = b_.auth.authenticate(request);
    if (!caller) return caller.error();
    auto fid = request.query_param("fid");
    if (!fid || fid->empty()) return Response::error(400, "fid_required", "fid is required");
    if (!storage::is_valid_id(*fid)) return Response::error(400, "invalid_id", "a fid is 24 hexadecimal characters");
    if (!b_.jobs.ready()) return database_unavailable();
    auto job = b_.jobs.find_by_mp3(*fid);
    // The mp3_fid an upload announced is its job's id: until the MP3 exists, that job says why there is none yet.
    if (!job) job = b_.jobs.find(*fid);
    if (!job || (job->owner_id != caller.value().user_id && !caller.value().admin)) {
        return Response::error(404, "file_not_found", "no such file");
    }
    return send_mp3(request, with_latest_event(b_, std::move(*job)));
}

Response DownloadHandlers::send_mp3(const Request& request, const Job& job) {
    if (job.status == JobStatus::expired) return mp3_expired(job);
    if (job.status != JobStatus::done || !job.mp3_fid) return mp3_not_ready(job);
    return send_file(request, *job.mp3_fid, mp3_content_disposition(job.filename));
}

Response DownloadHandlers::send_file(const Request& request, const std::string& fid, const std::string& disposition) {
    auto info = b_.mp3s.stat(fid);
    if (!info) return Response::error(404, "file_not_found", "the MP3 is gone");
    std::string etag = "\"" + info->sha256 + "\"";
    Response r;
    r.headers.set("Content-Type", "audio/mpeg");
    r.headers.set("Accept-Ranges", "bytes");
    r.headers.set("ETag", etag);
    r.headers.set("Cache-Control", "private, max-age=0, must-revalidate");
    r.headers.set("Content-Disposition", disposition);
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
    auto reader = b_.mp3s.open(fid, offset, length);
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

namespace {

// The ids of ?ids=a,b,c: each 24 hex digits, at most `limit`, repeats dropped; or the 400.
Result<std::vector<std::string>, Response> zip_ids(const std::string& text, size_t limit) {
    std::vector<std::string> ids;
    for (auto part : split(text, ',')) {
        std::string id(trim(part));
        if (!storage::is_valid_id(id)) {
            return Response::error(400, "invalid_ids",
                                   "ids must be job ids (24 hexadecimal characters) separated by commas");
        }
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(std::move(id));
    }
    if (ids.empty()) return Response::error(400, "ids_required", "give ids=ID,ID,... or status=done");
    if (ids.size() > limit) {
        return Response::error(400, "invalid_ids", "at most " + std::to_string(limit) + " ids at once");
    }
    return ids;
}

std::string zip_filename(int64_t now_ms) {
    std::string stamp = iso8601(now_ms);  // 2026-12-06T22:47:14.000Z
    std::string compact;
    for (char c : stamp.substr(0, 19)) {
        if (c == 'T') {
            compact += '-';
        } else if (c != '-' && c != ':') {
            compact += c;
        }
    }
    return "mp3converter-" + compact + ".zip";
}

}  // namespace

Response DownloadHandlers::zip(const Request& request) {
    auto caller = b_.auth.authenticate(request);
    if (!caller) return caller.error();
    std::vector<Job> jobs;
    auto ids_text = request.query_param("ids");
    const bool ids_asked = ids_text.has_value();
    if (ids_text) {
        auto ids = zip_ids(*ids_text, std::min<uint64_t>(100, options_.zip_max_entries));
        if (!ids) return ids.error();
        if (!b_.jobs.ready()) return database_unavailable();
        for (const auto& id : ids.value()) {
            auto job = visible_job(b_.jobs, id, caller.value());
            if (!job) return job.error();
            if (job.value().status == JobStatus::expired) return mp3_expired(job.value());
            if (job.value().status != JobStatus::done || !job.value().mp3_fid) {
                return Response::json(409,
                                      {{"error", "not_ready"},
                                       {"message", "job " + id + " has no MP3: it is " + to_string(job.value().status)},
                                       {"job_id", id},
                                       {"status", to_string(job.value().status)}});
            }
            jobs.push_back(std::move(job).value());
        }
    } else if (auto status = request.query_param("status"); status && *status == "done") {
        if (!b_.jobs.ready()) return database_unavailable();
        jobs = b_.jobs.list({.owner_id = caller.value().user_id,
                             .status = JobStatus::done,
                             .limit = static_cast<size_t>(options_.zip_max_entries),
                             .offset = 0});
        if (jobs.empty()) return Response::error(404, "nothing_to_zip", "you have no MP3s to download");
    } else {
        return Response::error(400, "ids_required", "give ids=ID,ID,... or status=done");
    }
    // The sizes first: the archive's exact length is sent before its first byte.
    // A split job gives its parts ("talk - 01 - Intro.mp3", ...), any other its MP3.
    std::vector<std::string> names;
    std::vector<storage::BlobInfo> files;
    std::vector<int64_t> modified;
    uint64_t total = 0;
    for (const Job& job : jobs) {
        std::vector<std::pair<std::string, std::string>> wanted;  // fid, name
        if (job.parts.empty()) wanted.emplace_back(*job.mp3_fid, mp3_filename(job.filename));
        for (const auto& part : job.parts) wanted.emplace_back(part.fid, job.part_filename(part));
        if (files.size() + wanted.size() > options_.zip_max_entries) {
            if (!ids_asked && !files.empty()) break;  // status=done: the newest that fit
            return Response::json(413,
                                  {{"error", "zip_too_many_files"},
                                   {"message", "these jobs hold more than " + std::to_string(options_.zip_max_entries) +
                                                   " files (split jobs count each part): download fewer at once"},
                                   {"limit", {{"name", "ZIP_MAX_ENTRIES"}, {"value", options_.zip_max_entries}}}});
        }
        for (auto& [fid, name] : wanted) {
            auto info = b_.mp3s.stat(fid);
            if (!info) {
                return Response::json(404, {{"error", "file_not_found"},
                                            {"message", "the MP3 of job " + job.id + " is gone"},
                                            {"job_id", job.id}});
            }
            total += info->size;
            names.push_back(std::move(name));
            modified.push_back(job.finished_ms.value_or(info->created_ms));
            files.push_back(std::move(*info));
        }
    }
    if (total > options_.zip_max_bytes) {
        return Response::json(
            413, {{"error", "zip_too_large"},
                  {"message", "these MP3s hold " + std::to_string(total) + " bytes, more than one ZIP may (" +
                                  std::to_string(options_.zip_max_bytes) + "): download fewer at once"},
                  {"limit", {{"name", "ZIP_MAX_BYTES"}, {"value", options_.zip_max_bytes}}}});
    }
    names = unique_entry_names(names);
    std::vector<ZipEntry> entries;
    for (size_t i = 0; i < files.size(); ++i) {
        entries.push_back(
            {.name = names[i],
             .size = files[i].size,
             .modified_ms = modified[i],
             .open = [store = &b_.mp3s, id = files[i].id, size = files[i].size]() -> std::unique_ptr<http::BodySource> {
                 auto reader = store->open(id, 0, size);
                 if (!reader) return nullptr;
                 return std::make_unique<BlobSource>(std::move(reader));
             }});
    }
    auto slot = zips_.acquire(std::to_string(caller.value().user_id));
    if (!slot) {
        return limit_reached("too_many_zips",
                             "you have " + std::to_string(options_.max_zips_per_user) +
                                 " ZIP downloads running already; wait for one to finish",
                             "MAX_ZIPS_PER_USER", options_.max_zips_per_user, 10);
    }
    auto stream = std::make_shared<ZipStream>(std::move(entries));
    Response r;
    r.headers.set("Content-Type", "application/zip");
    r.headers.set("Content-Disposition", "attachment; filename=\"" + zip_filename(b_.clock.now_ms()) + "\"");
    r.headers.set("Cache-Control", "private, no-store");
    r.source_length = stream->length();
    r.source = std::make_shared<SlottedSource>(std::move(stream), std::move(slot));
    return r;
}

}  // namespace mp3c::gateway
