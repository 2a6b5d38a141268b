#include "upload_handler.hpp"

#include <map>
#include <optional>
#include <string>

#include "mp3c/callback_url.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/multipart.hpp"
#include "mp3c/output_options.hpp"
#include "mp3c/strings.hpp"
#include "request_parsing.hpp"

namespace mp3c::gateway {

using http::Request;
using http::Response;

namespace {
constexpr size_t kMaxFieldBytes = 2048;  // a callback_url may have 2000
constexpr size_t kMaxFields = 16;
}  // namespace

// Takes a multipart upload as it arrives: the file part streams into the video store, the small form fields are
// kept. Nothing is kept unless the whole request succeeds: a writer that is never committed aborts, and a job whose
// message could not be published is deleted with its file.
class UploadConsumer : public http::BodyConsumer {
  public:
    UploadConsumer(UploadHandler& handler, Caller caller, std::string boundary, std::string request_id,
                   std::unique_ptr<Slots::Slot> slot, std::optional<QuotaReservation> reservation)
        : h_(handler),
          caller_(std::move(caller)),
          request_id_(std::move(request_id)),
          slot_(std::move(slot)),
          reservation_(std::move(reservation)),
          parser_(std::move(boundary),
                  multipart::Parser::Callbacks{
                      .on_part_begin = [this](const multipart::PartHeaders& h) { return begin(h); },
                      .on_part_data = [this](std::string_view b) { return data(b); },
                      .on_part_end = [this] { return end(); },
                  }) {}

    ~UploadConsumer() override {
        // Accepted or not, the upload's bytes are held by its job (or by nothing) from now on.
        if (reservation_) {
            try {
                h_.b_.jobs.release(reservation_->id);
            } catch (const std::exception& e) {
                log::warn("could not release a quota reservation (it lapses on its own)",
                          {{"request_id", request_id_}, {"error", e.what()}});
            }
        }
    }

    std::optional<Response> on_data(std::string_view chunk) override {
        if (parser_.feed(chunk)) return std::nullopt;
        return refusal();
    }

    Response on_end() override {
        if (!parser_.finish()) return refusal();
        auto form = checked_form();
        if (!form) return form.error();
        storage::BlobInfo video = writer_->commit();
        Job job = new_job(video, form.value());
        if (reuse(job)) {
            h_.uploads_.with({"reused"}).inc();
            log::info("job done at once with an earlier identical job's MP3",
                      {{"request_id", request_id_}, {"job_id", job.id}, {"reused_from", *job.reused_from}});
            return Response::json(202, {{"job_id", job.id},
                                        {"video_fid", nullptr},
                                        {"mp3_fid", *job.mp3_fid},
                                        {"status", "done"},
                                        {"reused_from", *job.reused_from},
                                        {"status_url", "/jobs/" + job.id}});
        }
        record(job);
        h_.b_.dispatch.wake();  // the job waits its owner's turn (dispatcher.hpp)
        h_.uploads_.with({"accepted"}).inc();
        h_.upload_bytes_.inc(static_cast<double>(video.size));
        log::info("job queued", {{"request_id", request_id_},
                                 {"job_id", job.id},
                                 {"video_fid", video.id},
                                 {"bytes", video.size},
                                 {"user_id", caller_.user_id}});
        return Response::json(
            202,
            // The MP3 will be stored under the job's id: the original's GET /download?fid= needs no status call first.
            {{"job_id", job.id},
             {"video_fid", video.id},
             {"mp3_fid", job.id},
             {"status", "queued"},
             {"status_url", "/jobs/" + job.id}});
    }

  private:
    // What the form says besides the file, once checked.
    struct Form {
        OutputOptions options;
        std::optional<std::string> callback_url;
    };

    // The whole body has been read: exactly one non-empty file, valid options and callback URL, or the 400.
    Result<Form, Response> checked_form() {
        auto refuse = [this](const char* result, std::string_view code, std::string_view message) {
            h_.uploads_.with({result}).inc();
            return Response::error(400, code, message);
        };
        if (!writer_ || !file_done_) {
            return refuse("no_file", "exactly_one_file", "exactly 1 file required (a multipart field with a filename)");
        }
        if (writer_->bytes_written() == 0) return refuse("empty", "empty_file", "the uploaded file is empty");
        auto options = parse_output_options(fields_);
        if (!options) return refuse("bad_options", "invalid_option", options.error());
        Form form{.options = options.value(), .callback_url = std::nullopt};
        if (auto it = fields_.find("callback_url"); it != fields_.end() && !it->second.empty()) {
            if (auto checked = check_callback_url(it->second); !checked) {
                return refuse("bad_options", "invalid_callback_url", checked.error());
            }
            form.callback_url = it->second;
        }
        return form;
    }

