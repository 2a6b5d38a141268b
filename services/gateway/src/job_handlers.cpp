#include "job_handlers.hpp"

#include <cmath>
#include <cstdio>

#include "mp3c/log.hpp"
#include "mp3c/output_options.hpp"
#include "mp3c/strings.hpp"
#include "request_parsing.hpp"

namespace mp3c::gateway {

using http::Request;
using http::Response;
using namespace std::chrono_literals;

void JobHandlers::add_routes(http::Router& r) {
    r.add("GET", "/jobs", [this](Request& q) { return list(q); });
    r.add("GET", "/jobs/{id}", [this](Request& q) { return get(q); });
    r.add("DELETE", "/jobs/{id}", [this](Request& q) { return remove(q); });
    r.add("PATCH", "/jobs/{id}", [this](Request& q) { return update(q); }, {.max_body_bytes = 4096});
    r.add("POST", "/jobs/{id}/retry", [this](Request& q) { return retry(q); }, {.max_body_bytes = 4096});
    r.add("GET", "/jobs/{id}/events", [this](Request& q) { return events(q); });
    r.add("GET", "/jobs/{id}/waveform", [this](Request& q) { return waveform(q); });
}

namespace {

// The page asked for by ?status=&limit=&offset=&all=, or the 400/403 to answer.
Result<JobQuery, Response> job_query(const Request& request, const Caller& caller) {
    JobQuery query;
    query.owner_id = caller.user_id;
    if (auto all = request.query_param("all"); all && (*all == "true" || *all == "1")) {
        if (!caller.admin) return Response::error(403, "admin_only", "only admins may list every user's jobs");
        query.owner_id.reset();
    }
    if (auto status = request.query_param("status")) {
        query.status = parse_status(*status);
        if (!query.status) {
            return Response::error(400, "invalid_status",
                                   "status must be one of queued, processing, done, failed, cancelled, expired");
        }
    }
    if (auto limit = request.query_param("limit")) {
        auto n = parse_unsigned(*limit);
        if (!n || *n < 1 || *n > 100) return Response::error(400, "invalid_limit", "limit must be from 1 to 100");
        query.limit = *n;
    }
    if (auto offset = request.query_param("offset")) {
        auto n = parse_unsigned(*offset);
        if (!n || *n > 1'000'000) return Response::error(400, "invalid_offset", "offset must be a whole number");
        query.offset = *n;
    }
    return query;
}

}  // namespace

Response JobHandlers::list(const Request& request) {
    auto caller = b_.auth.authenticate(request);
    if (!caller) return caller.error();
    auto query = job_query(request, caller.value());
    if (!query) return query.error();
    if (!b_.jobs.ready()) return database_unavailable();
    // One more than asked tells whether another page exists.
    JobQuery probe = query.value();
    probe.limit = query.value().limit + 1;
    auto jobs = b_.jobs.list(probe);
    const size_t limit = query.value().limit, offset = query.value().offset;
    bool more = jobs.size() > limit;
    if (more) jobs.pop_back();
    nlohmann::json list = nlohmann::json::array();
    for (const auto& job : jobs) list.push_back(job.to_json());
    return Response::json(200, {{"jobs", list},
                                {"limit", limit},
                                {"offset", offset},
                                {"next_offset", more ? nlohmann::json(offset + limit) : nullptr}});
}

Response JobHandlers::get(const Request& request) {
    auto job = requested_job(b_, request);
    if (!job) return job.error();
    return Response::json(200, job.value().to_json());
}

Response JobHandlers::waveform(const Request& request) {
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    const Job& job = found.value();
    if (job.status == JobStatus::expired) return mp3_expired(job);
    if (job.status != JobStatus::done) return mp3_not_ready(job);
    std::optional<messages::Waveform> waveform;
    if (auto text = b_.jobs.waveform(job.id)) {
        waveform = messages::Waveform::from_json(nlohmann::json::parse(*text, nullptr, false));
    }
    if (!waveform) {
        return Response::error(404, "no_waveform",
                               "this job has no waveform: its MP3 was made before waveforms were, or announced again "
                               "after a converter restarted");
    }
    nlohmann::json body = waveform->to_json();
    body["job_id"] = job.id;
    body["points"] = waveform->peaks.size();
    body["duration_seconds"] = static_cast<double>(job.duration_ms.value_or(0)) / 1000.0;
    Response r = Response::json(200, body);
    r.headers.set("Cache-Control", "private, max-age=3600");  // it never changes while the MP3 is there
    return r;
}

Response JobHandlers::remove(const Request& request) {
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    const Job& job = found.value();
    if ((job.status == JobStatus::queued || job.status == JobStatus::processing) && b_.jobs.cancel_unfinished(job.id)) {
        // The converter finds the upload gone: before it starts, it skips the job; while converting, it stops within
        // seconds (it looks for the upload as it goes), and an MP3 that still comes is deleted as nobody's.
        remove_blob(b_.videos, job.video_fid);
        b_.jobs.forget_video(job.id);
        // Announced like any status change: event streams end, and every replica hears it.
        messages::StatusEvent event;
        event.job_id = job.id;
        event.status = messages::JobState::cancelled;
        event.error = "cancelled by the user";
        event.at = b_.clock.now_ms();
        event.trace_id = job.trace_id;
        event.username = job.owner_email;
        event.filename = job.filename;
        try {
            b_.queue.announce(event);
        } catch (const std::exception& e) {
            log::warn("could not announce a cancellation", {{"job_id", job.id}, {"error", e.what()}});
        }
        auto cancelled = b_.jobs.find(job.id);
        b_.dispatch.wake();
        log::info("job cancelled", {{"request_id", request.request_id}, {"job_id", job.id}});
        return Response::json(200, cancelled ? cancelled->to_json() : job.to_json());
    }
    auto current = b_.jobs.find(job.id);
    if (current && !is_terminal(current->status)) {
        return Response::error(409, "job_running", "the job changed state meanwhile: try again");
    }
    if (current) {
        remove_blob(b_.videos, current->video_fid);
        for (const auto& id : mp3_store_ids(*current)) remove_blob(b_.mp3s, id);
        b_.jobs.remove(job.id);
    }
    log::info("job deleted", {{"request_id", request.request_id}, {"job_id", job.id}});
    Response r;
    r.status = 204;
    return r;
}

Response JobHandlers::account(const Request& request, const std::function<nlohmann::json(const Caller&)>& uploads) {
    auto caller = b_.auth.authenticate(request);
    if (!caller) return caller.error();
    if (!b_.jobs.ready()) return database_unavailable();
    nlohmann::json body = uploads(caller.value());
    body["email"] = caller.value().email;
    body["usage"]["event_streams"] = streams_.held(std::to_string(caller.value().user_id));
    body["limits"]["max_event_streams"] = limits_.max_per_user;
    body["limits"]["event_stream_lifetime_seconds"] =
        std::chrono::duration_cast<std::chrono::seconds>(limits_.lifetime).count();
    auto r = Response::json(200, body);
    r.headers.set("Cache-Control", "no-store");
    return r;
}

Response JobHandlers::events(const Request& request) {
    auto caller = b_.auth.authenticate(request);
    if (!caller) return caller.error();
    auto found = visible_job(b_.jobs, request.path_param("id"), caller.value());
    if (!found) return found.error();
    auto slot = streams_.acquire(std::to_string(caller.value().user_id));
    if (!slot) {
        return limit_reached("too_many_event_streams",
                             "you have " + std::to_string(limits_.max_per_user) +
                                 " event streams open already; close one (or wait for a job to end)",
                             "MAX_EVENT_STREAMS_PER_USER", limits_.max_per_user, 5);
    }
    Response r;
    r.headers.set("Content-Type", "text/event-stream; charset=utf-8");
    r.headers.set("Cache-Control", "no-cache");
    r.headers.set("X-Accel-Buffering", "no");  // nginx ingress: pass events through at once
    std::string last_event_id(request.headers.get("Last-Event-ID").value_or("").substr(0, 64));
    r.events = std::make_shared<JobEventStream>(hub_, found.value(), std::move(slot), limits_.lifetime,
                                                std::move(last_event_id));
    // Pushed by the hub; the interval only paces the keep-alive comments and the end of the lifetime.
    r.poll_interval = std::min<std::chrono::milliseconds>(limits_.lifetime, 15s);
    return r;
}

namespace {

// A JSON body that must be an object (an empty body is an empty object), or the 400.
Result<nlohmann::json, Response> json_object_body(const Request& request) {
    if (trim(request.body).empty()) return nlohmann::json::object();
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        return Response::error(400, "invalid_json", "the body must be a JSON object");
    }
    return body;
}

// A number option of the retry's JSON as the form field it stands for: a number printed with `format` (the form's
// parser then checks its range), or text as it is; false for anything else.
bool number_or_text(const nlohmann::json& v, const char* format, std::string& field) {
    if (v.is_number() && std::isfinite(v.get<double>()) && std::abs(v.get<double>()) < 1e9) {
        char text[64];
        std::snprintf(text, sizeof text, format, v.get<double>());
        field = text;
        return true;
    }
    if (!v.is_string()) return false;
    field = v.get<std::string>();
    return true;
}

// The options of a retry's body, as an upload's form fields (numbers may be JSON numbers). Three groups, each kept
// from the job unless the body gives one of it: the audio options (bitrate, quality, channels, sample_rate: any given
// replace all four), the trim (start, end: either given replaces both), chapters, cover, the loudness (loudness,
// true_peak: either given replaces both; loudness "off" ends it), and the tags (title, artist, album, year, track,
// genre: any given replace all six).
Result<nlohmann::json, Response> retry_options(const nlohmann::json& body, const nlohmann::json& current) {
    std::map<std::string, std::string> fields;
    bool audio = false, trim = false, chapters = false, cover = false, loudness = false, tags = false;
    for (const char* name : {"bitrate", "quality", "channels", "sample_rate"}) {
        if (!body.contains(name) || body[name].is_null()) continue;
        const auto& v = body[name];
        if (v.is_number_integer()) {
            fields[name] = std::to_string(v.get<int64_t>());
        } else if (v.is_string()) {
            fields[name] = v.get<std::string>();
        } else {
            return Response::error(400, "invalid_option", std::string(name) + " must be a whole number");
        }
        audio = true;
    }
    for (const char* name : {"start", "end"}) {
        if (!body.contains(name) || body[name].is_null()) continue;
        if (!number_or_text(body[name], "%.3f", fields[name])) {
            return Response::error(400, "invalid_option", std::string(name) + " must be seconds or [hh:]mm:ss[.fff]");
        }
        trim = true;
    }
    for (auto [name, given] : {std::pair{"chapters", &chapters}, std::pair{"cover", &cover}}) {
        if (!body.contains(name) || body[name].is_null()) continue;
        if (!body[name].is_string()) return Response::error(400, "invalid_option", std::string(name) + " must be text");
        fields[name] = body[name].get<std::string>();
        *given = true;
    }
    for (const char* name : {"loudness", "true_peak"}) {
        if (!body.contains(name) || body[name].is_null()) continue;
        if (!number_or_text(body[name], "%.1f", fields[name])) {
            return Response::error(400, "invalid_option", std::string(name) + " must be a number");
        }
        loudness = true;
    }
    for (const char* name : {"title", "artist", "album", "year", "track", "genre"}) {
        if (!body.contains(name) || body[name].is_null()) continue;
        if (!body[name].is_string()) return Response::error(400, "invalid_option", std::string(name) + " must be text");
        fields[name] = body[name].get<std::string>();
        tags = true;
    }
    if (!audio && !trim && !chapters && !cover && !loudness && !tags) return current;
    auto given = parse_output_options(fields);
    if (!given) return Response::error(400, "invalid_option", given.error());
    OutputOptions result = OutputOptions::from_json(current).value_or(OutputOptions{});
    if (audio) {
        result.bitrate_kbps = given.value().bitrate_kbps;
        result.vbr_quality = given.value().vbr_quality;
        result.channels = given.value().channels;
        result.sample_rate = given.value().sample_rate;
    }
    if (trim) {
        result.start_ms = given.value().start_ms;
        result.end_ms = given.value().end_ms;
    }
    if (chapters) result.chapters = given.value().chapters;
    if (cover) result.cover = given.value().cover;
    if (loudness) {
        result.loudness_lufs = given.value().loudness_lufs;
        result.true_peak_dbtp = given.value().true_peak_dbtp;
    }
    if (tags) result.tags = given.value().tags;
    if (auto checked = check_output_options(result); !checked) {
        return Response::error(400, "invalid_option", checked.error());
    }
    return result.to_json();
}

}  // namespace

