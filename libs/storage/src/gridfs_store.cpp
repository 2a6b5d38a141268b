// The mongodb:// store: MongoDB GridFS through libmongoc's bucket API, in the database named after the bucket
// ("videos", "mp3s"), GridFS bucket "fs" (collections fs.files and fs.chunks), as the original stored them.
//
// Visibility: GridFS metadata can only be given when an upload starts, and the files document appears when the
// stream is closed, before we can record the SHA-256 of what was written. So uploads start with metadata.pending =
// true and commit() replaces it with metadata.sha256 in one update; readers ignore pending files. Files written by
// other tools (no pending field) stay readable.

#include <mongoc/mongoc.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "internal.hpp"
#include "mp3c/c_handle.hpp"
#include "mp3c/log.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::storage::detail {
namespace {

// An explicit chunk size (the GridFS default, 255 KiB), so that write() can split its input at chunk boundaries:
// see GridFsWriter::write.
constexpr int32_t kChunkSize = 255 * 1024;
// libmongoc waits 30 s for a server by default; a request (or /readyz) should fail sooner. The URL can override it.
constexpr int32_t kServerSelectionTimeoutMs = 5000;
constexpr int32_t kMajorityTimeoutMs = 10000;
// How long an operation waits for a pooled client when all maxPoolSize (100) are out, by default for ever: slow
// downloads holding every client would then hold every handler thread behind them. Then it fails (503) instead.
// The URL can override it (waitQueueTimeoutMS).
constexpr int32_t kWaitQueueTimeoutMs = 2000;
// remove_abandoned looks at this many uploads' first chunks per call, going on from there at the next call.
constexpr int64_t kAbandonedScan = 100'000;

// Destroying an upload stream that was neither closed nor aborted closes it, which SAVES the partial file: abort
// first, so that dropping a writer can never publish a truncated blob.
struct UploadStreamFree {
    void operator()(mongoc_stream_t* p) const {
        if (!mongoc_stream_check_closed(p)) mongoc_gridfs_bucket_abort_upload(p);
        mongoc_stream_destroy(p);
    }
};
using UriPtr = CHandle<mongoc_uri_t, mongoc_uri_destroy>;
using PoolPtr = CHandle<mongoc_client_pool_t, mongoc_client_pool_destroy>;
using DatabasePtr = CHandle<mongoc_database_t, mongoc_database_destroy>;
using CollectionPtr = CHandle<mongoc_collection_t, mongoc_collection_destroy>;
using BucketPtr = CHandle<mongoc_gridfs_bucket_t, mongoc_gridfs_bucket_destroy>;
using CursorPtr = CHandle<mongoc_cursor_t, mongoc_cursor_destroy>;
// The bson_t typedef carries an alignment attribute that template arguments drop (with a warning); the struct tag
// names the same type without it.
using BsonPtr = CHandle<struct _bson_t, bson_destroy>;
using DownloadStreamPtr = CHandle<mongoc_stream_t, mongoc_stream_destroy>;
using UploadStreamPtr = std::unique_ptr<mongoc_stream_t, UploadStreamFree>;

// A reply document that libmongoc initialises (and that must be destroyed even when the call fails).
struct Reply {
    bson_t doc;
    Reply() { bson_init(&doc); }
    ~Reply() { bson_destroy(&doc); }
    Reply(const Reply&) = delete;
    Reply& operator=(const Reply&) = delete;
};

std::string message(const bson_error_t& error) {
    return std::string(error.message) + " (domain " + std::to_string(error.domain) + ", code " +
           std::to_string(error.code) + ")";
}

bool is_file_not_found(const bson_error_t& error) {
    return error.domain == MONGOC_ERROR_GRIDFS && error.code == MONGOC_ERROR_GRIDFS_BUCKET_FILE_NOT_FOUND;
}

// libmongoc's own warnings would otherwise go to stderr as plain text, between our JSON lines.
void log_handler(mongoc_log_level_t level, const char* domain, const char* text, void*) {
    nlohmann::json fields = {{"component", "libmongoc"}, {"domain", domain ? domain : ""}};
    std::string_view line = text ? text : "";
    switch (level) {
        case MONGOC_LOG_LEVEL_ERROR:
        case MONGOC_LOG_LEVEL_CRITICAL:
            log::error(line, fields);
            break;
        case MONGOC_LOG_LEVEL_WARNING:
            log::warn(line, fields);
            break;
        case MONGOC_LOG_LEVEL_MESSAGE:
        case MONGOC_LOG_LEVEL_INFO:
            log::info(line, fields);
            break;
        default:
            log::debug(line, fields);
            break;
    }
}

void init_mongoc() {
    static std::once_flag once;
    std::call_once(once, [] {
        // libmongoc's performance counters live in a /dev/shm/mongoc-<pid> file, which a killed process leaves
        // behind; a later process given the same pid then prints a warning on stderr. Nothing reads the counters.
        // Set while the process is starting (stores are opened before any worker thread), before libmongoc reads it.
        ::setenv("MONGOC_DISABLE_SHM", "1", /*overwrite=*/0);
        mongoc_log_set_handler(log_handler, nullptr);
        mongoc_init();  // never undone with mongoc_cleanup(): stores may live until exit
    });
}

bson_value_t oid_value(const std::string& id) {
    bson_value_t value{};
    value.value_type = BSON_TYPE_OID;
    bson_oid_init_from_string(&value.value.v_oid, id.c_str());
    return value;
}

// "mongodb://user:secret@host:27017,host2/db?opts" → "mongodb://host:27017,host2/<bucket>": no credentials, and no
// options either, since some carry secrets (tlsCertificateKeyFilePassword, authMechanismProperties).
std::string describe_url(const std::string& url, const std::string& bucket) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return "mongodb://?/" + bucket;
    size_t hosts_begin = scheme_end + 3;
    size_t hosts_end = url.find_first_of("/?", hosts_begin);
    std::string hosts =
        url.substr(hosts_begin, hosts_end == std::string::npos ? std::string::npos : hosts_end - hosts_begin);
    if (size_t at = hosts.rfind('@'); at != std::string::npos) hosts.erase(0, at + 1);
    return url.substr(0, hosts_begin) + hosts + "/" + bucket;
}