    Job new_job(const storage::BlobInfo& video, const Form& form) const {
        Job job;
        job.id = storage::new_id();
        job.owner_id = caller_.user_id;
        job.owner_email = caller_.email;
        job.filename = filename_;
        job.size = video.size;
        job.video_fid = video.id;
        job.source_sha256 = video.sha256;
        job.options = form.options.to_json();
        job.trace_id = request_id_;
        job.callback_url = form.callback_url;
        if (reservation_) job.max_output_bytes = h_.limits_.user_quota_bytes - reservation_->others;
        return job;
    }

    // The job's record, for the stored upload (deleted again if the record cannot be written).
    void record(const Job& job) {
        try {
            h_.b_.jobs.create(job);
        } catch (...) {
            remove_blob(h_.b_.videos, job.video_fid);
            throw;
        }
    }

    // The same bytes with the same options as one of the owner's done jobs (never another user's: that would tell
    // them what others uploaded): the job is done at once with a copy of that MP3, so deleting either job keeps the
    // other's. Any trouble on the way (the MP3 expired meanwhile, a storage error) means converting as usual.
    bool reuse(Job& job) {
        std::optional<Job> earlier;
        try {
            earlier = h_.b_.jobs.find_reusable(job.owner_id, *job.source_sha256, job.options);
        } catch (const std::exception& e) {
            log::warn("could not look for an identical earlier job",
                      {{"request_id", request_id_}, {"error", e.what()}});
        }
        h_.reuses_.with({earlier ? "hit" : "miss"}).inc();
        if (!earlier) return false;
        std::optional<storage::BlobInfo> copy;
        try {
            copy = copy_mp3(*earlier->mp3_fid, job);
        } catch (const std::exception& e) {
            log::warn("could not copy an earlier job's MP3: converting instead",
                      {{"request_id", request_id_}, {"reused_from", earlier->id}, {"error", e.what()}});
        }
        if (!copy) return false;
        Job done = job;
        done.status = JobStatus::done;
        done.progress = 100;
        done.video_fid.clear();
        done.mp3_fid = copy->id;
        done.mp3_size = copy->size;
        done.duration_ms = earlier->duration_ms;
        done.loudness = earlier->loudness;
        done.reused_from = earlier->id;
        try {
            h_.b_.jobs.create(done);
        } catch (...) {
            remove_blob(h_.b_.mp3s, copy->id);
            remove_blob(h_.b_.videos, job.video_fid);
            throw;
        }
        remove_blob(h_.b_.videos, job.video_fid);
        job = std::move(done);
        tell_owner(job);
        return true;
    }

    // The owner's mail and webhook, as for a converted job: the `mp3` message the converter would have sent.
    void tell_owner(const Job& job) {
        messages::Mp3Ready ready;
        ready.job_id = job.id;
        ready.mp3_fid = *job.mp3_fid;
        ready.username = job.owner_email;
        ready.user_id = std::to_string(job.owner_id);
        ready.filename = job.filename;
        ready.mp3_size = job.mp3_size.value_or(0);
        ready.duration_seconds = static_cast<double>(job.duration_ms.value_or(0)) / 1000.0;
        ready.trace_id = job.trace_id;
        ready.callback_url = job.callback_url;
        if (!h_.limits_.ticket_key.empty()) {
            ready.ticket = messages::job_ticket(h_.limits_.ticket_key, job.id, job.owner_email, job.callback_url);
        }
        try {
            h_.b_.queue.finished(ready);
        } catch (const std::exception& e) {
            // The job is done and its MP3 kept; only the mail (and webhook) of this one is missing.
            log::error("could not announce a reused job: no mail or webhook for it",
                       {{"request_id", request_id_}, {"job_id", job.id}, {"error", e.what()}});
        }
    }

    // A copy of the MP3 named after the new job (as the converter names its MP3s); nullopt when it is gone.
    std::optional<storage::BlobInfo> copy_mp3(const std::string& mp3_fid, const Job& job) {
        auto reader = h_.b_.mp3s.open(mp3_fid);
        if (!reader) return std::nullopt;
        auto writer = h_.b_.mp3s.create({.owner = std::to_string(job.owner_id),
                                         .filename = reader->info().filename,
                                         .content_type = "audio/mpeg",
                                         .id = job.id});
        std::vector<char> buffer(1 << 20);
        while (size_t n = reader->read(buffer.data(), buffer.size())) writer->write(std::string_view(buffer.data(), n));
        return writer->commit();
    }

