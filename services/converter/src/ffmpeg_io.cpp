#include "ffmpeg_io.hpp"

#include <algorithm>
#include <cerrno>
#include <exception>

namespace mp3c::converter::detail {

std::string av_error(int code) {
    char text[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, text, sizeof text);
    return text;
}

[[noreturn]] void fail(Kind kind, const std::string& reason) { throw ConversionError(kind, reason); }

void check(int code, Kind kind, const std::string& what) {
    if (code < 0) fail(kind, what + ": " + av_error(code));
}

int InputBridge::read(void* opaque, uint8_t* buffer, int size) {
    auto* self = static_cast<InputBridge*>(opaque);
    if (self->watchdog->expired()) return AVERROR_EXIT;
    try {
        size_t n = self->input->read(buffer, static_cast<size_t>(size));
        if (n == 0) return AVERROR_EOF;
        self->position += n;
        return static_cast<int>(n);
    } catch (const std::exception& e) {
        self->error = e.what();
        self->no_space = ConversionError::means_no_space(e);  // a spooled upload's local copy filled its disk
        return AVERROR(EIO);
    }
}

int64_t InputBridge::seek(void* opaque, int64_t offset, int whence) {
    auto* self = static_cast<InputBridge*>(opaque);
    uint64_t size = self->input->size();
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) return static_cast<int64_t>(size);
    int64_t target;
    switch (whence) {
        case SEEK_SET:
            target = offset;
            break;
        case SEEK_CUR:
            target = static_cast<int64_t>(self->position) + offset;
            break;
        case SEEK_END:
            target = static_cast<int64_t>(size) + offset;
            break;
        default:
            return AVERROR(EINVAL);
    }
    if (target < 0 || static_cast<uint64_t>(target) > size) return AVERROR(EINVAL);
    try {
        self->input->seek(static_cast<uint64_t>(target));
    } catch (const std::exception& e) {
        self->error = e.what();
        self->no_space = ConversionError::means_no_space(e);
        return AVERROR(EIO);
    }
    self->position = static_cast<uint64_t>(target);
    return target;
}

int OutputBridge::write(void* opaque, uint8_t* data, int size) {
    auto* self = static_cast<OutputBridge*>(opaque);
    if (std::max(self->size, self->position + static_cast<uint64_t>(size)) > self->limit) {
        self->over_limit = true;
        return AVERROR(EFBIG);
    }
    try {
        self->output->write(data, static_cast<size_t>(size));
        self->position += static_cast<uint64_t>(size);
        self->size = std::max(self->size, self->position);
        return size;
    } catch (const std::exception& e) {
        self->error = e.what();
        self->no_space = ConversionError::means_no_space(e);
        return AVERROR(EIO);
    }
}

int64_t OutputBridge::seek(void* opaque, int64_t offset, int whence) {
    auto* self = static_cast<OutputBridge*>(opaque);
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) return static_cast<int64_t>(self->size);
    int64_t target = whence == SEEK_SET   ? offset
                     : whence == SEEK_CUR ? static_cast<int64_t>(self->position) + offset
                     : whence == SEEK_END ? static_cast<int64_t>(self->size) + offset
                                          : -1;
    if (target < 0) return AVERROR(EINVAL);
    try {
        self->output->seek(static_cast<uint64_t>(target));
    } catch (const std::exception& e) {
        self->error = e.what();
        self->no_space = ConversionError::means_no_space(e);
        return AVERROR(EIO);
    }
    self->position = static_cast<uint64_t>(target);
    return target;
}

[[noreturn]] void InputBridge::fail_reading() const {
    throw ConversionError(Kind::io, "reading the upload: " + error, no_space);
}

[[noreturn]] void OutputBridge::fail_storing() const {
    throw ConversionError(Kind::io, "storing the MP3: " + error, no_space);
}

std::unique_ptr<AVIOContext, IoContextFree> make_io(void* opaque, bool writable, int (*read)(void*, uint8_t*, int),
                                                    int (*write)(void*, uint8_t*, int),
                                                    int64_t (*seek)(void*, int64_t, int)) {
    auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBufferSize));
    if (buffer == nullptr) fail(Kind::internal, "out of memory");
    AVIOContext* io = avio_alloc_context(buffer, kIoBufferSize, writable ? 1 : 0, opaque, read, write, seek);
    if (io == nullptr) {
        av_free(buffer);
        fail(Kind::internal, "out of memory");
    }
    return std::unique_ptr<AVIOContext, IoContextFree>(io);
}

}  // namespace mp3c::converter::detail
