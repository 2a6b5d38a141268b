#include "gateway_app.hpp"

#include <charconv>
#include <map>

#include "mp3c/callback_url.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/multipart.hpp"
#include "mp3c/output_options.hpp"
#include "mp3c/strings.hpp"
#include "request_parsing.hpp"
#include "upload_consumer.hpp"
#include "web_assets.hpp"

namespace mp3c::gateway {

namespace {

using http::Request;
using http::Response;
using namespace std::chrono_literals;

std::optional<uint64_t> parse_unsigned(std::string_view text) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return v;
}

// Streams a blob (or a range of it) into a response.
class BlobSource : public http::BodySource {
  public:
    explicit BlobSource(std::unique_ptr<storage::BlobReader> reader) : reader_(std::move(reader)) {}
    size_t read(char* buffer, size_t size) override { return reader_->read(buffer, size); }

  private:
    std::unique_ptr<storage::BlobReader> reader_;
};

}  // namespace

GatewayApp::GatewayApp(GatewayConfig config)
    : config_(std::move(config)),
      link_key_(crypto::hmac_sha256(config_.jwt_secret, "mp3converter download links")),
      registry_(std::make_shared<metrics::Registry>()),
      pool_(config_.mysql),
      schema_(std::make_unique<mysql::SchemaGuard>(pool_, JobStore::migrations())),
      jobs_(pool_),
      signer_(config_.jwt_secret),
      auth_(config_.auth_url, config_.auth_timeout),
      videos_(storage::open_store(config_.storage_url, "videos")),
      mp3s_(storage::open_store(config_.storage_url, "mp3s")),
      publisher_(config_.amqp, config_.topology),
      uploads_(registry_->counter("gateway_uploads_total", "Uploads by outcome.", {"result"})),
      upload_bytes_(registry_->counter("gateway_upload_bytes_total", "Bytes of accepted uploads.").with({})),
      events_(registry_->counter("gateway_status_events_total", "Status events received.", {"status"})) {
    registry_->callback_gauge("gateway_database_connections", "Open connections to MariaDB.",
                              [this] { return static_cast<double>(pool_.open_connections()); });
    log::info("blob storage", {{"videos", videos_->describe()}, {"mp3s", mp3s_->describe()}});
}

GatewayApp::~GatewayApp() { stop_consumers(); }

http::Router GatewayApp::router() {
    http::Router r;
    add_web_routes(r);
    r.add("POST", "/login", [this](Request& q) { return auth_.forward(q, "/login"); });
    r.add("POST", "/register", [this](Request& q) { return auth_.forward(q, "/register"); },
          {.max_body_bytes = 16 << 10});
    // The body limit leaves room for the multipart framing and form fields around a file of the maximum size.
    r.add_streaming("POST", "/upload", [this](Request& q) { return begin_upload(q); },
                    {.max_body_bytes = config_.max_upload_bytes + (1 << 20)});
    r.add("GET", "/jobs", [this](Request& q) { return list_jobs(q); });
    r.add("GET", "/jobs/{id}", [this](Request& q) { return get_job(q); });
    r.add("DELETE", "/jobs/{id}", [this](Request& q) { return delete_job(q); });
    r.add("GET", "/jobs/{id}/events", [this](Request& q) { return job_events(q); });
    r.add("GET", "/jobs/{id}/mp3", [this](Request& q) { return job_mp3(q); });
    r.add("POST", "/jobs/{id}/link", [this](Request& q) { return create_link(q); });
    r.add("GET", "/download", [this](Request& q) { return download(q); });
    r.on_exception([this](const std::exception& e) -> std::optional<Response> {
        if (auto* db = dynamic_cast<const mysql::Error*>(&e); db && db->unavailable()) {
            log::warn("database unavailable", {{"error", e.what()}});
            return not_ready();
        }
        if (dynamic_cast<const storage::Error*>(&e) != nullptr) {
            log::error("blob storage failed", {{"error", e.what()}});
            return retry_later(503, "storage_unavailable", "file storage is unavailable, try again shortly", 10);
        }
        return std::nullopt;
    });
    return r;
}