// A client from the pool, returned when done. Popping waits up to waitQueueTimeoutMS while maxPoolSize clients are
// out, then throws.
class ClientLease {
  public:
    explicit ClientLease(mongoc_client_pool_t* pool) : pool_(pool), client_(mongoc_client_pool_pop(pool)) {
        if (client_ == nullptr) {
            throw Error(
                "no MongoDB connection became free in time (every pooled client is in use; waitQueueTimeoutMS)");
        }
    }
    ~ClientLease() { mongoc_client_pool_push(pool_, client_); }
    ClientLease(const ClientLease&) = delete;
    ClientLease& operator=(const ClientLease&) = delete;
    mongoc_client_t* get() const { return client_; }

  private:
    mongoc_client_pool_t* pool_;
    mongoc_client_t* client_;
};

// Everything one operation needs. A bucket and its streams belong to the client they came from, so a Session lives
// as long as the reader or writer that uses it.
class Session {
  public:
    Session(mongoc_client_pool_t* pool, const std::string& database)
        : client_(pool), db_(mongoc_client_get_database(client_.get(), database.c_str())) {
        bson_error_t error{};
        BsonPtr opts(BCON_NEW("chunkSizeBytes", BCON_INT32(kChunkSize)));
        bucket_.reset(mongoc_gridfs_bucket_new(db_.get(), opts.get(), nullptr, &error));
        if (!bucket_) throw Error("GridFS bucket in database " + database + ": " + message(error));
    }
    mongoc_client_t* client() const { return client_.get(); }
    mongoc_database_t* db() const { return db_.get(); }
    mongoc_gridfs_bucket_t* bucket() const { return bucket_.get(); }

  private:
    ClientLease client_;  // declared first: destroyed last
    DatabasePtr db_;
    BucketPtr bucket_;
};

std::string utf8(const bson_iter_t* iter) {
    if (!BSON_ITER_HOLDS_UTF8(iter)) return "";
    uint32_t length = 0;
    const char* text = bson_iter_utf8(iter, &length);
    return std::string(text, length);
}