Response JobHandlers::retry(const Request& request) {
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    const Job& job = found.value();
    auto refuse_not_failed = [&](const Job& j) {
        if (j.status == JobStatus::expired && j.error) {
            return Response::error(410, "source_gone",
                                   "the upload of this failed job is no longer kept: upload it again");
        }
        return Response::json(409, {{"error", "not_failed"},
                                    {"message", "only a failed job can be retried: this one is " + to_string(j.status)},
                                    {"status", to_string(j.status)}});
    };
    if (job.status != JobStatus::failed) return refuse_not_failed(job);
    if (!job.retryable() || !b_.videos.stat(job.video_fid)) {
        return Response::error(410, "source_gone", "the upload of this failed job is no longer kept: upload it again");
    }
    auto body = json_object_body(request);
    if (!body) return body.error();
    auto options = retry_options(body.value(), job.options);
    if (!options) return options.error();
    if (b_.jobs.active_jobs(job.owner_id) >= rules_.max_waiting_jobs_per_user) {
        return limit_reached("too_many_waiting_jobs",
                             "you have " + std::to_string(rules_.max_waiting_jobs_per_user) +
                                 " jobs waiting or converting already; retry once some have finished",
                             "MAX_WAITING_JOBS_PER_USER", rules_.max_waiting_jobs_per_user, 30);
    }
    if (!b_.jobs.requeue_failed(job.id, options.value())) {
        // Another request retried it, or the sweeper expired it, in between.
        auto current = b_.jobs.find(job.id);
        if (!current) return Response::error(404, "job_not_found", "no such job");
        return refuse_not_failed(*current);
    }
    // Every replica's event streams and job views forget the failure they heard.
    messages::StatusEvent event;
    event.job_id = job.id;
    event.status = messages::JobState::queued;
    event.at = b_.clock.now_ms();
    event.trace_id = job.trace_id;
    event.username = job.owner_email;
    event.filename = job.filename;
    StatusEvent local{.job_id = job.id, .status = JobStatus::queued, .at_ms = event.at};
    hub_.update(local);
    try {
        b_.queue.announce(event);
    } catch (const std::exception& e) {
        log::warn("could not announce a retry", {{"job_id", job.id}, {"error", e.what()}});
    }
    b_.dispatch.wake();
    log::info("job retried", {{"request_id", request.request_id}, {"job_id", job.id}});
    auto retried = b_.jobs.find(job.id);
    return Response::json(202, retried ? retried->to_json() : job.to_json());
}

