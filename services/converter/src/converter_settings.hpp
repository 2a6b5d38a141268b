#pragma once

// The converter's own settings (besides RabbitMQ's, STORAGE_URL, the HTTP server's for its admin port and LOG_LEVEL).
#include "mp3c/config.hpp"

namespace mp3c::converter::settings {

using config::Kind;
using config::Setting;

inline constexpr Setting kMaxDuration{
    .name = "MAX_DURATION",
    .kind = Kind::duration,
    .fallback = "4h",
    .help =
        "Longer audio fails the job (reason `too_long`): the length the file declares is checked before "
        "converting, the audio decoded so far while converting.",
    .min = 1000};
inline constexpr Setting kMaxInputBytes{.name = "MAX_INPUT_BYTES",
                                        .kind = Kind::bytes,
                                        .fallback = "4GiB",
                                        .help = "Larger uploads fail the job at once (`too_large`). A size."};
inline constexpr Setting kMaxOutputBytes{
    .name = "MAX_OUTPUT_BYTES",
    .kind = Kind::bytes,
    .fallback = "256MiB",
    .help =
        "Largest MP3 a job may produce; a larger one fails the job (`output_too_large`). With a constant bitrate "
        "the expected size (the declared length × the bitrate) is checked before converting; in every case the "
        "bytes written are counted and the conversion stops at the limit. When the `video` message carries "
        "`max_output_bytes` (the owner's quota left; the gateway's `USER_QUOTA_BYTES`), the smaller of the two "
        "applies, and the error then says \"storage quota\". A size, more than 0."};
inline constexpr Setting kConversionTimeout{
    .name = "CONVERSION_TIMEOUT",
    .kind = Kind::duration,
    .fallback = "5m",
    .help =
        "Wall-clock time every conversion may take; past its allowance the job fails (`timeout`). The allowance is "
        "the larger of this and `CONVERSION_TIMEOUT_RATIO` × the seconds of audio decoded so far.",
    .min = 1};
inline constexpr Setting kConversionTimeoutRatio{
    .name = "CONVERSION_TIMEOUT_RATIO",
    .kind = Kind::number,
    .fallback = "0.5",
    .help =
        "Seconds of wall-clock time allowed per second of audio decoded so far (above): with the defaults, 4 hours "
        "of audio may take 2 hours. Counted on the audio actually decoded, never on the length the file declares. "
        "0 leaves only `CONVERSION_TIMEOUT`. From",
    .min = 0,
    .max = 1000};
inline constexpr Setting kMaxChannels{.name = "MAX_CHANNELS",
                                      .kind = Kind::integer,
                                      .fallback = "8",
                                      .help =
                                          "Most audio channels (8 is 7.1); more fails the job "
                                          "(`too_many_channels`). Checked on what the file declares and on every "
                                          "decoded frame.",
                                      .min = 1,
                                      .max = 64};
inline constexpr Setting kMaxSampleRate{
    .name = "MAX_SAMPLE_RATE",
    .kind = Kind::integer,
    .fallback = "192000",
    .help = "Highest sample rate in Hz; higher fails the job (`sample_rate_too_high`). Checked like `MAX_CHANNELS`.",
    .min = 8000,
    .max = 768000};
inline constexpr Setting kMaxStreams{
    .name = "MAX_STREAMS",
    .kind = Kind::integer,
    .fallback = "64",
    .help =
        "Most streams in the file, of any type (video, audio, subtitles, data); more fails the job "
        "(`too_many_streams`), also when the demuxer leaves the extra streams out silently (MPEG-TS).",
    .min = 1,
    .max = 1000};
inline constexpr Setting kMaxAttempts{
    .name = "MAX_ATTEMPTS",
    .kind = Kind::integer,
    .fallback = "5",
    .help =
        "Transient failures (storage, broker) are retried through `video.retry.5s/30s/120s` this often, then the "
        "message is dead-lettered and the job failed (`gave_up`).",
    .min = 1,
    .max = 100};
inline constexpr Setting kEncoderThreads{
    .name = "ENCODER_THREADS",
    .kind = Kind::integer,
    .fallback = "2",
    .help =
        "`2`: the MP3 encoder runs on a thread of its own beside the demuxer and decoder (about 1.3 times faster "
        "on two cores); `1`: one thread per job.",
    .min = 1,
    .max = 2};
inline constexpr Setting kKeepSource{
    .name = "KEEP_SOURCE",
    .kind = Kind::boolean,
    .fallback = "off",
    .help = "Keep the uploaded video after a successful conversion (by default it is deleted)."};
inline constexpr Setting kTmpdir{
    .name = "TMPDIR",
    .kind = Kind::text,
    .fallback = "/tmp",
    .help =
        "Where the MP3 is written before it is stored, and with a GridFS store a copy of the upload (nameless "
        "files, gone even after kill -9). Also where the worker's working directory is made at start-up (and "
        "`converter convert`'s): an empty directory (mode 0700) that is entered and removed at once, so that "
        "relative names resolve to nothing ([architecture.md](architecture.md#untrusted-media)). Made absolute."};
inline constexpr Setting kAdminPort{
    .name = "ADMIN_PORT",
    .kind = Kind::port,
    .fallback = "8081",
    .help = "`/healthz`, `/readyz`, `/metrics`. The shared HTTP variables apply to this port."};
inline constexpr Setting kShutdownGrace{
    .name = "SHUTDOWN_GRACE",
    .kind = Kind::duration,
    .fallback = "25s",
    .help = "After SIGTERM, how long the job in progress may take before it is abandoned (and redelivered)."};

}  // namespace mp3c::converter::settings
