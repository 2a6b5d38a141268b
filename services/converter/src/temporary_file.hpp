#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "transcoder.hpp"

namespace mp3c::converter {

// Makes the process's working directory an empty directory of its own that no longer exists: created in `directory`
// (mode 0700), entered and removed at once. A relative name resolved by anything in the process (FFmpeg resolving a
// path inside an upload, say) then finds nothing and can create nothing, and no directory is left behind even after
// a kill -9. Returns the directory's former path, for the log. Throws std::runtime_error.
std::string enter_empty_working_directory(const std::string& directory);

// A scratch file with no name: created in `directory` and unlinked at once, so it vanishes with its descriptor even
// when the process is killed (-9) mid-job. As a MediaOutput it takes the MP3 while the muxer seeks back to write the
// LAME header; read_at() reads it back for storing.
class TemporaryFile : public MediaOutput {
  public:
    explicit TemporaryFile(const std::string& directory);  // throws ConversionError(io)
    ~TemporaryFile() override;
    TemporaryFile(const TemporaryFile&) = delete;
    TemporaryFile& operator=(const TemporaryFile&) = delete;

    void write(const uint8_t* data, size_t size) override;  // at the current position
    bool seekable() const override { return true; }
    void seek(uint64_t offset) override;
    bool restart() override;
    void write_at(uint64_t offset, const uint8_t* data, size_t size);
    size_t read_at(uint64_t offset, uint8_t* buffer, size_t size) const;  // 0 at the end
    uint64_t size() const { return size_; }

  private:
    int fd_ = -1;
    uint64_t position_ = 0;
    uint64_t size_ = 0;
};

// A MediaInput over a source that can only be read front to back (GridFS downloads cannot seek). What is read is
// kept in a TemporaryFile, so seeking back (an MP4 whose index sits at the end makes the demuxer jump to the end and
// back) reads the copy and seeking forward reads on. Memory stays flat; the disk holds at most the whole input.
class SpooledInput : public MediaInput {
  public:
    using Source = std::function<size_t(uint8_t* buffer, size_t size)>;  // 0 at the end; throws on failure
    SpooledInput(Source source, uint64_t size, const std::string& temporary_directory);
    size_t read(uint8_t* buffer, size_t size) override;
    void seek(uint64_t offset) override;
    uint64_t size() const override { return size_; }
    uint64_t spooled() const { return spool_.size(); }

  private:
    size_t read_source(uint8_t* buffer, size_t size);

    Source source_;
    uint64_t size_;
    TemporaryFile spool_;
    uint64_t position_ = 0;
};

}  // namespace mp3c::converter
