#pragma once

// The body of POST /upload, taken as it arrives. Internal to the gateway: only gateway_app.cpp includes it (GatewayApp
// makes one per upload and lets it use its stores, publisher and metrics).
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "gateway_app.hpp"
#include "mp3c/callback_url.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/multipart.hpp"
#include "mp3c/output_options.hpp"
#include "request_parsing.hpp"

namespace mp3c::gateway {

using http::Request;
using http::Response;

inline int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// An error answer that tells the client when to try again.
inline Response retry_later(int status, std::string_view code, std::string_view message, int seconds) {
    Response r = Response::error(status, code, message);
    r.headers.set("Retry-After", std::to_string(seconds));
    return r;
}

inline constexpr size_t kMaxFieldBytes = 2048;  // a callback_url may have 2000
inline constexpr size_t kMaxFields = 16;

// Takes a multipart upload as it arrives: the file part streams into the video store, the small form fields are
// kept. Nothing is kept unless the whole request succeeds: a writer that is never committed aborts, and a job whose
// message could not be published is deleted with its file.
class UploadConsumer : public http::BodyConsumer {
  public:
    UploadConsumer(GatewayApp& app, Caller caller, std::string boundary, std::string request_id,
                   std::optional<uint64_t> quota_left)
        : app_(app),
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
        if (!writer_ || !file_done_) {
            app_.uploads_.with({"no_file"}).inc();
            return Response::error(400, "exactly_one_file",
                                   "exactly 1 file required (a multipart field with a filename)");
        }
        if (writer_->bytes_written() == 0) {
            app_.uploads_.with({"empty"}).inc();
            return Response::error(400, "empty_file", "the uploaded file is empty");
        }
        auto options = parse_output_options(fields_);
        if (!options) {
            app_.uploads_.with({"bad_options"}).inc();
            return Response::error(400, "invalid_option", options.error());
        }
        std::optional<std::string> callback_url;
        if (auto it = fields_.find("callback_url"); it != fields_.end() && !it->second.empty()) {
            if (auto checked = check_callback_url(it->second); !checked) {
                app_.uploads_.with({"bad_options"}).inc();
                return Response::error(400, "invalid_callback_url", checked.error());
            }
            callback_url = it->second;
        }
        storage::BlobInfo video = writer_->commit();
        Job job;
        job.id = storage::new_id();
        job.owner_id = caller_.user_id;
        job.owner_email = caller_.email;
        job.filename = filename_;
        job.size = video.size;
        job.video_fid = video.id;
        job.options = options.value().to_json();
        job.trace_id = request_id_;
        job.callback_url = callback_url;
        try {
            app_.jobs_.create(job);
        } catch (...) {
            app_.remove_blob(*app_.videos_, video.id);
            throw;
        }
        // The original's fields, plus what the converter needs to work and report without asking anyone.
        messages::VideoJob message;
        message.job_id = job.id;
        message.video_fid = video.id;
        message.username = caller_.email;
        message.user_id = std::to_string(caller_.user_id);
        message.filename = job.filename;
        message.size = job.size;
        message.options = options.value();
        message.trace_id = job.trace_id;
        message.submitted_at = now_ms();
        message.callback_url = job.callback_url;
        // The MP3 counts against the owner's quota too: it may take what was left when the upload began (the upload
        // itself is deleted once converted). The converter fails the job (output_too_large) rather than go over.
        message.max_output_bytes = quota_left_;
        try {
            app_.publisher_.publish("", app_.config_.topology.video_queue,
                                    {.body = message.to_body(), .message_id = job.id, .correlation_id = job.trace_id});
        } catch (const amqp::Error& e) {
            log::warn("upload refused: the job could not be queued",
                      {{"request_id", request_id_}, {"job_id", job.id}, {"error", e.what()}});
            // The file first: if the database fails too, a queued row without its file is failed by the converter,
            // while a file without a row would never be found again.
            app_.remove_blob(*app_.videos_, video.id);
            try {
                app_.jobs_.remove(job.id);
            } catch (const std::exception& remove_error) {
                log::error("could not remove the job of a refused upload",
                           {{"request_id", request_id_}, {"job_id", job.id}, {"error", remove_error.what()}});
            }
            app_.uploads_.with({"queue_unavailable"}).inc();
            return retry_later(503, "queue_unavailable", "the job queue is unavailable, try again shortly", 10);
        }
        app_.uploads_.with({"accepted"}).inc();
        app_.upload_bytes_.inc(static_cast<double>(video.size));
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
    bool begin(const multipart::PartHeaders& headers) {
        if (headers.filename) {
            if (writer_) {
                refusal_ = Response::error(400, "exactly_one_file", "exactly 1 file required, got more than one");
                return false;
            }
            filename_ = clean_filename(*headers.filename);
            writer_ = app_.videos_->create({.owner = std::to_string(caller_.user_id),
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
        if (total > app_.config_.max_upload_bytes) {
            app_.uploads_.with({"too_large"}).inc();
            refusal_ = Response::error(
                413, "file_too_large",
                "the file is larger than the limit of " + std::to_string(app_.config_.max_upload_bytes) + " bytes");
            return false;
        }
        if (quota_left_ && total > *quota_left_) {
            app_.uploads_.with({"over_quota"}).inc();
            refusal_ =
                Response::error(413, "quota_exceeded",
                                "this upload would exceed your storage quota of " +
                                    std::to_string(app_.config_.user_quota_bytes) + " bytes; delete some jobs first");
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
        app_.uploads_.with({"malformed"}).inc();
        return Response::error(400, "malformed_multipart", std::string(multipart::describe(parser_.error())));
    }

    GatewayApp& app_;
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

}  // namespace mp3c::gateway
