#pragma once

// The gateway's own settings (besides the HTTP server's, MariaDB's, RabbitMQ's, JWT_SECRET, STORAGE_URL and LOG_LEVEL).
#include "mp3c/config.hpp"

namespace mp3c::gateway::settings {

using config::Kind;
using config::Setting;

inline constexpr Setting kAuthAddress{
    .name = "AUTH_SVC_ADDRESS",
    .kind = Kind::text,
    .fallback = "127.0.0.1:5000",
    .help =
        "Where auth answers `/login` and `/register`. `host:port` as in the original (`auth:5000`, taken as "
        "`http://auth:5000`), or a URL starting with `http://` or `https://`; trailing slashes are dropped."};
inline constexpr Setting kAuthTimeout{.name = "AUTH_TIMEOUT",
                                      .kind = Kind::duration,
                                      .fallback = "5s",
                                      .help =
                                          "Limit for connecting to auth and for the whole call; past it the "
                                          "gateway answers 503 `auth_unavailable`.",
                                      .min = 100};
inline constexpr Setting kMaxUploadBytes{
    .name = "MAX_UPLOAD_BYTES",
    .kind = Kind::bytes,
    .fallback = "2GiB",
    .help =
        "Largest uploaded file; larger gets 413 `file_too_large`. The request body may be 1 MiB larger, for the "
        "multipart framing and the form fields: a `Content-Length` over that is refused before the body is read; "
        "otherwise the file is refused as soon as its bytes pass the limit. A size, more than 0."};
inline constexpr Setting kMaxQueuedJobs{
    .name = "MAX_QUEUED_JOBS",
    .kind = Kind::integer,
    .fallback = "1000",
    .help =
        "Backpressure: while more messages than this wait in the `video` queue, uploads get 429 "
        "`too_many_queued_jobs` before their body is read. The depth is asked of RabbitMQ at most once a second. "
        "`0` turns the check off, and then an unreachable broker is noticed only after the file is stored (the "
        "upload is then rolled back, 503). From",
    .min = 0,
    .max = 100'000'000};
inline constexpr Setting kUserQuotaBytes{
    .name = "USER_QUOTA_BYTES",
    .kind = Kind::bytes,
    .fallback = "0",
    .help =
        "Most bytes one user may keep stored: the uploads of their jobs not yet deleted plus their MP3s. An upload "
        "that would go over gets 413 `quota_exceeded`. The MP3 is held to the quota too: the `video` message "
        "carries `max_output_bytes`, what the quota left when the upload began (the upload is deleted once "
        "converted, so the MP3 may take that much), and the converter fails a job whose MP3 would be larger "
        "(`output_too_large`, \"storage quota\"; see the converter's `MAX_OUTPUT_BYTES`). A size.",
    .shown_default = "`0` (no quota)"};
inline constexpr Setting kDownloadLinkTtl{
    .name = "DOWNLOAD_LINK_TTL",
    .kind = Kind::duration,
    .fallback = "10m",
    .help =
        "How long a signed MP3 link from `POST /jobs/{id}/link` works (the web page's player and downloads), used "
        "in whole seconds. The links are signed with a key derived from `JWT_SECRET` (HMAC-SHA256 of `mp3converter "
        "download links`), so changing the secret also ends every link given out.",
    .min = 10'000};

}  // namespace mp3c::gateway::settings