// A files document → BlobInfo; nullopt while the upload is still being committed.
std::optional<BlobInfo> to_info(const std::string& id, const bson_t* doc) {
    BlobInfo info;
    info.id = id;
    bson_iter_t iter;
    if (!bson_iter_init(&iter, doc)) throw Error("GridFS files document for " + id + " is malformed");
    while (bson_iter_next(&iter)) {
        std::string_view key = bson_iter_key(&iter);
        if (key == "length") {
            info.size = static_cast<uint64_t>(std::max<int64_t>(0, bson_iter_as_int64(&iter)));
        } else if (key == "uploadDate" && BSON_ITER_HOLDS_DATE_TIME(&iter)) {
            info.created_ms = bson_iter_date_time(&iter);
        } else if (key == "filename") {
            info.filename = utf8(&iter);
        } else if (key == "metadata" && BSON_ITER_HOLDS_DOCUMENT(&iter)) {
            bson_iter_t meta;
            if (!bson_iter_recurse(&iter, &meta)) continue;
            while (bson_iter_next(&meta)) {
                std::string_view name = bson_iter_key(&meta);
                if (name == "owner") {
                    info.owner = utf8(&meta);
                } else if (name == "content_type") {
                    info.content_type = utf8(&meta);
                } else if (name == "sha256") {
                    info.sha256 = utf8(&meta);
                } else if (name == "pending" && bson_iter_as_bool(&meta)) {
                    return std::nullopt;
                }
            }
        }
    }
    return info;
}

// The files document's chunkSize (GridFS files written by other tools may use another size than ours).
int64_t chunk_size_of(const bson_t* doc) {
    bson_iter_t iter;
    if (bson_iter_init_find(&iter, doc, "chunkSize") && BSON_ITER_HOLDS_NUMBER(&iter)) return bson_iter_as_int64(&iter);
    return 0;
}

std::optional<BlobInfo> find_info(Session& session, const std::string& id, int64_t* chunk_size = nullptr) {
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, id.c_str());
    BsonPtr filter(BCON_NEW("_id", BCON_OID(&oid)));
    BsonPtr opts(BCON_NEW("limit", BCON_INT64(1)));
    CursorPtr cursor(mongoc_gridfs_bucket_find(session.bucket(), filter.get(), opts.get()));
    const bson_t* doc = nullptr;
    if (mongoc_cursor_next(cursor.get(), &doc)) {
        if (chunk_size != nullptr) *chunk_size = chunk_size_of(doc);
        return to_info(id, doc);
    }
    bson_error_t error{};
    if (mongoc_cursor_error(cursor.get(), &error)) throw Error("GridFS find " + id + ": " + message(error));
    return std::nullopt;
}

class GridFsWriter final : public BlobWriter {
  public:
    GridFsWriter(mongoc_client_pool_t* pool, const std::string& database, NewBlob blob)
        : session_(std::make_unique<Session>(pool, database)),
          blob_(std::move(blob)),
          id_(blob_.id.value_or(new_id())) {
        bson_value_t file_id = oid_value(id_);
        // The file name is also in the metadata because the top-level one is GridFS's, which other tools may
        // rewrite; ours is the client's, for display.
        BsonPtr opts(BCON_NEW("metadata", "{",                                        //
                              "owner", BCON_UTF8(blob_.owner.c_str()),                //
                              "content_type", BCON_UTF8(blob_.content_type.c_str()),  //
                              "filename", BCON_UTF8(blob_.filename.c_str()),          //
                              "pending", BCON_BOOL(true),                             //
                              "}"));
        bson_error_t error{};
        stream_.reset(mongoc_gridfs_bucket_open_upload_stream_with_id(session_->bucket(), &file_id,
                                                                      blob_.filename.c_str(), opts.get(), &error));
        if (!stream_) throw Error("GridFS upload of " + id_ + ": " + message(error));
    }
    ~GridFsWriter() override { abort(); }

    const std::string& id() const override { return id_; }
    uint64_t bytes_written() const override { return size_; }

    // libmongoc's writev ignores a failed chunk insert and, when more input follows in the same call, retries that
    // insert forever (seen with 1.23.1, still so upstream). Ending every call at a chunk boundary means a failed insert
    // is the last thing the call does; the error is then reported by mongoc_gridfs_bucket_stream_error.
    void write(std::string_view bytes) override {
        ensure_writable();
        while (!bytes.empty()) {
            size_t room = static_cast<size_t>(kChunkSize) - static_cast<size_t>(size_ % kChunkSize);
            size_t piece = std::min(room, bytes.size());
            // mongoc_stream_write takes a non-const buffer but only reads it.
            ssize_t n = mongoc_stream_write(stream_.get(), const_cast<char*>(bytes.data()), piece, 0);
            bson_error_t error{};
            if (mongoc_gridfs_bucket_stream_error(stream_.get(), &error) || n != static_cast<ssize_t>(piece)) {
                failed_ = true;
                throw Error("GridFS write of " + id_ + ": " + (error.code ? message(error) : "short write"));
            }
            hash_.update(bytes.substr(0, piece));
            size_ += piece;
            bytes.remove_prefix(piece);
        }
    }