http::ReadinessCheck GatewayApp::readiness() {
    return [this]() -> Check {
        if (!schema_->ready()) return std::string("database schema not ready (database unreachable?)");
        if (auto ok = pool_.check(); !ok) return ok;
        if (auto ok = videos_->check(); !ok) return "blob storage: " + ok.error();
        if (auto ok = publisher_.check(); !ok) return ok;
        return Ok{};
    };
}

Response GatewayApp::not_ready() const {
    return retry_later(503, "database_unavailable", "the job database is unavailable, try again shortly", 5);
}

std::variant<Caller, Response> GatewayApp::authenticate(const Request& request) const {
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
    auto claims = signer_.verify(trim(value.substr(7)));
    if (!claims.ok()) {
        return Response::json(
            403,
            {{"error", "not_authorized"}, {"message", "not authorized"}, {"reason", token::to_string(claims.error())}});
    }
    auto access = messages::AccessClaims::from_json(claims.value());
    if (!access) {
        return Response::json(
            403,
            {{"error", "not_authorized"}, {"message", "not authorized"}, {"reason", "token lacks sub or username"}});
    }
    Caller caller;
    caller.user_id = access.value().user_id;
    caller.email = access.value().username;
    caller.admin = access.value().admin;
    return caller;
}

std::variant<Response, std::unique_ptr<http::BodyConsumer>> GatewayApp::begin_upload(Request& request) {
    // Everything that can be refused from the header is refused before a byte of the file is read.
    auto who = authenticate(request);
    if (auto* refused = std::get_if<Response>(&who)) return std::move(*refused);
    Caller caller = std::get<Caller>(who);

    auto content_type = request.headers.get("Content-Type");
    if (!content_type) return Response::error(415, "unsupported_media_type", "the upload must be multipart/form-data");
    auto boundary = multipart::boundary_from_content_type(*content_type);
    if (!boundary) {
        if (boundary.error() == multipart::Error::no_boundary &&
            !iequals(content_type->substr(0, 19), "multipart/form-data")) {
            return Response::error(415, "unsupported_media_type", "the upload must be multipart/form-data");
        }
        return Response::error(400, "malformed_multipart", std::string(multipart::describe(boundary.error())));
    }
    if (auto length = request.headers.get("Content-Length")) {
        auto n = parse_unsigned(trim(*length));
        if (n && *n > config_.max_upload_bytes + (1 << 20)) {
            uploads_.with({"too_large"}).inc();
            return Response::error(
                413, "file_too_large",
                "the file is larger than the limit of " + std::to_string(config_.max_upload_bytes) + " bytes");
        }
    }
    if (!schema_->ready()) return not_ready();

    if (config_.max_queued_jobs > 0) {
        std::optional<uint32_t> depth;
        {
            std::lock_guard lock(depth_mutex_);
            if (std::chrono::steady_clock::now() - depth_checked_ > 1s) {
                cached_depth_ = publisher_.queue_depth(config_.topology.video_queue);
                depth_checked_ = std::chrono::steady_clock::now();
            }
            depth = cached_depth_;
        }
        if (!depth) {
            uploads_.with({"queue_unavailable"}).inc();
            return retry_later(503, "queue_unavailable", "the job queue is unavailable, try again shortly", 10);
        }
        if (*depth > config_.max_queued_jobs) {
            uploads_.with({"busy"}).inc();
            return retry_later(429, "too_many_queued_jobs",
                               "the converters are busy (" + std::to_string(*depth) + " jobs waiting); try again later",
                               30);
        }
    }

    std::optional<uint64_t> quota_left;
    if (config_.user_quota_bytes > 0) {
        uint64_t used = jobs_.stored_bytes(caller.user_id);
        if (used >= config_.user_quota_bytes) {
            uploads_.with({"over_quota"}).inc();
            return Response::error(413, "quota_exceeded",
                                   "your storage quota of " + std::to_string(config_.user_quota_bytes) +
                                       " bytes is used up; delete some jobs first");
        }
        quota_left = config_.user_quota_bytes - used;
    }
    return std::make_unique<UploadConsumer>(*this, std::move(caller), boundary.value(), request.request_id, quota_left);
}

