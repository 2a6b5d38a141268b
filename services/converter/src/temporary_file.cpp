#include "temporary_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace mp3c::converter {

namespace {
[[noreturn]] void io_failure(const std::string& what) {
    int error = errno;
    throw ConversionError(ConversionError::Kind::io, what + ": " + std::strerror(error),
                          error == ENOSPC || error == EDQUOT);
}
}  // namespace

std::string enter_empty_working_directory(const std::string& directory) {
    std::string path = directory + "/mp3c-cwd-XXXXXX";
    if (::mkdtemp(path.data()) == nullptr) {
        throw std::runtime_error("cannot create a working directory in " + directory + ": " + std::strerror(errno));
    }
    if (::chdir(path.c_str()) != 0) {
        int error = errno;
        ::rmdir(path.c_str());
        throw std::runtime_error("cannot enter " + path + ": " + std::strerror(error));
    }
    if (::rmdir(path.c_str()) != 0) {
        throw std::runtime_error("cannot remove the working directory " + path + ": " + std::strerror(errno));
    }
    return path;
}

TemporaryFile::TemporaryFile(const std::string& directory) {
    std::string path = directory + "/mp3c-XXXXXX";
    fd_ = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd_ < 0) io_failure("cannot create a temporary file in " + directory);
    ::unlink(path.c_str());  // nameless from here on: nothing to clean up, whatever happens to the process
}

TemporaryFile::~TemporaryFile() { ::close(fd_); }

void TemporaryFile::write(const uint8_t* data, size_t size) {
    write_at(position_, data, size);
    position_ += size;
}

void TemporaryFile::seek(uint64_t offset) { position_ = offset; }

bool TemporaryFile::restart() {
    if (::ftruncate(fd_, 0) != 0) return false;
    position_ = size_ = 0;
    return true;
}

void TemporaryFile::write_at(uint64_t offset, const uint8_t* data, size_t size) {
    while (size > 0) {
        ssize_t n = ::pwrite(fd_, data, size, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            io_failure("writing a temporary file");
        }
        data += n;
        offset += static_cast<uint64_t>(n);
        size -= static_cast<size_t>(n);
    }
    size_ = std::max(size_, offset);
}

size_t TemporaryFile::read_at(uint64_t offset, uint8_t* buffer, size_t size) const {
    for (;;) {
        ssize_t n = ::pread(fd_, buffer, size, static_cast<off_t>(offset));
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) io_failure("reading a temporary file");
    }
}

SpooledInput::SpooledInput(Source source, uint64_t size, const std::string& temporary_directory)
    : source_(std::move(source)), size_(size), spool_(temporary_directory) {}

size_t SpooledInput::read_source(uint8_t* buffer, size_t size) {
    size_t n = source_(buffer, size);
    if (n > 0) spool_.write_at(spool_.size(), buffer, n);
    return n;
}

size_t SpooledInput::read(uint8_t* buffer, size_t size) {
    if (position_ > spool_.size()) return 0;  // past the end of a source shorter than it claimed
    size_t n = position_ < spool_.size() ? spool_.read_at(position_, buffer, size) : read_source(buffer, size);
    position_ += n;
    return n;
}

void SpooledInput::seek(uint64_t offset) {
    // Forward past what is spooled: read on (and keep it, a later seek may come back to it).
    std::vector<uint8_t> chunk;
    while (spool_.size() < offset) {
        chunk.resize(256 * 1024);
        if (read_source(chunk.data(), static_cast<size_t>(std::min<uint64_t>(chunk.size(), offset - spool_.size()))) ==
            0) {
            break;  // the source is shorter than it claimed: reads past here return 0
        }
    }
    position_ = offset;
}

}  // namespace mp3c::converter