    BlobInfo commit() override {
        ensure_writable();
        failed_ = true;  // until the end: a throw below leaves a writer that can only be aborted
        // Closing writes the last chunk and inserts the files document (still pending).
        int closed = mongoc_stream_close(stream_.get());
        bson_error_t error{};
        if (mongoc_gridfs_bucket_stream_error(stream_.get(), &error) || closed != 0) {
            discard(true);
            throw Error("GridFS upload of " + id_ + ": " + (error.code ? message(error) : "close failed"));
        }
        stream_.reset();

        std::string sha256 = hash_.hex_digest();
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, id_.c_str());
        CollectionPtr files(mongoc_database_get_collection(session_->db(), "fs.files"));
        BsonPtr query(BCON_NEW("_id", BCON_OID(&oid)));
        BsonPtr update(BCON_NEW("$set", "{", "metadata.sha256", BCON_UTF8(sha256.c_str()), "}",  //
                                "$unset", "{", "metadata.pending", BCON_UTF8(""), "}"));
        Reply reply;
        // find_and_modify (on the primary) returns the final document: what stat() will read, uploadDate included.
        bool ok = mongoc_collection_find_and_modify(files.get(), query.get(), nullptr, update.get(), nullptr, false,
                                                    false, true, &reply.doc, &error);
        std::optional<BlobInfo> info;
        bson_iter_t value;
        if (ok && bson_iter_init_find(&value, &reply.doc, "value") && BSON_ITER_HOLDS_DOCUMENT(&value)) {
            uint32_t length = 0;
            const uint8_t* data = nullptr;
            bson_iter_document(&value, &length, &data);
            bson_t doc;
            if (bson_init_static(&doc, data, length)) info = to_info(id_, &doc);
        }
        if (!info) {
            discard(true);
            throw Error("GridFS commit of " + id_ + ": " + (ok ? "files document missing" : message(error)));
        }
        committed_ = true;
        session_.reset();  // give the client back now rather than when the writer goes
        return *info;
    }

    void abort() noexcept override {
        if (committed_ || aborted_) return;
        discard(false);
    }

  private:
    void ensure_writable() const {
        if (committed_) throw Error("blob " + id_ + ": already committed");
        if (aborted_) throw Error("blob " + id_ + ": aborted");
        if (failed_) throw Error("blob " + id_ + ": an earlier write failed");
    }

    // Removes the chunks and, once close() may have inserted it, the files document. Best effort: a failure here
    // leaves a pending file, which readers never see.
    void discard(bool files_document_may_exist) noexcept {
        aborted_ = true;
        if (stream_) {
            mongoc_gridfs_bucket_abort_upload(stream_.get());
            stream_.reset();
        }
        if (files_document_may_exist && session_) {
            bson_value_t file_id = oid_value(id_);
            bson_error_t error{};
            if (!mongoc_gridfs_bucket_delete_by_id(session_->bucket(), &file_id, &error) && !is_file_not_found(error)) {
                log::warn("could not remove a failed GridFS upload", {{"id", id_}, {"error", message(error)}});
            }
        }
        session_.reset();
    }

    std::unique_ptr<Session> session_;  // declared before stream_: the stream goes first
    NewBlob blob_;
    std::string id_;
    UploadStreamPtr stream_;
    Sha256Stream hash_;
    uint64_t size_ = 0;
    bool committed_ = false;
    bool aborted_ = false;
    bool failed_ = false;
};

// A read from the start: the bucket's download stream.
class GridFsReader final : public BlobReader {
  public:
    GridFsReader(std::unique_ptr<Session> session, DownloadStreamPtr stream, BlobInfo info, uint64_t length)
        : session_(std::move(session)), stream_(std::move(stream)), info_(std::move(info)), remaining_(length) {}

    const BlobInfo& info() const override { return info_; }
    uint64_t remaining() const override { return remaining_; }

    size_t read(char* buffer, size_t size) override {
        if (remaining_ == 0 || size == 0) return 0;
        size_t want = static_cast<size_t>(std::min<uint64_t>(size, remaining_));
        ssize_t n = mongoc_stream_read(stream_.get(), buffer, want, 1, 0);
        if (n < 0) {
            bson_error_t error{};
            mongoc_gridfs_bucket_stream_error(stream_.get(), &error);
            throw Error("GridFS read of " + info_.id + ": " + (error.code ? message(error) : "read failed"));
        }
        if (n == 0) throw Error("GridFS read of " + info_.id + ": the file ends before its length");
        remaining_ -= static_cast<uint64_t>(n);
        return static_cast<size_t>(n);
    }

