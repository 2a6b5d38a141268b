#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "ffmpeg_io.hpp"
#include "transcoder.hpp"

// The command line's input and output: local files.
namespace mp3c::converter {

using detail::fail;
using detail::Kind;

FileInput::FileInput(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(Kind::io, "cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd_);
        fail(Kind::io, path + " is not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
}

FileInput::~FileInput() {
    if (fd_ >= 0) ::close(fd_);
}

size_t FileInput::read(uint8_t* buffer, size_t size) {
    for (;;) {
        ssize_t n = ::read(fd_, buffer, size);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) throw std::runtime_error(std::string("read: ") + std::strerror(errno));
    }
}

void FileInput::seek(uint64_t offset) {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
        throw std::runtime_error(std::string("seek: ") + std::strerror(errno));
    }
}

FileOutput::FileOutput(const std::string& path) : path_(path), temporary_(path + ".part") {
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(Kind::io, "cannot create " + temporary_ + ": " + std::strerror(errno));
}

FileOutput::~FileOutput() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(temporary_.c_str());  // never committed: leave nothing behind
    }
}

void FileOutput::write(const uint8_t* data, size_t size) {
    while (size > 0) {
        ssize_t n = ::write(fd_, data, size);
        if (n < 0) {
            int error = errno;
            if (error == EINTR) continue;
            throw std::system_error(error, std::generic_category(), "write " + temporary_);
        }
        data += n;
        size -= static_cast<size_t>(n);
    }
}

void FileOutput::seek(uint64_t offset) {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
        throw std::runtime_error("seek " + temporary_ + ": " + std::strerror(errno));
    }
}

bool FileOutput::restart() { return ::ftruncate(fd_, 0) == 0 && ::lseek(fd_, 0, SEEK_SET) == 0; }

void FileOutput::commit() {
    // The first failure's errno, kept before close and unlink can change it; the descriptor is closed either way.
    int error = ::fsync(fd_) == 0 ? 0 : errno;
    if (::close(fd_) != 0 && error == 0) error = errno;
    fd_ = -1;
    if (error != 0) {
        ::unlink(temporary_.c_str());
        throw ConversionError(Kind::io, "cannot write " + temporary_ + ": " + std::strerror(error),
                              error == ENOSPC || error == EDQUOT);
    }
    if (::rename(temporary_.c_str(), path_.c_str()) != 0) {
        error = errno;
        ::unlink(temporary_.c_str());
        fail(Kind::io, "cannot rename to " + path_ + ": " + std::strerror(error));
    }
}

}  // namespace mp3c::converter
