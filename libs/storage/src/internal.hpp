#pragma once

// Helpers shared by the two stores; not part of the public API.

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mp3c/crypto.hpp"
#include "mp3c/sha256.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::storage::detail {

std::unique_ptr<BlobStore> open_file_store(const std::string& root, const std::string& bucket);
std::unique_ptr<BlobStore> open_gridfs_store(const std::string& url, const std::string& bucket);
// The URL the GridFS store's client uses: the caller's, with its defaults added (timeouts; on a replica set, majority
// and journaled writes unless the URL sets `w`). Throws Error when it is not a MongoDB URL.
std::unique_ptr<struct _mongoc_uri_t, void (*)(struct _mongoc_uri_t*)> gridfs_client_uri(const std::string& url);

// Blobs are hashed as they stream past (with the CPU's SHA extensions where it has them: every uploaded byte passes
// here).
using Sha256Stream = crypto::Sha256;

inline int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Client-supplied text ends up in JSON and BSON documents, which both need valid UTF-8 and (for C strings) no NUL:
// replace invalid sequences with U+FFFD and drop NULs, so that what commit() returns equals what stat() reads back.
inline std::string clean_text(std::string_view text) {
    std::string without_nul;
    without_nul.reserve(text.size());
    for (char c : text) {
        if (c != '\0') without_nul.push_back(c);
    }
    auto encoded = nlohmann::json(without_nul).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return nlohmann::json::parse(encoded).get<std::string>();
}

inline NewBlob clean(const NewBlob& blob) {
    NewBlob out;
    if (blob.id && !is_valid_id(*blob.id)) throw Error("invalid blob id: " + *blob.id);
    out.id = blob.id;
    out.owner = clean_text(blob.owner);
    out.filename = clean_text(blob.filename);
    out.content_type = clean_text(blob.content_type);
    return out;
}

// Buckets become a directory name or a database name: keep them to a safe alphabet.
inline bool is_valid_bucket(std::string_view bucket) {
    if (bucket.empty() || bucket.size() > 64) return false;
    for (char c : bucket) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace mp3c::storage::detail