Response JobHandlers::update(const Request& request) {
    auto found = requested_job(b_, request);
    if (!found) return found.error();
    const Job& job = found.value();
    auto body = json_object_body(request);
    if (!body) return body.error();
    auto requested = body.value().find("expires_at");
    if (requested == body.value().end() || !requested->is_string()) {
        return Response::error(400, "expires_at_required", "give {\"expires_at\": \"2026-12-31T12:00:00Z\"}");
    }
    auto expires_ms = parse_iso8601(requested->get<std::string>());
    if (!expires_ms) {
        return Response::error(400, "invalid_expires_at", "expires_at must be a UTC time like 2026-12-31T12:00:00Z");
    }
    int64_t now = b_.clock.now_ms();
    int64_t latest = now + static_cast<int64_t>(rules_.max_retention.count()) * 1000;
    if (*expires_ms <= now || *expires_ms > latest) {
        return Response::json(400, {{"error", "invalid_expires_at"},
                                    {"message", "expires_at must be in the future and at most " +
                                                    std::to_string(rules_.max_retention.count() / 86400) +
                                                    " days from now (" + iso8601(latest) + ")"},
                                    {"limit", {{"name", "MAX_RETENTION"}, {"value", rules_.max_retention.count()}}}});
    }
    if (!b_.jobs.set_expiry(job.id, *expires_ms)) {
        return Response::json(
            409, {{"error", "nothing_kept"},
                  {"message", "this job keeps no files whose expiry could move: it is " + to_string(job.status)},
                  {"status", to_string(job.status)}});
    }
    auto updated = b_.jobs.find(job.id);
    return Response::json(200, updated ? updated->to_json() : job.to_json());
}

}  // namespace mp3c::gateway
