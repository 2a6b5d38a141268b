#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mp3c/http.hpp"

// A ZIP archive of many files, streamed (GET /jobs.zip): stored (MP3 does not compress), each entry's bytes read from
// its source when its turn comes and never held, its CRC-32 written after it in a data descriptor. The exact length is
// known before the first byte, so the response has a Content-Length.
namespace mp3c::gateway {

struct ZipEntry {
    std::string name;         // UTF-8, already unique (unique_entry_names), no directories
    uint64_t size = 0;        // exact number of bytes open() will yield
    int64_t modified_ms = 0;  // Unix ms (UTC); written as DOS date/time, clamped to 1980..2107
    // Called when the entry's turn comes, one entry at a time (never for a HEAD request, which reads nothing).
    std::function<std::unique_ptr<http::BodySource>()> open;
};

struct ZipOptions {
    // Tests: ZIP64 records for every entry and the end of the archive, as if every size and offset overflowed.
    bool force_zip64 = false;
};

class ZipStream final : public http::BodySource {
  public:
    // Throws std::invalid_argument for a name longer than 65535 bytes (the format's limit).
    explicit ZipStream(std::vector<ZipEntry> entries, ZipOptions options = {});

    // The exact size of the whole archive, known before the first byte.
    uint64_t length() const { return length_; }
    // Fills the buffer as far as the archive goes, across entries. Throws std::runtime_error when an entry yields
    // fewer or more bytes than declared or its open() returns nullptr: the archive cannot be finished honestly.
    size_t read(char* buffer, size_t size) override;

  private:
    // Where an entry goes and how it is written, decided upfront (from sizes and names only) so that length() is exact.
    struct Layout {
        uint64_t offset = 0;            // of its local header
        bool zip64 = false;             // ZIP64 extra field in the local header, 8-byte sizes in the data descriptor
        bool size_overflows = false;    // the central directory's sizes are 0xFFFFFFFF and in its ZIP64 extra field
        bool offset_overflows = false;  // likewise the local header offset
        uint16_t dos_time = 0;
        uint16_t dos_date = 0;
    };

    void start_entry();
    void finish_entry();
    void start_trailer();
    [[noreturn]] void fail(const std::string& what);

    std::vector<ZipEntry> entries_;
    std::vector<Layout> layout_;
    ZipOptions options_;
    uint64_t central_offset_ = 0;
    uint64_t central_size_ = 0;
    bool zip64_end_ = false;  // a ZIP64 end of central directory record and its locator before the classic one
    uint64_t length_ = 0;

    // Where the stream is: the entry being read (entries_.size() once they are all done), its source and what is left
    // of it, and the header bytes waiting to be copied out.
    size_t current_ = 0;
    std::unique_ptr<http::BodySource> source_;
    uint64_t remaining_ = 0;
    uint32_t crc_ = 0;
    std::string pending_;
    size_t pending_at_ = 0;
    std::string central_;  // the central directory so far, one record per finished entry (~100 bytes each)
    bool trailer_started_ = false;
    bool failed_ = false;
};

// Names fit for one archive: '/', '\\' and control characters become '_' (so do "." and "..", and the non-ASCII bytes
// of a name that is not UTF-8), an empty name becomes "audio.mp3", and a name already taken, compared
// case-insensitively (ASCII: archives are unpacked onto case-insensitive file systems too), gets " (2)", " (3)"...
// before its extension: "a.mp3", "a.mp3", "A.mp3", "b.mp3" -> "a.mp3", "a (2).mp3", "A (3).mp3", "b.mp3".
std::vector<std::string> unique_entry_names(const std::vector<std::string>& names);

}  // namespace mp3c::gateway
