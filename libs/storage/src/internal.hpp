#pragma once

// Helpers shared by the two stores; not part of the public API.

#include <sodium.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mp3c/crypto.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::storage::detail {

std::unique_ptr<BlobStore> open_file_store(const std::string& root, const std::string& bucket);
std::unique_ptr<BlobStore> open_gridfs_store(const std::string& url, const std::string& bucket);

// crypto::sha256 is one-shot; blobs are hashed as they stream past.
class Sha256Stream {
  public:
    Sha256Stream() {
        crypto::init();
        crypto_hash_sha256_init(&state_);
    }
    void update(std::string_view bytes) {
        crypto_hash_sha256_update(&state_, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    }
    // Call once.
    std::string hex_digest() {
        std::string digest(crypto_hash_sha256_BYTES, '\0');
        crypto_hash_sha256_final(&state_, reinterpret_cast<unsigned char*>(digest.data()));
        return crypto::to_hex(digest);
    }

  private:
    crypto_hash_sha256_state state_;
};

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
