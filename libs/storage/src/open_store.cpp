#include <string>

#include "internal.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::storage {

std::unique_ptr<BlobStore> open_store(const std::string& url, const std::string& bucket) {
    constexpr std::string_view file_scheme = "file://";
    if (url.starts_with(file_scheme)) return detail::open_file_store(url.substr(file_scheme.size()), bucket);
    // mongodb+srv:// is the same driver with hosts from DNS (Atlas and similar clusters).
    if (url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
        return detail::open_gridfs_store(url, bucket);
    }
    throw Error("STORAGE_URL must start with file:// or mongodb://");
}

}  // namespace mp3c::storage