std::variant<Job, Response> GatewayApp::visible_job(const std::string& id, const Caller& caller) {
    if (!storage::is_valid_id(id)) return Response::error(400, "invalid_id", "a job id is 24 hexadecimal characters");
    if (!schema_->ready()) return not_ready();
    auto job = jobs_.find(id);
    // Another user's job is answered exactly like a missing one: its existence is not revealed.
    if (!job || (job->owner_id != caller.user_id && !caller.admin)) {
        return Response::error(404, "job_not_found", "no such job");
    }
    return *job;
}

Response GatewayApp::list_jobs(Request& request) {
    auto who = authenticate(request);
    if (auto* refused = std::get_if<Response>(&who)) return *refused;
    const Caller& caller = std::get<Caller>(who);
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
                                   "status must be one of queued, processing, done, failed, cancelled");
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
    if (!schema_->ready()) return not_ready();
    // One more than asked tells whether another page exists.
    JobQuery probe = query;
    probe.limit = query.limit + 1;
    auto jobs = jobs_.list(probe);
    bool more = jobs.size() > query.limit;
    if (more) jobs.pop_back();
    nlohmann::json list = nlohmann::json::array();
    for (const auto& job : jobs) list.push_back(job.to_json());
    return Response::json(200, {{"jobs", list},
                                {"limit", query.limit},
                                {"offset", query.offset},
                                {"next_offset", more ? nlohmann::json(query.offset + query.limit) : nullptr}});
}

Response GatewayApp::get_job(Request& request) {
    auto who = authenticate(request);
    if (auto* refused = std::get_if<Response>(&who)) return *refused;
    auto job = visible_job(request.path_param("id"), std::get<Caller>(who));
    if (auto* refused = std::get_if<Response>(&job)) return *refused;
    return Response::json(200, std::get<Job>(job).to_json());
}

void GatewayApp::remove_blob(storage::BlobStore& store, const std::optional<std::string>& id) {
    if (!id || id->empty()) return;
    try {
        store.remove(*id);
    } catch (const std::exception& e) {
        log::warn("could not delete a stored file", {{"fid", *id}, {"store", store.describe()}, {"error", e.what()}});
    }
}

Response GatewayApp::delete_job(Request& request) {
    auto who = authenticate(request);
    if (auto* refused = std::get_if<Response>(&who)) return *refused;
    auto found = visible_job(request.path_param("id"), std::get<Caller>(who));
    if (auto* refused = std::get_if<Response>(&found)) return *refused;
    Job job = std::get<Job>(found);
    if (job.status == JobStatus::queued && jobs_.cancel_queued(job.id)) {
        // The converter finds the upload gone and the job cancelled; the row stays to show what happened.
        remove_blob(*videos_, job.video_fid);
        jobs_.forget_video(job.id);
        // Announce it like any status change: event streams end, and every replica hears it.
        messages::StatusEvent event;
        event.job_id = job.id;
        event.status = messages::JobState::cancelled;
        event.error = "cancelled by the user";
        event.at = now_ms();
        event.trace_id = job.trace_id;
        event.username = job.owner_email;
        event.filename = job.filename;
        try {
            publisher_.publish(config_.topology.status_exchange, event.routing_key(),
                               {.body = event.to_body(), .message_id = job.id, .correlation_id = job.trace_id});
        } catch (const amqp::Error& e) {
            log::warn("could not announce a cancellation", {{"job_id", job.id}, {"error", e.what()}});
        }
        auto cancelled = jobs_.find(job.id);
        log::info("job cancelled", {{"request_id", request.request_id}, {"job_id", job.id}});
        return Response::json(200, cancelled ? cancelled->to_json() : job.to_json());
    }
    auto current = jobs_.find(job.id);
    if (current && current->status == JobStatus::processing) {
        return Response::error(409, "job_running", "the job is being converted; delete it once it has finished");
    }
    if (current) {
        remove_blob(*videos_, current->video_fid);
        remove_blob(*mp3s_, current->mp3_fid);
        jobs_.remove(job.id);
    }
    log::info("job deleted", {{"request_id", request.request_id}, {"job_id", job.id}});
    Response r;
    r.status = 204;
    return r;
}

