#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "mp3c/result.hpp"

// Blob storage for videos and MP3s. Two implementations behind one interface, chosen by STORAGE_URL:
//   file:///path     a directory tree on local disk (the default on one machine)
//   mongodb://...    MongoDB GridFS through libmongoc's bucket API (clusters; the original's design)
// Ids are 24 lower-case hex characters, like MongoDB ObjectIds (the original's video_fid / mp3_fid).
namespace mp3c::storage {

// An infrastructure failure (disk full, MongoDB unreachable). "Not found" is not an error: see the return types.
class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& what, bool no_space = false) : std::runtime_error(what), no_space_(no_space) {}
    // The storage is full (ENOSPC, EDQUOT): worth trying again once space is freed, not a broken store.
    bool no_space() const { return no_space_; }

  private:
    bool no_space_ = false;
};

struct BlobInfo {
    std::string id;
    uint64_t size = 0;
    std::string sha256;  // hex
    std::string content_type;
    std::string filename;    // the original file name, as the client sent it (display only, never a path)
    std::string owner;       // user id
    int64_t created_ms = 0;  // Unix time in milliseconds
};

struct NewBlob {
    std::string owner;
    std::string filename;
    std::string content_type = "application/octet-stream";
    // A chosen id instead of a new one, so that a retried job writes the same blob (its MP3 is named after the job).
    // Committing replaces a blob of the same id in the file store; in GridFS remove() it first.
    std::optional<std::string> id;
};

// A blob being written. Nothing is visible to readers until commit(); abort() (or destroying an uncommitted writer)
// leaves nothing behind.
class BlobWriter {
  public:
    virtual ~BlobWriter() = default;
    virtual const std::string& id() const = 0;
    virtual uint64_t bytes_written() const = 0;
    virtual void write(std::string_view bytes) = 0;  // throws Error
    virtual BlobInfo commit() = 0;                   // throws Error; afterwards the blob is durable and visible
    virtual void abort() noexcept = 0;
};

// Reads a blob, or a byte range of it, sequentially.
class BlobReader {
  public:
    virtual ~BlobReader() = default;
    virtual const BlobInfo& info() const = 0;
    virtual uint64_t remaining() const = 0;              // bytes left in the requested range
    virtual size_t read(char* buffer, size_t size) = 0;  // 0 at the end of the range; throws Error
};

// A store outlives every reader and writer it made (GridFS: they hold clients of its pool).
class BlobStore {
  public:
    virtual ~BlobStore() = default;
    virtual std::unique_ptr<BlobWriter> create(const NewBlob& blob) = 0;
    // nullptr when there is no such blob. A range past the end is clamped to the blob.
    virtual std::unique_ptr<BlobReader> open(const std::string& id, uint64_t offset = 0,
                                             std::optional<uint64_t> length = std::nullopt) = 0;
    virtual std::optional<BlobInfo> stat(const std::string& id) = 0;
    // false when there was no such blob.
    virtual bool remove(const std::string& id) = 0;
    // nullopt when usable, else the reason (for /readyz).
    virtual Check check() = 0;
    virtual std::string describe() const = 0;
    // Deletes what uploads cut short left behind (a process killed mid-upload cannot abort): partial files or
    // chunks that nothing has written for `idle`. Returns how many partial files (the file store) or uploads (GridFS)
    // it removed; throws Error.
    virtual size_t remove_abandoned(std::chrono::seconds idle) = 0;
    // Whether open() at an offset is cheap. GridFS starts at the right chunk, but each open() is a pooled client and
    // a query (a round trip or more), so a reader that jumps about (FFmpeg probing) should keep a local copy instead.
    virtual bool seeks_cheaply() const { return true; }
};

bool is_valid_id(std::string_view id);
// A new ObjectId-shaped id: 4 bytes of seconds since the epoch, 5 random bytes, a 3-byte counter.
std::string new_id();

// Opens the store for one bucket ("videos" or "mp3s"): file:///path → directory path/<bucket>; mongodb://... →
// the database named after the bucket (as the original: databases videos and mp3s), GridFS bucket "fs".
// Throws Error for an unusable URL.
std::unique_ptr<BlobStore> open_store(const std::string& url, const std::string& bucket);

}  // namespace mp3c::storage
