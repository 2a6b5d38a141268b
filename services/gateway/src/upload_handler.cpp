#include "upload_handler.hpp"

#include <map>
#include <optional>
#include <string>

#include "mp3c/callback_url.hpp"
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
                   std::optional<uint64_t> quota_left)
        : h_(handler),
          caller_(std::move(caller)),
          request_id_(std::move(request_id)),
          quota_left_(quota_left),
          parser_(std::move(boundary),
                  multipart::Parser::Callbacks{
                      .on_part_begin = [this](const multipart::PartHeaders& h) { return begin(h); },
                      .on_part_data = [this](std::string_view b) { return data(b); },
                      .on_part_end = [this] { return end(); },
                  }) {}

    std::optional<Response> on_data(std::string_view chunk) override {
        if (parser_.feed(chunk)) return std::nullopt;
        return refusal();
    }

    Response on_end() override {
        if (!parser_.finish()) return refusal();
        auto form = checked_form();
        if (!form) return form.error();
        storage::BlobInfo video = writer_->commit();
        Job job = record(video, form.value());
        if (auto refused = submit(job, form.value())) return *refused;
        h_.uploads_.with({"accepted"}).inc();
        h_.upload_bytes_.inc(static_cast<double>(video.size));
        log::info("job queued", {{"request_id", request_id_},
                                 {"job_id", job.id},
                                 {"video_fid", video.id},
                                 {"bytes", video.size},
                                 {"user_id", caller_.user_id}});
        return Response::json(
            202,
            {{"job_id", job.id}, {"video_fid", video.id}, {"status", "queued"}, {"status_url", "/jobs/" + job.id}});
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

    // The job's record, for the stored upload (deleted again if the record cannot be written).
    Job record(const storage::BlobInfo& video, const Form& form) {
        Job job;
        job.id = storage::new_id();
        job.owner_id = caller_.user_id;
        job.owner_email = caller_.email;
        job.filename = filename_;
        job.size = video.size;
        job.video_fid = video.id;
        job.options = form.options.to_json();
        job.trace_id = request_id_;
        job.callback_url = form.callback_url;
        try {
            h_.b_.jobs.create(job);
        } catch (...) {
            remove_blob(h_.b_.videos, video.id);
            throw;
        }
        return job;
    }

    // Queues the job; when the broker does not confirm, takes back the upload and the record and returns the 503.
    std::optional<Response> submit(const Job& job, const Form& form) {
        // The original's fields, plus what the converter needs to work and report without asking anyone.
        messages::VideoJob message;
        message.job_id = job.id;
        message.video_fid = job.video_fid;
        message.username = caller_.email;
        message.user_id = std::to_string(caller_.user_id);
        message.filename = job.filename;
        message.size = job.size;
        message.options = form.options;
        message.trace_id = job.trace_id;
        message.submitted_at = h_.b_.clock.now_ms();
        message.callback_url = job.callback_url;
        // The MP3 counts against the owner's quota too: it may take what was left when the upload began (the upload
        // itself is deleted once converted). The converter fails the job (output_too_large) rather than go over.
        message.max_output_bytes = quota_left_;
        try {
            h_.b_.queue.submit(message);
            return std::nullopt;
        } catch (const std::exception& e) {
            log::warn("upload refused: the job could not be queued",
                      {{"request_id", request_id_}, {"job_id", job.id}, {"error", e.what()}});
        }
        // The file first: if the database fails too, a queued row without its file is failed by the converter, while
        // a file without a row would never be found again.
        remove_blob(h_.b_.videos, job.video_fid);
        try {
            h_.b_.jobs.remove(job.id);
        } catch (const std::exception& remove_error) {
            log::error("could not remove the job of a refused upload",
                       {{"request_id", request_id_}, {"job_id", job.id}, {"error", remove_error.what()}});
        }
        h_.uploads_.with({"queue_unavailable"}).inc();
        return retry_later(503, "queue_unavailable", "the job queue is unavailable, try again shortly", 10);
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
        if (quota_left_ && total > *quota_left_) {
            h_.uploads_.with({"over_quota"}).inc();
            refusal_ =
                Response::error(413, "quota_exceeded",
                                "this upload would exceed your storage quota of " +
                                    std::to_string(h_.limits_.user_quota_bytes) + " bytes; delete some jobs first");
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

    Response refusal() {
        if (refusal_) return *refusal_;
        h_.uploads_.with({"malformed"}).inc();
        return Response::error(400, "malformed_multipart", std::string(multipart::describe(parser_.error())));
    }

    UploadHandler& h_;
    Caller caller_;
    std::string request_id_;
    std::optional<uint64_t> quota_left_;
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
      upload_bytes_(registry.counter("gateway_upload_bytes_total", "Bytes of accepted uploads.").with({})) {}

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

    std::optional<uint64_t> quota_left;
    if (limits_.user_quota_bytes > 0) {
        uint64_t used = b_.jobs.stored_bytes(caller.user_id);
        if (used >= limits_.user_quota_bytes) {
            uploads_.with({"over_quota"}).inc();
            return Response::error(413, "quota_exceeded",
                                   "your storage quota of " + std::to_string(limits_.user_quota_bytes) +
                                       " bytes is used up; delete some jobs first");
        }
        quota_left = limits_.user_quota_bytes - used;
    }
    return std::make_unique<UploadConsumer>(*this, std::move(caller), boundary.value(), request.request_id, quota_left);
}

}  // namespace mp3c::gateway