  private:
    std::unique_ptr<Session> session_;  // declared before stream_: the stream goes first
    DownloadStreamPtr stream_;
    BlobInfo info_;
    uint64_t remaining_;
};

// A read from an offset (an HTTP Range): the bucket API cannot seek, so this reads fs.chunks itself, from chunk
// n = offset / chunkSize on, instead of downloading and discarding everything before the offset.
class GridFsRangeReader final : public BlobReader {
  public:
    GridFsRangeReader(std::unique_ptr<Session> session, BlobInfo info, int64_t chunk_size, uint64_t offset,
                      uint64_t length)
        : session_(std::move(session)),
          info_(std::move(info)),
          chunk_size_(static_cast<uint64_t>(chunk_size)),
          next_n_(static_cast<int64_t>(offset / chunk_size_)),
          skip_(offset % chunk_size_),
          remaining_(length) {
        if (remaining_ == 0) return;
        chunks_.reset(mongoc_database_get_collection(session_->db(), "fs.chunks"));
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, info_.id.c_str());
        BsonPtr filter(BCON_NEW("files_id", BCON_OID(&oid), "n", "{", "$gte", BCON_INT64(next_n_), "}"));
        BsonPtr opts(BCON_NEW("sort", "{", "n", BCON_INT32(1), "}"));
        cursor_.reset(mongoc_collection_find_with_opts(chunks_.get(), filter.get(), opts.get(), nullptr));
    }

    const BlobInfo& info() const override { return info_; }
    uint64_t remaining() const override { return remaining_; }

    size_t read(char* buffer, size_t size) override {
        if (remaining_ == 0 || size == 0) return 0;
        while (at_ == data_.size()) next_chunk();
        size_t n = std::min({size, data_.size() - at_, static_cast<size_t>(std::min<uint64_t>(remaining_, SIZE_MAX))});
        std::memcpy(buffer, data_.data() + at_, n);
        at_ += n;
        remaining_ -= n;
        return n;
    }

  private:
    void next_chunk() {
        const bson_t* doc = nullptr;
        if (!mongoc_cursor_next(cursor_.get(), &doc)) {
            bson_error_t error{};
            if (mongoc_cursor_error(cursor_.get(), &error)) {
                throw Error("GridFS read of " + info_.id + ": " + message(error));
            }
            throw Error("GridFS read of " + info_.id + ": chunk " + std::to_string(next_n_) + " is missing");
        }
        bson_iter_t iter;
        int64_t n = -1;
        if (bson_iter_init_find(&iter, doc, "n") && BSON_ITER_HOLDS_NUMBER(&iter)) n = bson_iter_as_int64(&iter);
        if (n != next_n_) {
            throw Error("GridFS read of " + info_.id + ": expected chunk " + std::to_string(next_n_) + ", found " +
                        std::to_string(n));
        }
        const uint8_t* bytes = nullptr;
        uint32_t length = 0;
        bson_subtype_t subtype{};
        if (!bson_iter_init_find(&iter, doc, "data") || !BSON_ITER_HOLDS_BINARY(&iter)) {
            throw Error("GridFS read of " + info_.id + ": chunk " + std::to_string(n) + " has no data");
        }
        bson_iter_binary(&iter, &subtype, &length, &bytes);
        // Every chunk but the last is whole; a short one in the middle means a damaged file.
        uint64_t end = std::min<uint64_t>(info_.size, static_cast<uint64_t>(n + 1) * chunk_size_);
        if (length != end - static_cast<uint64_t>(n) * chunk_size_) {
            throw Error("GridFS read of " + info_.id + ": chunk " + std::to_string(n) + " has " +
                        std::to_string(length) + " bytes");
        }
        data_.assign(reinterpret_cast<const char*>(bytes), length);
        at_ = std::exchange(skip_, 0);
        ++next_n_;
    }

    std::unique_ptr<Session> session_;  // declared first: destroyed last, after the cursor and collection
    BlobInfo info_;
    uint64_t chunk_size_;
    int64_t next_n_;
    uint64_t skip_;  // bytes of the first chunk before the offset
    uint64_t remaining_;
    CollectionPtr chunks_;
    CursorPtr cursor_;
    std::string data_;
    size_t at_ = 0;
};

class GridFsStore final : public BlobStore {
  public:
    GridFsStore(UriPtr uri, PoolPtr pool, std::string database, std::string description)
        : uri_(std::move(uri)),
          pool_(std::move(pool)),
          database_(std::move(database)),
          description_(std::move(description)) {}