Response GatewayApp::job_events(Request& request) {
    auto who = authenticate(request);
    if (auto* refused = std::get_if<Response>(&who)) return *refused;
    auto found = visible_job(request.path_param("id"), std::get<Caller>(who));
    if (auto* refused = std::get_if<Response>(&found)) return *refused;
    Response r;
    r.headers.set("Content-Type", "text/event-stream; charset=utf-8");
    r.headers.set("Cache-Control", "no-cache");
    r.headers.set("X-Accel-Buffering", "no");  // nginx ingress: pass events through at once
    r.events = std::make_shared<JobEventStream>(hub_, std::get<Job>(found));
    r.poll_interval = 250ms;
    return r;
}

Response GatewayApp::job_mp3(Request& request) {
    // A signed link stands in for the token (an <audio> element cannot send an Authorization header).
    if (!request.headers.get("Authorization")) {
        if (auto signature = request.query_param("signature")) return signed_mp3(request, *signature);
    }
    auto who = authenticate(request);
    if (auto* refused = std::get_if<Response>(&who)) return *refused;
    auto found = visible_job(request.path_param("id"), std::get<Caller>(who));
    if (auto* refused = std::get_if<Response>(&found)) return *refused;
    return send_mp3(request, std::get<Job>(found));
}

std::string GatewayApp::link_signature(const std::string& job_id, uint64_t expires) const {
    return crypto::to_hex(crypto::hmac_sha256(link_key_, "mp3\n" + job_id + "\n" + std::to_string(expires)));
}

Response GatewayApp::create_link(Request& request) {
    auto who = authenticate(request);
    if (auto* refused = std::get_if<Response>(&who)) return *refused;
    auto found = visible_job(request.path_param("id"), std::get<Caller>(who));
    if (auto* refused = std::get_if<Response>(&found)) return *refused;
    const Job& job = std::get<Job>(found);
    if (job.status != JobStatus::done) {
        return Response::json(409, {{"error", "not_ready"},
                                    {"message", "the MP3 is not ready: the job is " + to_string(job.status)},
                                    {"status", to_string(job.status)}});
    }
    auto expires = static_cast<uint64_t>(now_ms() / 1000 + config_.download_link_ttl.count());
    std::string url =
        "/jobs/" + job.id + "/mp3?expires=" + std::to_string(expires) + "&signature=" + link_signature(job.id, expires);
    return Response::json(200, {{"url", url}, {"expires_at", iso8601(static_cast<int64_t>(expires) * 1000)}});
}

Response GatewayApp::signed_mp3(Request& request, const std::string& signature) {
    const std::string& id = request.path_param("id");
    std::optional<uint64_t> expires;
    if (auto text = request.query_param("expires")) expires = parse_unsigned(*text);
    if (!expires || !storage::is_valid_id(id) ||
        !crypto::constant_time_equal(signature, link_signature(id, *expires))) {
        return Response::error(403, "invalid_link", "this download link is not valid");
    }
    if (*expires < static_cast<uint64_t>(now_ms() / 1000)) {
        return Response::error(403, "link_expired", "this download link has expired: ask for a new one");
    }
    if (!schema_->ready()) return not_ready();
    auto job = jobs_.find(id);
    if (!job) return Response::error(404, "job_not_found", "no such job");
    return send_mp3(request, *job);
}

