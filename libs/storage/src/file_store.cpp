// The file:// store: one directory per bucket.
//
//   <dir>/<id[0..1]>/<id>        the bytes
//   <dir>/<id[0..1]>/<id>.json   the metadata; a blob exists only when both are there
//   <dir>/tmp/*.part             uploads in progress (swept at startup when stale)
//
// Only ids that pass is_valid_id() are ever turned into paths, so no request can name a file outside <dir>; the
// client's file name lives in the metadata only.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "internal.hpp"
#include "mp3c/c_handle.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/log.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::storage::detail {
namespace {

constexpr mode_t kDirMode = 0750;
constexpr mode_t kFileMode = 0640;
constexpr time_t kStalePartSeconds = 3600;

[[noreturn]] void throw_errno(std::string_view operation, const std::string& path, int err) {
    throw Error(std::string(operation) + " " + path + ": " + std::strerror(err), err == ENOSPC || err == EDQUOT);
}

// A file descriptor is an int, not a pointer, so it gets a small owner of its own instead of a unique_ptr.
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    // close() reports the last delayed write error on some file systems (NFS), so a commit checks it.
    void close_or_throw(const std::string& path) {
        int fd = std::exchange(fd_, -1);
        if (fd >= 0 && ::close(fd) != 0 && errno != EINTR) throw_errno("close", path, errno);
    }

  private:
    int fd_ = -1;
};

using DirPtr = CHandle<DIR, ::closedir>;

UniqueFd open_new(const std::string& path) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throw_errno("create", path, errno);
    return UniqueFd(fd);
}

// nullopt-like empty fd when the file does not exist.
UniqueFd open_existing(const std::string& path) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return UniqueFd();
        throw_errno("open", path, errno);
    }
    return UniqueFd(fd);
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("write", path, errno);
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

void fsync_or_throw(int fd, const std::string& path) {
    if (::fsync(fd) != 0) throw_errno("fsync", path, errno);
}

// A rename is durable only once the directory holding the new name is synced.
void fsync_dir(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw_errno("open", path, errno);
    fsync_or_throw(fd.get(), path);
}

void make_dir(const std::string& path) {
    if (::mkdir(path.c_str(), kDirMode) == 0) return;
    int err = errno;
    // An existing directory is fine, even one whose parent we may not write (mkdir -p over /var/lib).
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return;
    throw_errno("mkdir", path, err == EEXIST ? ENOTDIR : err);
}

void make_dirs(const std::string& path) {
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
        make_dir(path.substr(0, slash));
    }
    make_dir(path);
}

std::string read_all(int fd, const std::string& path) {
    std::string out;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("read", path, errno);
        }
        if (n == 0) return out;
        out.append(buffer, static_cast<size_t>(n));
    }
}

bool unlink_quietly(const std::string& path) noexcept { return ::unlink(path.c_str()) == 0; }

nlohmann::json to_json(const BlobInfo& info) {
    return {{"id", info.id},
            {"size", info.size},
            {"sha256", info.sha256},
            {"content_type", info.content_type},
            {"filename", info.filename},
            {"owner", info.owner},
            {"created_ms", info.created_ms}};
}

BlobInfo from_json(const nlohmann::json& j) {
    BlobInfo info;
    info.id = j.at("id").get<std::string>();
    info.size = j.at("size").get<uint64_t>();
    info.sha256 = j.at("sha256").get<std::string>();
    info.content_type = j.at("content_type").get<std::string>();
    info.filename = j.at("filename").get<std::string>();
    info.owner = j.at("owner").get<std::string>();
    info.created_ms = j.at("created_ms").get<int64_t>();
    return info;
}

// Where everything of one bucket lives.
struct Layout {
    std::string dir;
    bool direct_io = true;  // file:///path?direct_io=off turns it off

    std::string tmp() const { return dir + "/tmp"; }
    std::string fanout(const std::string& id) const { return dir + "/" + id.substr(0, 2); }
    std::string data(const std::string& id) const { return fanout(id) + "/" + id; }
    std::string meta(const std::string& id) const { return fanout(id) + "/" + id + ".json"; }
};

// The data file of a blob being written. Where the filesystem allows it the bytes go with O_DIRECT, from an aligned
// staging buffer straight to the device: an upload is written once, fsynced and not read back soon, so the page
// cache only costs (on this class of machine filling it from cold memory took about as long as the disk write
// itself: dd of 1 GiB, 1.9 GB/s direct against 626 MB/s buffered + fsync). Filesystems without O_DIRECT, and stores
// opened with ?direct_io=off, get ordinary writes with early writeback.
class DataFile {
  public:
    DataFile(const std::string& path, bool try_direct) : path_(path), fd_(open_new(path)) {
        int flags = ::fcntl(fd_.get(), F_GETFL);
        direct_ = try_direct && flags >= 0 && ::fcntl(fd_.get(), F_SETFL, flags | O_DIRECT) == 0;
        if (direct_) {
            stage_.reset(static_cast<char*>(std::aligned_alloc(kAlign, kStageBytes)));
            if (!stage_) throw Error("out of memory for " + path);
        }
    }