    std::unique_ptr<BlobWriter> create(const NewBlob& blob) override {
        return std::make_unique<GridFsWriter>(pool_.get(), database_, clean(blob));
    }

    std::unique_ptr<BlobReader> open(const std::string& id, uint64_t offset, std::optional<uint64_t> length) override {
        if (!is_valid_id(id)) return nullptr;
        auto session = std::make_unique<Session>(pool_.get(), database_);
        int64_t chunk_size = 0;
        auto info = find_info(*session, id, &chunk_size);
        if (!info) return nullptr;
        uint64_t start = std::min(offset, info->size);
        uint64_t count = info->size - start;
        if (length) count = std::min(count, *length);
        if (start > 0) {
            if (chunk_size <= 0) throw Error("GridFS files document of " + id + " has no chunkSize");
            return std::make_unique<GridFsRangeReader>(std::move(session), std::move(*info), chunk_size, start, count);
        }
        bson_value_t file_id = oid_value(id);
        bson_error_t error{};
        DownloadStreamPtr stream(mongoc_gridfs_bucket_open_download_stream(session->bucket(), &file_id, &error));
        if (!stream) {
            if (is_file_not_found(error)) return nullptr;  // removed in between
            throw Error("GridFS download of " + id + ": " + message(error));
        }
        return std::make_unique<GridFsReader>(std::move(session), std::move(stream), std::move(*info), count);
    }

    std::optional<BlobInfo> stat(const std::string& id) override {
        if (!is_valid_id(id)) return std::nullopt;
        Session session(pool_.get(), database_);
        return find_info(session, id);
    }

    bool remove(const std::string& id) override {
        if (!is_valid_id(id)) return false;
        Session session(pool_.get(), database_);
        bson_value_t file_id = oid_value(id);
        bson_error_t error{};
        // Deletes the files document first, then the chunks: the blob disappears before its bytes do.
        if (mongoc_gridfs_bucket_delete_by_id(session.bucket(), &file_id, &error)) return true;
        if (is_file_not_found(error)) return false;
        throw Error("GridFS delete of " + id + ": " + message(error));
    }

    Check check() override {
        {
            ClientLease client(pool_.get());
            BsonPtr command(BCON_NEW("ping", BCON_INT32(1)));
            Reply reply;
            bson_error_t error{};
            if (!mongoc_client_command_simple(client.get(), "admin", command.get(), nullptr, &reply.doc, &error)) {
                return "MongoDB " + description_ + ": " + message(error);
            }
        }
        // At start-up: the first readiness check comes before traffic. (Should none come, the bucket API still makes
        // them before the first upload into an empty bucket.)
        ensure_indexes();
        return Ok{};
    }

