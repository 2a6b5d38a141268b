#include "handler_support.hpp"

#include <charconv>

#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::gateway {

using http::Request;
using http::Response;

Result<Caller, Response> Authenticator::authenticate(const Request& request) const {
    auto header = request.headers.get("Authorization");
    if (!header) {
        Response r = Response::error(401, "missing_credentials", "missing credentials");
        r.headers.set("WWW-Authenticate", "Bearer realm=\"mp3converter\"");
        return r;
    }
    auto value = trim(*header);
    if (value.size() < 8 || !iequals(value.substr(0, 7), "Bearer ")) {
        return Response::error(403, "not_authorized", "not authorized: expected a Bearer token");
    }
    auto refused = [](std::string_view reason) {
        return Response::json(403, {{"error", "not_authorized"}, {"message", "not authorized"}, {"reason", reason}});
    };
    auto claims = signer_.verify(trim(value.substr(7)));
    if (!claims.ok()) return refused(token::to_string(claims.error()));
    auto access = messages::AccessClaims::from_json(claims.value());
    if (!access) return refused("token lacks sub or username");
    if (revoked_ != nullptr && revoked_->revoked(access.value())) {
        Response r = Response::error(401, "token_revoked",
                                     "this session has ended (signed out, or the password "
                                     "changed): sign in again");
        r.headers.set("WWW-Authenticate", "Bearer realm=\"mp3converter\", error=\"invalid_token\"");
        return r;
    }
    return Caller{.user_id = access.value().user_id, .email = access.value().username, .admin = access.value().admin};
}

Response retry_later(int status, std::string_view code, std::string_view message, int seconds) {
    Response r = Response::error(status, code, message);
    r.headers.set("Retry-After", std::to_string(seconds));
    return r;
}

Response limit_reached(std::string_view code, std::string_view message, std::string_view setting, uint64_t value,
                       int64_t retry_after_seconds) {
    auto r = Response::json(429, {{"error", code},
                                  {"message", message},
                                  {"limit", {{"name", setting}, {"value", value}}},
                                  {"retry_after", retry_after_seconds}});
    r.headers.set("Retry-After", std::to_string(retry_after_seconds));
    return r;
}

Response database_unavailable() {
    return retry_later(503, "database_unavailable", "the job database is unavailable, try again shortly", 5);
}

Response mp3_not_ready(const Job& job) {
    return Response::json(409, {{"error", "not_ready"},
                                {"message", "the MP3 is not ready: the job is " + to_string(job.status)},
                                {"status", to_string(job.status)}});
}

Response mp3_expired(const Job& job) {
    std::string when = job.expires_ms ? " on " + iso8601(*job.expires_ms) : "";
    return Response::json(410, {{"error", "expired"},
                                {"message", "this job's files were deleted" + when + ", when its retention ended"},
                                {"status", to_string(job.status)}});
}

std::optional<uint64_t> parse_unsigned(std::string_view text) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return v;
}

void remove_blob(storage::BlobStore& store, const std::optional<std::string>& id) {
    if (!id || id->empty()) return;
    try {
        store.remove(*id);
    } catch (const std::exception& e) {
        log::warn("could not delete a stored file", {{"fid", *id}, {"store", store.describe()}, {"error", e.what()}});
    }
}

std::vector<std::string> mp3_store_ids(const Job& job) {
    std::vector<std::string> ids;
    if (job.mp3_fid) ids.push_back(*job.mp3_fid);
    for (const auto& part : job.parts) ids.push_back(part.fid);
    ids.push_back(messages::record_id(job.id));  // every converted job has one (a failed one may)
    return ids;
}

Result<Job, Response> visible_job(Jobs& jobs, const std::string& id, const Caller& caller) {
    if (!storage::is_valid_id(id)) return Response::error(400, "invalid_id", "a job id is 24 hexadecimal characters");
    if (!jobs.ready()) return database_unavailable();
    auto job = jobs.find(id);
    if (!job || (job->owner_id != caller.user_id && !caller.admin)) {
        return Response::error(404, "job_not_found", "no such job");
    }
    return std::move(*job);
}

Result<Job, Response> requested_job(const Backends& backends, const Request& request) {
    auto caller = backends.auth.authenticate(request);
    if (!caller) return caller.error();
    auto job = visible_job(backends.jobs, request.path_param("id"), caller.value());
    if (!job) return job;
    return with_latest_event(backends, std::move(job).value());
}

Job with_latest_event(const Backends& backends, Job job) {
    if (backends.events == nullptr) return job;
    if (auto latest = backends.events->latest(job.id); latest && advances(job, *latest)) apply_to(job, *latest);
    return job;
}

}  // namespace mp3c::gateway