    bool direct() const { return direct_; }

    void write(std::string_view bytes) {
        if (!direct_) {
            write_all(fd_.get(), bytes, path_);
            written_ += bytes.size();
            // Start writing back what has piled up, without waiting for it: the fsync at the end then has little
            // left to do, instead of the whole file at once while the client waits for its answer.
            if (written_ - flushed_ >= kWritebackBytes) {
                ::sync_file_range(fd_.get(), static_cast<off_t>(flushed_), static_cast<off_t>(written_ - flushed_),
                                  SYNC_FILE_RANGE_WRITE);
                flushed_ = written_;
            }
            return;
        }
        while (!bytes.empty()) {
            size_t n = std::min(bytes.size(), kStageBytes - staged_);
            std::memcpy(stage_.get() + staged_, bytes.data(), n);
            staged_ += n;
            bytes.remove_prefix(n);
            if (staged_ == kStageBytes) flush_stage(kStageBytes);
        }
    }

    // Everything on the device and the file closed.
    void finish() {
        if (direct_ && staged_ > 0) {
            // O_DIRECT writes whole blocks: pad the tail with zeros, then cut the file back to its size.
            uint64_t size = written_ + staged_;
            size_t padded = (staged_ + kAlign - 1) / kAlign * kAlign;
            std::memset(stage_.get() + staged_, 0, padded - staged_);
            flush_stage(padded);
            if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) throw_errno("truncate", path_, errno);
            written_ = size;
        }
        fsync_or_throw(fd_.get(), path_);
        fd_.close_or_throw(path_);
    }

    void close() { fd_.reset(); }

  private:
    struct Free {
        void operator()(char* p) const { std::free(p); }
    };

    void flush_stage(size_t length) {
        const char* data = stage_.get();
        size_t left = length;
        while (left > 0) {
            ssize_t n = ::pwrite(fd_.get(), data, left, static_cast<off_t>(written_));
            if (n < 0) {
                if (errno == EINTR) continue;
                throw_errno("write", path_, errno);
            }
            data += n;
            left -= static_cast<size_t>(n);
            written_ += static_cast<uint64_t>(n);
        }
        staged_ = 0;
    }

    static constexpr size_t kAlign = 4096;  // a multiple of every logical block size in use
    static constexpr size_t kStageBytes = 1 << 20;
    static constexpr uint64_t kWritebackBytes = 8 << 20;

    std::string path_;
    UniqueFd fd_;
    bool direct_ = false;
    std::unique_ptr<char, Free> stage_;
    size_t staged_ = 0;     // bytes in stage_, not yet written
    uint64_t written_ = 0;  // bytes in the file
    uint64_t flushed_ = 0;  // bytes handed to writeback (buffered mode)
};

class FileWriter final : public BlobWriter {
  public:
    FileWriter(Layout layout, NewBlob blob)
        : layout_(std::move(layout)), blob_(std::move(blob)), id_(blob_.id.value_or(new_id())) {
        std::string base = layout_.tmp() + "/" + id_ + "." + crypto::random_hex(8);
        tmp_data_ = base + ".part";
        tmp_meta_ = base + ".json.part";
        data_.emplace(tmp_data_, layout_.direct_io);
        data_created_ = true;
    }
    ~FileWriter() override { abort(); }

    const std::string& id() const override { return id_; }
    uint64_t bytes_written() const override { return size_; }

    void write(std::string_view bytes) override {
        ensure_writable();
        // A large chunk is hashed on another core while it is written: hashing and copying into the page cache cost
        // about the same, and an upload would otherwise wait for one after the other.
        std::future<void> hashing;
        if (bytes.size() >= kParallelHashBytes) {
            hashing = std::async(std::launch::async, [this, bytes] { hash_.update(bytes); });
        }
        try {
            data_->write(bytes);
        } catch (...) {
            failed_ = true;  // the file may hold part of this chunk: refuse to commit it
            if (hashing.valid()) hashing.wait();
            throw;
        }
        if (hashing.valid()) {
            hashing.get();
        } else {
            hash_.update(bytes);
        }
        size_ += bytes.size();
    }

    static constexpr size_t kParallelHashBytes = 256 * 1024;

