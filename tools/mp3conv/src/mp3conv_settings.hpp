#pragma once

#include "mp3c/config.hpp"

namespace mp3c::client::settings {

inline constexpr config::Setting kServer{
    .name = "MP3CONV_SERVER",
    .kind = config::Kind::text,
    .fallback = "http://127.0.0.1:8080",
    .help = "The gateway, when `--server` is not given. Trailing slashes are dropped."};
inline constexpr config::Setting kConfigDir{
    .name = "MP3CONV_CONFIG_DIR",
    .kind = config::Kind::text,
    .help = "Where the sessions are kept (`sessions.json`, mode 0600; missing directories are created with mode 0700).",
    .shown_default = "`$XDG_CONFIG_HOME/mp3conv`, else `$HOME/.config/mp3conv`"};

}  // namespace mp3c::client::settings