Response GatewayApp::download(Request& request) {
    auto who = authenticate(request);
    if (auto* refused = std::get_if<Response>(&who)) return *refused;
    const Caller& caller = std::get<Caller>(who);
    auto fid = request.query_param("fid");
    if (!fid || fid->empty()) return Response::error(400, "fid_required", "fid is required");
    if (!storage::is_valid_id(*fid)) return Response::error(400, "invalid_id", "a fid is 24 hexadecimal characters");
    if (!schema_->ready()) return not_ready();
    auto job = jobs_.find_by_mp3(*fid);
    if (!job || (job->owner_id != caller.user_id && !caller.admin)) {
        return Response::error(404, "file_not_found", "no such file");
    }
    return send_mp3(request, *job);
}

Response GatewayApp::send_mp3(const Request& request, const Job& job) {
    if (job.status != JobStatus::done || !job.mp3_fid) {
        return Response::json(409, {{"error", "not_ready"},
                                    {"message", "the MP3 is not ready: the job is " + to_string(job.status)},
                                    {"status", to_string(job.status)}});
    }
    auto info = mp3s_->stat(*job.mp3_fid);
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
    auto reader = mp3s_->open(*job.mp3_fid, offset, length);
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

amqp::Consumer::Outcome GatewayApp::on_status_event(const amqp::Delivery& delivery, bool update_database) {
    auto event = StatusEvent::parse(delivery.body);
    if (!event) {
        log::warn("invalid status event dead-lettered",
                  {{"routing_key", delivery.routing_key}, {"body", delivery.body.substr(0, 500)}});
        return amqp::Consumer::Outcome::dead_letter;
    }
    if (event->at_ms == 0) event->at_ms = now_ms();
    hub_.update(*event);
    if (!update_database) return amqp::Consumer::Outcome::ack;
    events_.with({to_string(event->status)}).inc();
    if (!schema_->ready()) throw std::runtime_error("database schema not ready");  // requeued after a pause
    bool changed = false;
    try {
        changed = jobs_.apply(*event);
    } catch (const mysql::Error& e) {
        if (e.unavailable()) throw;  // requeued: the database comes back
        // The database refuses this event for good (an MP3 id another job already has): do not loop on it.
        log::warn("status event refused by the database, dead-lettered",
                  {{"job_id", event->job_id}, {"error", e.what()}});
        return amqp::Consumer::Outcome::dead_letter;
    }
    if (changed && event->source_deleted) jobs_.forget_video(event->job_id);
    if (!changed && event->status == JobStatus::done && event->mp3_fid) {
        // A conversion that finished after its job was cancelled or deleted: its MP3 belongs to nobody.
        auto job = jobs_.find(event->job_id);
        if (!job || job->mp3_fid != event->mp3_fid) remove_blob(*mp3s_, event->mp3_fid);
    }
    return amqp::Consumer::Outcome::ack;
}

void GatewayApp::start_consumers() {
    if (status_consumer_) return;
    auto topology = config_.topology;
    auto options = config_.amqp;
    options.connection_name = "gateway-status";
    status_consumer_ = std::make_unique<amqp::Consumer>(
        options,
        [topology](amqp::Connection& c) {
            amqp::declare_topology(c, topology);
            return topology.gateway_status_queue;
        },
        16, [this](const amqp::Delivery& d) { return on_status_event(d, true); });
    // Every replica also hears every event, for the event streams of the clients connected to it.
    std::string live_queue = topology.gateway_status_queue + ".live." + crypto::random_hex(6);
    options.connection_name = "gateway-live";
    live_consumer_ = std::make_unique<amqp::Consumer>(
        options,
        [topology, live_queue](amqp::Connection& c) {
            c.declare_exchange(topology.status_exchange, "topic");
            c.declare_queue(live_queue, /*durable=*/false, /*exclusive=*/true, /*auto_delete=*/true);
            c.bind(live_queue, topology.status_exchange, "job.*");
            return live_queue;
        },
        64, [this](const amqp::Delivery& d) { return on_status_event(d, false); });
    status_consumer_->start();
    live_consumer_->start();
}

void GatewayApp::stop_consumers() {
    if (live_consumer_) live_consumer_->stop();
    if (status_consumer_) status_consumer_->stop();
}

}  // namespace mp3c::gateway
