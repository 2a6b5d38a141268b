#pragma once

#include "mp3c/config.hpp"

namespace mp3c::token::settings {

inline constexpr config::Setting kJwtSecret{
    .name = "JWT_SECRET",
    .kind = config::Kind::secret,
    .help =
        "The HS256 key auth signs tokens with, at least 32 characters. The gateway verifies tokens itself, so it "
        "must have the same secret as auth.",
    .required = true};

}  // namespace mp3c::token::settings
