#pragma once

// Auth's own settings (besides the HTTP server's, MariaDB's, JWT_SECRET and LOG_LEVEL).
#include "mp3c/config.hpp"

namespace mp3c::auth::settings {

using config::Kind;
using config::Setting;

inline constexpr Setting kTokenTtl{.name = "TOKEN_TTL",
                                   .kind = Kind::duration,
                                   .fallback = "24h",
                                   .help = "Lifetime of issued tokens.",
                                   .min = 60'000};
inline constexpr Setting kAllowRegistration{.name = "ALLOW_REGISTRATION",
                                            .kind = Kind::boolean,
                                            .fallback = "false",
                                            .help = "Enables `POST /register`. When off, it answers 404."};
inline constexpr Setting kMaxFailuresPerAccount{
    .name = "LOGIN_MAX_FAILURES_PER_ACCOUNT",
    .kind = Kind::integer,
    .fallback = "5",
    .help = "Failed logins for one account within the window before it gets 429.",
    .min = 1,
    .max = 1'000'000};
inline constexpr Setting kMaxFailuresPerClient{
    .name = "LOGIN_MAX_FAILURES_PER_CLIENT",
    .kind = Kind::integer,
    .fallback = "20",
    .help = "Failed logins from one client address within the window before it gets 429.",
    .min = 1,
    .max = 1'000'000};
inline constexpr Setting kFailureWindow{.name = "LOGIN_FAILURE_WINDOW",
                                        .kind = Kind::duration,
                                        .fallback = "15m",
                                        .help = "The sliding window for both limits.",
                                        .min = 1000};
// libsodium's interactive level (auth_config.cpp checks these against its constants).
inline constexpr Setting kHashOps{.name = "PASSWORD_HASH_OPS",
                                  .kind = Kind::integer,
                                  .fallback = "2",
                                  .help = "argon2id passes (libsodium's interactive level),",
                                  .min = 1,
                                  .max = 20};
inline constexpr Setting kHashMemory{.name = "PASSWORD_HASH_MEMORY",
                                     .kind = Kind::bytes,
                                     .fallback = "64MiB",
                                     .help = "argon2id memory per hash, a size from",
                                     .min = 8192,
                                     .max = 4.0 * (1ull << 30)};

}  // namespace mp3c::auth::settings
