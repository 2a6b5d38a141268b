#pragma once

// The HTTP server's settings (every service): read by server_options_from_env.
#include "mp3c/config.hpp"

namespace mp3c::http::settings {

using config::Kind;
using config::Setting;

inline constexpr Setting kPort{
    .name = "PORT",
    .kind = Kind::port,
    .help =
        "TCP port to listen on, 0 to 65535. 0 picks any free port. The converter and the notification service also "
        "read `ADMIN_PORT`, which wins when both are set.",
    .shown_default = "service's own (auth: `5000`, gateway: `8080`, converter: `8081`, notification: `8082`)"};
inline constexpr Setting kBindAddress{
    .name = "BIND_ADDRESS", .kind = Kind::text, .fallback = "0.0.0.0", .help = "IP address to listen on."};
inline constexpr Setting kIoThreads{.name = "HTTP_IO_THREADS",
                                    .kind = Kind::integer,
                                    .fallback = "2",
                                    .help = "Threads for network I/O,",
                                    .min = 1,
                                    .max = 64};
inline constexpr Setting kWorkerThreads{.name = "HTTP_WORKER_THREADS",
                                        .kind = Kind::integer,
                                        .fallback = "8",
                                        .help = "Threads that run request handlers (which may block),",
                                        .min = 1,
                                        .max = 256};
inline constexpr Setting kMaxHeaderBytes{.name = "HTTP_MAX_HEADER_BYTES",
                                         .kind = Kind::bytes,
                                         .fallback = "16KiB",
                                         .help = "Largest request header; larger gets 431. A size from",
                                         .min = 1024,
                                         .max = 1 << 20};
inline constexpr Setting kIdleTimeout{.name = "HTTP_IDLE_TIMEOUT",
                                      .kind = Kind::duration,
                                      .fallback = "60s",
                                      .help = "How long a keep-alive connection may wait for its next request.",
                                      .min = 100};
inline constexpr Setting kHeaderTimeout{.name = "HTTP_HEADER_TIMEOUT",
                                        .kind = Kind::duration,
                                        .fallback = "10s",
                                        .help =
                                            "Time allowed to receive a request header. A new connection must also "
                                            "send its first byte within this time.",
                                        .min = 100};
inline constexpr Setting kBodyTimeout{
    .name = "HTTP_BODY_TIMEOUT",
    .kind = Kind::duration,
    .fallback = "60s",
    .help =
        "Time allowed to receive a request body; slower gets 408. For a streamed body (the gateway's `POST /upload`) "
        "it bounds each piece of up to 256 KiB instead of the whole body, and a body that stalls is dropped without "
        "an answer.",
    .min = 100};
inline constexpr Setting kWriteTimeout{.name = "HTTP_WRITE_TIMEOUT",
                                       .kind = Kind::duration,
                                       .fallback = "60s",
                                       .help =
                                           "Time allowed to send a response; for streamed responses (downloads) and "
                                           "event streams, each piece of it.",
                                       .min = 100};
inline constexpr Setting kDrainDelay{
    .name = "SHUTDOWN_DRAIN_DELAY",
    .kind = Kind::duration,
    .fallback = "0",
    .help = "After SIGTERM, how long `/readyz` answers 503 before the listener closes."};
inline constexpr Setting kShutdownGrace{.name = "SHUTDOWN_GRACE",
                                        .kind = Kind::duration,
                                        .fallback = "20s",
                                        .help =
                                            "After the listener closes, how long requests in flight may take "
                                            "before their connections are closed."};
inline constexpr Setting kTrustedProxies{
    .name = "TRUSTED_PROXIES",
    .kind = Kind::text,
    .help =
        "Comma-separated IP addresses or CIDR networks (`10.0.0.0/8`, `::1`) whose `X-Forwarded-For` header is "
        "believed. The client address (logs, login throttling) is then the right-most forwarded address that is "
        "not itself a trusted proxy."};

inline constexpr Setting kAll[] = {kPort,           kBindAddress, kIoThreads,     kWorkerThreads,
                                   kMaxHeaderBytes, kIdleTimeout, kHeaderTimeout, kBodyTimeout,
                                   kWriteTimeout,   kDrainDelay,  kShutdownGrace, kTrustedProxies};

}  // namespace mp3c::http::settings