    BlobInfo commit() override {
        ensure_writable();
        failed_ = true;  // until the end: a throw below leaves a writer that can only be aborted
        try {
            data_->finish();

            BlobInfo info;
            info.id = id_;
            info.size = size_;
            info.sha256 = hash_.hex_digest();
            info.content_type = blob_.content_type;
            info.filename = blob_.filename;
            info.owner = blob_.owner;
            info.created_ms = now_ms();

            {
                UniqueFd meta = open_new(tmp_meta_);
                meta_created_ = true;
                write_all(meta.get(), to_json(info).dump(), tmp_meta_);
                fsync_or_throw(meta.get(), tmp_meta_);
                meta.close_or_throw(tmp_meta_);
            }

            std::string fanout = layout_.fanout(id_);
            make_dir(fanout);
            // Data first, metadata last: readers look for the metadata, so the blob appears all at once.
            rename_or_throw(tmp_data_, layout_.data(id_));
            data_created_ = false;
            data_placed_ = true;
            rename_or_throw(tmp_meta_, layout_.meta(id_));
            meta_created_ = false;
            meta_placed_ = true;
            fsync_dir(fanout);

            committed_ = true;
            return info;
        } catch (...) {
            abort();
            throw;
        }
    }

    void abort() noexcept override {
        if (committed_) return;  // the blob is the caller's now: remove() it instead
        if (data_) data_->close();
        // Metadata first, as in remove(): the blob disappears before its bytes do.
        if (meta_placed_) unlink_quietly(layout_.meta(id_));
        if (data_placed_) unlink_quietly(layout_.data(id_));
        if (meta_created_) unlink_quietly(tmp_meta_);
        if (data_created_) unlink_quietly(tmp_data_);
        meta_placed_ = data_placed_ = meta_created_ = data_created_ = false;
        aborted_ = true;
    }

  private:
    void ensure_writable() const {
        if (committed_) throw Error("blob " + id_ + ": already committed");
        if (aborted_) throw Error("blob " + id_ + ": aborted");
        if (failed_) throw Error("blob " + id_ + ": an earlier write failed");
    }
    static void rename_or_throw(const std::string& from, const std::string& to) {
        if (::rename(from.c_str(), to.c_str()) != 0) throw_errno("rename", from + " to " + to, errno);
    }

    Layout layout_;
    NewBlob blob_;
    std::string id_;
    std::string tmp_data_;
    std::string tmp_meta_;
    std::optional<DataFile> data_;
    Sha256Stream hash_;
    uint64_t size_ = 0;
    bool data_created_ = false;  // tmp_data_ exists
    bool meta_created_ = false;  // tmp_meta_ exists
    bool data_placed_ = false;   // renamed to its final name
    bool meta_placed_ = false;
    bool committed_ = false;
    bool aborted_ = false;
    bool failed_ = false;
};

class FileReader final : public BlobReader {
  public:
    FileReader(UniqueFd fd, std::string path, BlobInfo info, uint64_t offset, uint64_t length)
        : fd_(std::move(fd)), path_(std::move(path)), info_(std::move(info)), position_(offset), remaining_(length) {}

    const BlobInfo& info() const override { return info_; }
    uint64_t remaining() const override { return remaining_; }

    size_t read(char* buffer, size_t size) override {
        if (remaining_ == 0 || size == 0) return 0;
        size_t want = static_cast<size_t>(std::min<uint64_t>(size, remaining_));
        ssize_t n;
        do {
            n = ::pread(fd_.get(), buffer, want, static_cast<off_t>(position_));
        } while (n < 0 && errno == EINTR);
        if (n < 0) throw_errno("read", path_, errno);
        if (n == 0) throw Error("read " + path_ + ": the file is shorter than its metadata says");
        position_ += static_cast<uint64_t>(n);
        remaining_ -= static_cast<uint64_t>(n);
        return static_cast<size_t>(n);
    }

  private:
    UniqueFd fd_;
    std::string path_;
    BlobInfo info_;
    uint64_t position_;
    uint64_t remaining_;
};

class FileStore final : public BlobStore {
  public:
    FileStore(std::string dir, bool direct_io) : layout_{std::move(dir), direct_io} {
        make_dirs(layout_.tmp());
        sweep_stale_parts(std::chrono::seconds(kStalePartSeconds));
    }

    size_t remove_abandoned(std::chrono::seconds idle) override { return sweep_stale_parts(idle); }

    std::unique_ptr<BlobWriter> create(const NewBlob& blob) override {
        return std::make_unique<FileWriter>(layout_, clean(blob));
    }