    size_t remove_abandoned(std::chrono::seconds idle) override {
        Session session(pool_.get(), database_);
        CollectionPtr chunks(mongoc_database_get_collection(session.db(), "fs.chunks"));
        CollectionPtr files(mongoc_database_get_collection(session.db(), "fs.files"));
        const time_t cutoff = std::time(nullptr) - static_cast<time_t>(idle.count());
        // The candidates: every upload's first chunk names its file, and an upload cut short between its last chunk
        // and its commit (or an empty one, which has no chunk) left a pending files document. An id is made when its
        // upload starts, so a younger one cannot have been idle that long.
        std::vector<bson_oid_t> candidates;
        // Returns how many documents it looked at, and the last id.
        auto collect = [&](mongoc_collection_t* collection, bson_t* filter, const char* field) {
            BsonPtr opts(BCON_NEW("projection", "{", field, BCON_INT32(1), "}", "sort", "{", field, BCON_INT32(1), "}",
                                  "limit", BCON_INT64(kAbandonedScan)));
            CursorPtr cursor(mongoc_collection_find_with_opts(collection, filter, opts.get(), nullptr));
            const bson_t* doc = nullptr;
            std::pair<int64_t, std::optional<bson_oid_t>> seen{0, std::nullopt};
            while (mongoc_cursor_next(cursor.get(), &doc)) {
                ++seen.first;
                bson_iter_t iter;
                if (!bson_iter_init_find(&iter, doc, field) || !BSON_ITER_HOLDS_OID(&iter)) continue;  // not ours
                const bson_oid_t* oid = bson_iter_oid(&iter);
                seen.second = *oid;
                if (bson_oid_get_time_t(oid) <= cutoff) candidates.push_back(*oid);
            }
            bson_error_t error{};
            if (mongoc_cursor_error(cursor.get(), &error)) {
                throw Error("GridFS scan for abandoned uploads: " + message(error));
            }
            return seen;
        };
        // A bucket of more uploads than one scan takes is looked at in id order, each call going on from where the
        // last one stopped, and round again.
        std::lock_guard lock(scan_mutex_);
        BsonPtr first_chunks(scan_after_
                                 ? BCON_NEW("n", BCON_INT32(0), "files_id", "{", "$gt", BCON_OID(&*scan_after_), "}")
                                 : BCON_NEW("n", BCON_INT32(0)));
        auto [scanned, last] = collect(chunks.get(), first_chunks.get(), "files_id");
        scan_after_ = scanned < kAbandonedScan ? std::nullopt : last;
        BsonPtr pending(BCON_NEW("metadata.pending", BCON_BOOL(true)));
        collect(files.get(), pending.get(), "_id");

        // An upload cut short after its last chunk is found both ways: once is enough.
        std::sort(candidates.begin(), candidates.end(),
                  [](const bson_oid_t& a, const bson_oid_t& b) { return bson_oid_compare(&a, &b) < 0; });
        candidates.erase(std::unique(candidates.begin(), candidates.end(),
                                     [](const bson_oid_t& a, const bson_oid_t& b) { return bson_oid_equal(&a, &b); }),
                         candidates.end());
        size_t removed = 0;
        for (const bson_oid_t& oid : candidates) {
            bson_error_t error{};
            BsonPtr by_id(BCON_NEW("_id", BCON_OID(&oid)));
            BsonPtr one(BCON_NEW("limit", BCON_INT64(1)));
            std::optional<bool> files_pending;  // nullopt: no files document
            {
                CursorPtr cursor(mongoc_collection_find_with_opts(files.get(), by_id.get(), one.get(), nullptr));
                const bson_t* doc = nullptr;
                if (mongoc_cursor_next(cursor.get(), &doc)) {
                    bson_iter_t root, flag;
                    files_pending = bson_iter_init(&root, doc) &&
                                    bson_iter_find_descendant(&root, "metadata.pending", &flag) &&
                                    bson_iter_as_bool(&flag);
                }
                if (mongoc_cursor_error(cursor.get(), &error)) throw Error("GridFS find: " + message(error));
            }
            if (files_pending == false) continue;  // a committed blob
            // Still being written? Chunks get their ids as they are inserted: the newest one says when.
            BsonPtr of_file(BCON_NEW("files_id", BCON_OID(&oid)));
            BsonPtr newest(BCON_NEW("sort", "{", "n", BCON_INT32(-1), "}", "limit", BCON_INT64(1)));
            bool active = false;
            {
                CursorPtr cursor(mongoc_collection_find_with_opts(chunks.get(), of_file.get(), newest.get(), nullptr));
                const bson_t* doc = nullptr;
                if (mongoc_cursor_next(cursor.get(), &doc)) {
                    bson_iter_t iter;
                    active = bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter) &&
                             bson_oid_get_time_t(bson_iter_oid(&iter)) > cutoff;
                }
                if (mongoc_cursor_error(cursor.get(), &error)) throw Error("GridFS find: " + message(error));
            }
            if (active) continue;
            // The files document first (if pending), then the chunks: as a delete does it.
            if (files_pending && !mongoc_collection_delete_one(files.get(), by_id.get(), nullptr, nullptr, &error)) {
                throw Error("GridFS delete of an abandoned upload: " + message(error));
            }
            if (!mongoc_collection_delete_many(chunks.get(), of_file.get(), nullptr, nullptr, &error)) {
                throw Error("GridFS delete of an abandoned upload's chunks: " + message(error));
            }
            char hex[25];
            bson_oid_to_string(&oid, hex);
            log::warn("removed an abandoned upload", {{"store", description_}, {"id", hex}});
            ++removed;
        }
        return removed;
    }

    std::string describe() const override { return description_; }
    bool seeks_cheaply() const override { return false; }

  private:
    // The GridFS spec's indexes (fs.files by filename and date, fs.chunks unique by file and chunk number), made once
    // per process when the server can be reached. Without the chunks' index every read scans the collection; the
    // bucket API would make them too, but only before the first upload of an empty bucket, and on every upload it
    // looks whether it must.
    void ensure_indexes() {
        if (indexed_.load()) return;
        ClientLease client(pool_.get());
        DatabasePtr db(mongoc_client_get_database(client.get(), database_.c_str()));
        for (auto [collection, index] :
             {std::pair{"fs.files", BCON_NEW("key", "{", "filename", BCON_INT32(1), "uploadDate", BCON_INT32(1), "}",
                                             "name", BCON_UTF8("filename_1_uploadDate_1"))},
              std::pair{"fs.chunks", BCON_NEW("key", "{", "files_id", BCON_INT32(1), "n", BCON_INT32(1), "}", "name",
                                              BCON_UTF8("files_id_1_n_1"), "unique", BCON_BOOL(true))}}) {
            BsonPtr owned(index);
            bson_t command = BSON_INITIALIZER;
            BSON_APPEND_UTF8(&command, "createIndexes", collection);
            bson_t list;
            BSON_APPEND_ARRAY_BEGIN(&command, "indexes", &list);
            BSON_APPEND_DOCUMENT(&list, "0", owned.get());
            bson_append_array_end(&command, &list);
            Reply reply;
            bson_error_t error{};
            bool ok = mongoc_database_write_command_with_opts(db.get(), &command, nullptr, &reply.doc, &error);
            bson_destroy(&command);
            if (!ok) {
                log::warn("GridFS index not made; trying again later",
                          {{"store", description_}, {"collection", collection}, {"error", message(error)}});
                return;
            }
        }
        if (!indexed_.exchange(true)) log::info("GridFS indexes in place", {{"store", description_}});
    }

    UriPtr uri_;
    PoolPtr pool_;
    std::string database_;
    std::string description_;
    std::atomic<bool> indexed_{false};
    std::mutex scan_mutex_;
    std::optional<bson_oid_t> scan_after_;  // where remove_abandoned's next scan of first chunks starts
};

}  // namespace

