#pragma once

#include "mp3c/config.hpp"

namespace mp3c::storage::settings {

inline constexpr config::Setting kStorageUrl{
    .name = "STORAGE_URL",
    .kind = config::Kind::text,
    .fallback = "file:///var/lib/mp3converter/storage",
    .help =
        "Where uploads and MP3s are kept. `file:///absolute/path`: the directories `path/videos` and `path/mp3s`, "
        "created at start-up (if that fails, the gateway exits with status 1); files are written with O_DIRECT where "
        "the filesystem allows it (no page cache for data that is fsynced and not read back soon), "
        "`file:///path?direct_io=off` writes through the page cache instead. `mongodb://...`: GridFS in the databases "
        "`videos` and `mp3s` (the database in the URL only selects where to authenticate); a 5 s server selection "
        "timeout unless the URL sets `serverSelectionTimeoutMS`. Anything else is a configuration error; so is "
        "`mongodb+srv://`, although the storage library itself would accept it."};

}  // namespace mp3c::storage::settings