    std::unique_ptr<BlobReader> open(const std::string& id, uint64_t offset, std::optional<uint64_t> length) override {
        auto info = read_meta(id);
        if (!info) return nullptr;
        std::string path = layout_.data(id);
        UniqueFd fd = open_existing(path);
        if (!fd) return nullptr;
        uint64_t start = std::min(offset, info->size);
        uint64_t count = info->size - start;
        if (length) count = std::min(count, *length);
        return std::make_unique<FileReader>(std::move(fd), std::move(path), std::move(*info), start, count);
    }

    std::optional<BlobInfo> stat(const std::string& id) override {
        auto info = read_meta(id);
        if (!info) return std::nullopt;
        struct stat st {};
        std::string path = layout_.data(id);
        if (::stat(path.c_str(), &st) != 0) {
            if (errno == ENOENT) return std::nullopt;  // being removed
            throw_errno("stat", path, errno);
        }
        return info;
    }

    bool remove(const std::string& id) override {
        if (!is_valid_id(id)) return false;
        std::string meta = layout_.meta(id);
        if (::unlink(meta.c_str()) != 0) {
            if (errno == ENOENT || errno == ENOTDIR) return false;
            throw_errno("unlink", meta, errno);
        }
        std::string data = layout_.data(id);
        if (::unlink(data.c_str()) != 0 && errno != ENOENT) throw_errno("unlink", data, errno);
        return true;
    }

    Check check() override {
        struct stat st {};
        if (::stat(layout_.dir.c_str(), &st) != 0) return layout_.dir + ": " + std::strerror(errno);
        if (!S_ISDIR(st.st_mode)) return layout_.dir + std::string(": not a directory");
        std::string probe = layout_.tmp() + "/.probe." + crypto::random_hex(8);
        UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode));
        if (!fd) return "cannot write to " + layout_.tmp() + ": " + std::strerror(errno);
        fd.reset();
        if (::unlink(probe.c_str()) != 0) return "cannot remove " + probe + ": " + std::strerror(errno);
        return Ok{};
    }

    std::string describe() const override { return "file://" + layout_.dir; }

  private:
    std::optional<BlobInfo> read_meta(const std::string& id) {
        if (!is_valid_id(id)) return std::nullopt;
        std::string path = layout_.meta(id);
        UniqueFd fd = open_existing(path);
        if (!fd) return std::nullopt;
        std::string text = read_all(fd.get(), path);
        try {
            BlobInfo info = from_json(nlohmann::json::parse(text));
            if (info.id != id) throw Error("metadata " + path + " names blob " + info.id);
            return info;
        } catch (const nlohmann::json::exception& e) {
            throw Error("metadata " + path + " is corrupt: " + e.what());
        }
    }

    // Uploads cut short by a crash leave *.part files behind. Live uploads keep touching theirs, so anything not
    // modified for `idle` (an hour at start-up) is an orphan. Returns how many files it removed.
    size_t sweep_stale_parts(std::chrono::seconds idle) {
        std::string tmp = layout_.tmp();
        DirPtr dir(::opendir(tmp.c_str()));
        if (!dir) throw_errno("opendir", tmp, errno);
        time_t cutoff = std::time(nullptr) - static_cast<time_t>(idle.count());
        size_t removed = 0;
        while (dirent* entry = ::readdir(dir.get())) {
            std::string_view name = entry->d_name;
            if (name.size() < 5 || name.substr(name.size() - 5) != ".part") continue;
            std::string path = tmp + "/" + std::string(name);
            struct stat st {};
            if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_mtime >= cutoff) continue;
            if (unlink_quietly(path)) ++removed;
        }
        if (removed > 0) log::warn("removed stale partial uploads", {{"dir", tmp}, {"count", removed}});
        return removed;
    }

    Layout layout_;
};

}  // namespace

std::unique_ptr<BlobStore> open_file_store(const std::string& location, const std::string& bucket) {
    std::string root = location.substr(0, location.find('?'));
    bool direct_io = true;
    if (root.size() < location.size()) {
        std::string query = location.substr(root.size() + 1);
        if (query == "direct_io=off") {
            direct_io = false;
        } else if (query != "direct_io=on") {
            throw Error("a file:// STORAGE_URL takes one option, ?direct_io=on or ?direct_io=off, not ?" + query);
        }
    }
    if (root.empty() || root.front() != '/') {
        throw Error("a file:// STORAGE_URL needs an absolute path, as in file:///var/lib/mp3c");
    }
    if (!is_valid_bucket(bucket)) throw Error("invalid storage bucket name: " + bucket);
    std::string dir = root;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    dir = (dir == "/" ? "" : dir) + "/" + bucket;
    auto store = std::make_unique<FileStore>(dir, direct_io);
    log::info("blob store opened", {{"store", store->describe()}});
    return store;
}

}  // namespace mp3c::storage::detail