namespace {

UriPtr client_uri(const std::string& url, const std::string& description) {
    bson_error_t error{};
    UriPtr uri(mongoc_uri_new_with_error(url.c_str(), &error));
    if (!uri) throw Error("invalid MongoDB STORAGE_URL " + description + ": " + error.message);
    if (!mongoc_uri_has_option(uri.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, kServerSelectionTimeoutMs);
    }
    if (!mongoc_uri_has_option(uri.get(), MONGOC_URI_WAITQUEUETIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(uri.get(), MONGOC_URI_WAITQUEUETIMEOUTMS, kWaitQueueTimeoutMs);
    }
    // On a replica set, an upload is acknowledged only once a majority holds it, so that a primary that fails right
    // after cannot take it away (a rollback). The URL's own `w` wins; its `wtimeoutMS` and `journal` are kept, and
    // without a wtimeoutMS a write waits for the majority at most kMajorityTimeoutMs (not until the socket times out).
    if (mongoc_uri_get_replica_set(uri.get()) != nullptr && !mongoc_uri_has_option(uri.get(), MONGOC_URI_W)) {
        CHandle<mongoc_write_concern_t, mongoc_write_concern_destroy> majority(
            mongoc_write_concern_copy(mongoc_uri_get_write_concern(uri.get())));
        int32_t wtimeout = mongoc_write_concern_get_wtimeout(majority.get());
        mongoc_write_concern_set_wmajority(majority.get(), wtimeout > 0 ? wtimeout : kMajorityTimeoutMs);
        if (!mongoc_write_concern_journal_is_set(majority.get()))
            mongoc_write_concern_set_journal(majority.get(), true);
        mongoc_uri_set_write_concern(uri.get(), majority.get());
    }
    return uri;
}

}  // namespace

std::unique_ptr<_mongoc_uri_t, void (*)(_mongoc_uri_t*)> gridfs_client_uri(const std::string& url) {
    init_mongoc();
    return {client_uri(url, describe_url(url, "test")).release(), mongoc_uri_destroy};
}

std::unique_ptr<BlobStore> open_gridfs_store(const std::string& url, const std::string& bucket) {
    init_mongoc();
    // The bucket names the database, whatever database the URL names (there it only picks the auth database).
    if (!is_valid_bucket(bucket)) throw Error("invalid storage bucket name: " + bucket);
    std::string description = describe_url(url, bucket);
    bson_error_t error{};
    UriPtr uri = client_uri(url, description);
    PoolPtr pool(mongoc_client_pool_new_with_error(uri.get(), &error));
    if (!pool) throw Error("MongoDB client pool for " + description + ": " + message(error));
    mongoc_client_pool_set_error_api(pool.get(), MONGOC_ERROR_API_VERSION_2);
    auto store = std::make_unique<GridFsStore>(std::move(uri), std::move(pool), bucket, description);
    log::info("blob store opened", {{"store", description}});
    return store;
}

}  // namespace mp3c::storage::detail