    bool begin(const multipart::PartHeaders& headers) {
        if (headers.filename) {
            if (writer_) {
                refusal_ = Response::error(400, "exactly_one_file", "exactly 1 file required, got more than one");
                return false;
            }
            filename_ = clean_filename(*headers.filename);
            writer_ = h_.b_.videos.create({.owner = std::to_string(caller_.user_id),
                                           .filename = filename_,
                                           .content_type = headers.content_type});
            in_file_ = true;
            return true;
        }
        if (fields_.size() >= kMaxFields) {
            refusal_ = Response::error(400, "too_many_fields", "too many form fields");
            return false;
        }
        field_name_ = headers.name;
        field_value_.clear();
        in_file_ = false;
        return true;
    }

    bool data(std::string_view bytes) {
        if (!in_file_) {
            if (field_value_.size() + bytes.size() > kMaxFieldBytes) {
                refusal_ = Response::error(
                    400, "field_too_long",
                    "form field '" + field_name_ + "' is longer than " + std::to_string(kMaxFieldBytes) + " bytes");
                return false;
            }
            field_value_.append(bytes);
            return true;
        }
        uint64_t total = writer_->bytes_written() + bytes.size();
        if (total > h_.limits_.max_upload_bytes) {
            h_.uploads_.with({"too_large"}).inc();
            refusal_ = Response::error(
                413, "file_too_large",
                "the file is larger than the limit of " + std::to_string(h_.limits_.max_upload_bytes) + " bytes");
            return false;
        }
        if (reservation_ &&
            std::chrono::steady_clock::now() - reservation_->renewed >= h_.limits_.reservation_renewal) {
            // A slow upload keeps what it reserved (a reservation lapses 10 minutes after it was last touched).
            h_.b_.jobs.renew(reservation_->id);
            reservation_->renewed = std::chrono::steady_clock::now();
        }
        if (reservation_ && total > reservation_->bytes && !grow_reservation(total)) {
            h_.uploads_.with({"over_quota"}).inc();
            refusal_ = h_.quota_exceeded("this upload would exceed your storage quota of ");
            return false;
        }
        writer_->write(bytes);
        return true;
    }

    bool end() {
        if (in_file_) {
            file_done_ = true;
            in_file_ = false;
        } else {
            fields_[field_name_] = field_value_;
        }
        return true;
    }

    // Reserves up to `total` bytes of quota (a step more when it can, to ask the database less often).
    bool grow_reservation(uint64_t total) {
        uint64_t need = total - reservation_->bytes;
        for (uint64_t ask : {std::max(need, UploadHandler::kReservationStep), need}) {
            if (h_.b_.jobs.reserve(reservation_->id, caller_.user_id, ask, h_.limits_.user_quota_bytes)) {
                reservation_->bytes += ask;
                reservation_->renewed = std::chrono::steady_clock::now();
                return true;
            }
            if (ask == need) break;
        }
        return false;
    }

    Response refusal() {
        if (refusal_) return *refusal_;
        h_.uploads_.with({"malformed"}).inc();
        return Response::error(400, "malformed_multipart", std::string(multipart::describe(parser_.error())));
    }

