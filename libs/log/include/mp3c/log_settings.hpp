#pragma once

#include "mp3c/config.hpp"

namespace mp3c::log::settings {

inline constexpr config::Setting kLogLevel{
    .name = "LOG_LEVEL",
    .kind = config::Kind::text,
    .fallback = "info",
    .help =
        "`debug`, `info`, `warn` (or `warning`), `error`. At `debug`, probe requests (`/healthz`, `/readyz`, "
        "`/metrics`) appear in the access log."};

}  // namespace mp3c::log::settings