    UploadHandler& h_;
    Caller caller_;
    std::string request_id_;
    std::unique_ptr<Slots::Slot> slot_;  // one of the caller's MAX_UPLOADS_PER_USER
    std::optional<QuotaReservation> reservation_;
    multipart::Parser parser_;
    std::unique_ptr<storage::BlobWriter> writer_;
    std::string filename_;
    bool in_file_ = false;
    bool file_done_ = false;
    std::string field_name_, field_value_;
    std::map<std::string, std::string> fields_;
    std::optional<Response> refusal_;
};

UploadHandler::UploadHandler(Backends backends, UploadLimits limits, metrics::Registry& registry)
    : b_(backends),
      limits_(limits),
      uploads_(registry.counter("gateway_uploads_total", "Uploads by outcome.", {"result"})),
      upload_bytes_(registry.counter("gateway_upload_bytes_total", "Bytes of accepted uploads.").with({})),
      reuses_(registry.counter("gateway_reused_uploads_total",
                               "Uploads looked up against the owner's earlier jobs (same bytes and options): hit when "
                               "one's MP3 served the upload at once.",
                               {"result"})) {}

void UploadHandler::add_routes(http::Router& r) {
    // The body limit leaves room for the multipart framing and form fields around a file of the maximum size.
    r.add_streaming("POST", "/upload", [this](Request& q) { return begin(q); },
                    {.max_body_bytes = limits_.max_upload_bytes + (1 << 20)});
}

std::variant<Response, std::unique_ptr<http::BodyConsumer>> UploadHandler::begin(const Request& request) {
    // Everything that can be refused from the header is refused before a byte of the file is read.
    auto who = b_.auth.authenticate(request);
    if (!who) return who.error();
    Caller caller = who.value();
    auto slot = in_progress_.acquire(std::to_string(caller.user_id));
    if (!slot) {
        uploads_.with({"too_many_uploads"}).inc();
        return limit_reached("too_many_uploads",
                             "you have " + std::to_string(limits_.max_uploads_per_user) +
                                 " uploads in progress already; wait for one to finish",
                             "MAX_UPLOADS_PER_USER", limits_.max_uploads_per_user, 2);
    }

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
        if (n && *n > limits_.max_upload_bytes + (1 << 20)) {
            uploads_.with({"too_large"}).inc();
            return Response::error(
                413, "file_too_large",
                "the file is larger than the limit of " + std::to_string(limits_.max_upload_bytes) + " bytes");
        }
    }
    if (!b_.jobs.ready()) return database_unavailable();
    if (b_.jobs.active_jobs(caller.user_id) >= limits_.max_waiting_jobs_per_user) {
        uploads_.with({"too_many_waiting_jobs"}).inc();
        return limit_reached("too_many_waiting_jobs",
                             "you have " + std::to_string(limits_.max_waiting_jobs_per_user) +
                                 " jobs waiting or converting already; upload more once some have finished",
                             "MAX_WAITING_JOBS_PER_USER", limits_.max_waiting_jobs_per_user, 60);
    }

    if (limits_.max_queued_jobs > 0) {
        auto depth = b_.queue.depth();
        if (!depth) {
            uploads_.with({"queue_unavailable"}).inc();
            return retry_later(503, "queue_unavailable", "the job queue is unavailable, try again shortly", 10);
        }
        if (*depth > limits_.max_queued_jobs) {
            uploads_.with({"busy"}).inc();
            return retry_later(429, "too_many_queued_jobs",
                               "the converters are busy (" + std::to_string(*depth) + " jobs waiting); try again later",
                               30);
        }
    }

    std::optional<QuotaReservation> reservation;
    if (limits_.user_quota_bytes > 0) {
        // What the request declares, or a first step of a body of unknown length: reserved before a byte is read, so
        // that parallel uploads cannot pass the quota together.
        QuotaReservation r{.id = crypto::random_hex(16), .bytes = kReservationStep, .others = 0};
        auto declared = request.headers.get("Content-Length");
        if (declared) r.bytes = parse_unsigned(trim(*declared)).value_or(0);
        auto others = b_.jobs.reserve(r.id, caller.user_id, r.bytes, limits_.user_quota_bytes);
        if (!others && !declared) {
            r.bytes = 1;  // a small upload of unknown length may still fit
            others = b_.jobs.reserve(r.id, caller.user_id, r.bytes, limits_.user_quota_bytes);
        }
        if (!others) {
            uploads_.with({"over_quota"}).inc();
            return quota_exceeded(declared ? "this upload would exceed your storage quota of "
                                           : "your storage quota is used up: ");
        }
        r.others = *others;
        reservation = std::move(r);
    }
    return std::make_unique<UploadConsumer>(*this, std::move(caller), boundary.value(), request.request_id,
                                            std::move(slot), std::move(reservation));
}

nlohmann::json UploadHandler::usage(const Caller& caller) {
    auto quota = limits_.user_quota_bytes > 0 ? nlohmann::json(limits_.user_quota_bytes) : nlohmann::json(nullptr);
    return {{"usage",
             {{"stored_bytes", b_.jobs.stored_bytes(caller.user_id)},
              {"reserved_bytes", b_.jobs.reserved_bytes(caller.user_id)},
              {"active_jobs", b_.jobs.active_jobs(caller.user_id)},
              {"uploads_in_progress", in_progress_.held(std::to_string(caller.user_id))}}},
            {"limits",
             {{"quota_bytes", quota},
              {"max_upload_bytes", limits_.max_upload_bytes},
              {"max_waiting_jobs", limits_.max_waiting_jobs_per_user},
              {"max_uploads_in_progress", limits_.max_uploads_per_user}}}};
}

Response UploadHandler::quota_exceeded(const std::string& what) const {
    return Response::error(413, "quota_exceeded",
                           what + std::to_string(limits_.user_quota_bytes) + " bytes; delete some jobs first");
}

}  // namespace mp3c::gateway
