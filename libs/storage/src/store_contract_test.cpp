// The behaviour every BlobStore must have, run against each implementation: the file store always, GridFS when
// MONGODB_URI names a server (each test then works in its own scratch database, dropped afterwards).

#include <gtest/gtest.h>
#include <mongoc/mongoc.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "internal.hpp"
#include "mp3c/c_handle.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::storage {
namespace {

constexpr const char* kGridFsSkipped =
    "GridFS contract tests SKIPPED: set MONGODB_URI=mongodb://host:27017 to run them";

enum class Kind { file, gridfs };

using ClientPtr = CHandle<mongoc_client_t, mongoc_client_destroy>;
using DatabasePtr = CHandle<mongoc_database_t, mongoc_database_destroy>;
using CollectionPtr = CHandle<mongoc_collection_t, mongoc_collection_destroy>;

// Deterministic bytes (xorshift64), so that large blobs need not be kept to be compared.
class Pattern {
  public:
    explicit Pattern(uint64_t seed) : state_(seed * 0x9e3779b97f4a7c15ULL + 1) {}
    std::string next(size_t size) {
        std::string out(size, '\0');
        for (auto& c : out) {
            state_ ^= state_ << 13;
            state_ ^= state_ >> 7;
            state_ ^= state_ << 17;
            c = static_cast<char>(state_ >> 32);
        }
        return out;
    }

  private:
    uint64_t state_;
};

std::string read_all(BlobReader& reader, size_t buffer_size = 8192) {
    std::string out;
    std::string buffer(buffer_size, '\0');
    while (size_t n = reader.read(buffer.data(), buffer.size())) out.append(buffer.data(), n);
    return out;
}

std::string sha256_hex(std::string_view bytes) { return crypto::to_hex(crypto::sha256(bytes)); }

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class StoreContract : public ::testing::TestWithParam<Kind> {
  protected:
    void SetUp() override {
        if (GetParam() == Kind::file) {
            char path[] = "/tmp/mp3c_storage_test_XXXXXX";
            ASSERT_NE(::mkdtemp(path), nullptr);
            root_ = path;
            store_ = open_store("file://" + root_, "videos");
        } else {
            const char* uri = std::getenv("MONGODB_URI");
            if (uri == nullptr || *uri == '\0') {
                std::cerr << "\n*** " << kGridFsSkipped << " ***\n" << std::endl;
                GTEST_SKIP() << kGridFsSkipped;
            }
            uri_ = uri;
            database_ = "mp3c_test_" + crypto::random_hex(6);
            store_ = open_store(uri_, database_);
        }
        ASSERT_NE(store_, nullptr);
    }

    void TearDown() override {
        store_.reset();
        if (!root_.empty()) std::filesystem::remove_all(root_);
        if (!database_.empty()) {
            if (auto db = database(); db) {
                bson_error_t error{};
                if (!mongoc_database_drop(db.get(), &error))
                    ADD_FAILURE() << "drop " << database_ << ": " << error.message;
            }
        }
    }

    ClientPtr client() { return ClientPtr(mongoc_client_new(uri_.c_str())); }
    // The scratch database; keeps its client alive alongside.
    struct Db {
        ClientPtr client;
        DatabasePtr db;
        mongoc_database_t* get() const { return db.get(); }
        explicit operator bool() const { return db != nullptr; }
    };
    Db database() {
        Db out;
        out.client = client();
        if (out.client) out.db.reset(mongoc_client_get_database(out.client.get(), database_.c_str()));
        return out;
    }

    // Whatever the store holds on its medium: files under the store directory, or GridFS documents.
    int64_t leftovers() {
        if (GetParam() == Kind::file) {
            int64_t count = 0;
            for (const auto& entry : std::filesystem::recursive_directory_iterator(root_)) {
                if (!entry.is_directory()) ++count;
            }
            return count;
        }
        Db db = database();
        int64_t count = 0;
        for (const char* name : {"fs.files", "fs.chunks"}) {
            CollectionPtr collection(mongoc_database_get_collection(db.get(), name));
            bson_t filter = BSON_INITIALIZER;
            bson_error_t error{};
            int64_t n = mongoc_collection_count_documents(collection.get(), &filter, nullptr, nullptr, nullptr, &error);
            bson_destroy(&filter);
            EXPECT_GE(n, 0) << error.message;
            count += n;
        }
        return count;
    }

    BlobInfo put(std::string_view bytes, NewBlob blob = {"owner-1", "song.mp3", "audio/mpeg"}) {
        auto writer = store_->create(blob);
        writer->write(bytes);
        return writer->commit();
    }

    std::string get(const std::string& id, uint64_t offset = 0, std::optional<uint64_t> length = std::nullopt) {
        auto reader = store_->open(id, offset, length);
        if (!reader) {
            ADD_FAILURE() << "no blob " << id;
            return "";
        }
        return read_all(*reader);
    }

    std::string root_;
    std::string uri_;
    std::string database_;
    std::unique_ptr<BlobStore> store_;
};

// A replica set's URL makes uploads wait for a majority (an acknowledged upload survives the primary's loss), unless
// the URL chooses otherwise; a single server's URL is left as it is.
TEST(GridFsUrl, AReplicaSetGetsMajorityJournaledWritesUnlessTheUrlSaysOtherwise) {
    auto set = detail::gridfs_client_uri("mongodb://a:27017,b:27017,c:27017/admin?replicaSet=rs0");
    const mongoc_write_concern_t* wc = mongoc_uri_get_write_concern(set.get());
    EXPECT_TRUE(mongoc_write_concern_get_wmajority(wc));
    EXPECT_TRUE(mongoc_write_concern_get_journal(wc));
    EXPECT_EQ(mongoc_write_concern_get_wtimeout(wc), 10000) << "a bounded wait for the majority";
    EXPECT_EQ(mongoc_uri_get_option_as_int32(set.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0), 5000);

    auto own = detail::gridfs_client_uri("mongodb://a,b,c/?replicaSet=rs0&wtimeoutMS=2500&journal=false");
    EXPECT_TRUE(mongoc_write_concern_get_wmajority(mongoc_uri_get_write_concern(own.get())));
    EXPECT_EQ(mongoc_write_concern_get_wtimeout(mongoc_uri_get_write_concern(own.get())), 2500);
    EXPECT_FALSE(mongoc_write_concern_get_journal(mongoc_uri_get_write_concern(own.get()))) << "the URL's journal kept";

    auto chosen = detail::gridfs_client_uri("mongodb://a,b,c/?replicaSet=rs0&w=2&serverSelectionTimeoutMS=15000");
    EXPECT_FALSE(mongoc_write_concern_get_wmajority(mongoc_uri_get_write_concern(chosen.get())));
    EXPECT_EQ(mongoc_write_concern_get_w(mongoc_uri_get_write_concern(chosen.get())), 2);
    EXPECT_EQ(mongoc_uri_get_option_as_int32(chosen.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0), 15000);

    auto single = detail::gridfs_client_uri("mongodb://127.0.0.1:27017");
    EXPECT_FALSE(mongoc_write_concern_get_wmajority(mongoc_uri_get_write_concern(single.get())));
    EXPECT_THROW(detail::gridfs_client_uri("http://nope"), Error);
}

TEST_P(StoreContract, WritesInManyChunksAndReadsBack) {
    std::string data = Pattern(1).next(700 * 1024 + 123);
    auto writer = store_->create({"owner-1", "a.mp4", "video/mp4"});
    std::string id = writer->id();
    EXPECT_TRUE(is_valid_id(id));
    size_t sizes[] = {1, 7, 4096, 100000, 65536, 3};
    size_t at = 0;
    for (size_t i = 0; at < data.size(); ++i) {
        size_t n = std::min(sizes[i % std::size(sizes)], data.size() - at);
        writer->write(std::string_view(data).substr(at, n));
        at += n;
        EXPECT_EQ(writer->bytes_written(), at);
    }
    BlobInfo info = writer->commit();
    EXPECT_EQ(info.id, id);
    EXPECT_EQ(info.size, data.size());
    EXPECT_EQ(info.sha256, sha256_hex(data));

    auto reader = store_->open(id);
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(reader->remaining(), data.size());
    EXPECT_EQ(reader->info().sha256, info.sha256);
    EXPECT_EQ(read_all(*reader, 1000), data);
    EXPECT_EQ(reader->remaining(), 0u);
    char c;
    EXPECT_EQ(reader->read(&c, 1), 0u);
}

TEST_P(StoreContract, StatReturnsWhatCommitReturned) {
    int64_t before = now_ms();
    BlobInfo committed = put("hello", {"user-42", "My Song.mp3", "audio/mpeg"});
    int64_t after = now_ms();
    auto info = store_->stat(committed.id);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->id, committed.id);
    EXPECT_EQ(info->size, 5u);
    EXPECT_EQ(info->sha256, sha256_hex("hello"));
    EXPECT_EQ(info->owner, "user-42");
    EXPECT_EQ(info->filename, "My Song.mp3");
    EXPECT_EQ(info->content_type, "audio/mpeg");
    EXPECT_EQ(info->created_ms, committed.created_ms);
    // A server's clock may differ from ours a little.
    EXPECT_GE(info->created_ms, before - 5000);
    EXPECT_LE(info->created_ms, after + 5000);
}

TEST_P(StoreContract, DefaultContentTypeIsOctetStream) {
    NewBlob blob;
    blob.owner = "o";
    auto info = store_->stat(put("x", blob).id);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->content_type, "application/octet-stream");
    EXPECT_EQ(info->filename, "");
}

TEST_P(StoreContract, AbortLeavesNothing) {
    auto writer = store_->create({"o", "f", "t"});
    std::string id = writer->id();
    writer->write(Pattern(2).next(300 * 1024));  // more than one GridFS chunk
    writer->abort();
    EXPECT_FALSE(store_->stat(id));
    EXPECT_EQ(store_->open(id), nullptr);
    EXPECT_EQ(leftovers(), 0);
    EXPECT_THROW(writer->write("more"), Error);
    EXPECT_THROW(writer->commit(), Error);
    writer->abort();  // twice is harmless
    writer.reset();
    EXPECT_EQ(leftovers(), 0);
}

TEST_P(StoreContract, DestroyingAnUncommittedWriterLeavesNothing) {
    std::string id;
    {
        auto writer = store_->create({"o", "f", "t"});
        id = writer->id();
        writer->write(Pattern(3).next(300 * 1024));
    }
    EXPECT_FALSE(store_->stat(id));
    EXPECT_EQ(store_->open(id), nullptr);
    EXPECT_EQ(leftovers(), 0);
}

TEST_P(StoreContract, CommitTwiceThrows) {
    auto writer = store_->create({"o", "f", "t"});
    writer->write("abc");
    writer->commit();
    EXPECT_THROW(writer->commit(), Error);
    EXPECT_THROW(writer->write("x"), Error);
    writer->abort();  // after commit: does nothing
    EXPECT_TRUE(store_->stat(writer->id()));
}

TEST_P(StoreContract, ReadsRanges) {
    std::string data = Pattern(4).next(600 * 1024 + 17);  // several GridFS chunks
    std::string id = put(data).id;
    uint64_t size = data.size();

    auto reader = store_->open(id, 100, 50);
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(reader->remaining(), 50u);
    EXPECT_EQ(read_all(*reader), data.substr(100, 50));

    // Across chunk boundaries.
    EXPECT_EQ(get(id, 255 * 1024 - 10, 300 * 1024), data.substr(255 * 1024 - 10, 300 * 1024));
    EXPECT_EQ(get(id, 300000), data.substr(300000));
    EXPECT_EQ(get(id, size - 10, 100), data.substr(size - 10));  // length past the end: clamped
    EXPECT_EQ(get(id, 0, 0), "");
    EXPECT_EQ(get(id, 0, size), data);

    for (uint64_t offset : {size, size + 1, size * 10}) {
        auto past = store_->open(id, offset);
        ASSERT_NE(past, nullptr);
        EXPECT_EQ(past->remaining(), 0u);
        EXPECT_EQ(read_all(*past), "");
        EXPECT_EQ(past->info().size, size);
    }
}

TEST_P(StoreContract, RemoveReturnsTrueThenFalse) {
    std::string id = put("bytes").id;
    EXPECT_TRUE(store_->remove(id));
    EXPECT_FALSE(store_->stat(id));
    EXPECT_EQ(store_->open(id), nullptr);
    EXPECT_FALSE(store_->remove(id));
    EXPECT_EQ(leftovers(), 0);
}

TEST_P(StoreContract, InvalidAndUnknownIdsAreNotFound) {
    put("something, so that the store is not empty");
    std::vector<std::string> ids = {"../../etc/passwd",
                                    "ZZZZZZZZZZZZZZZZZZZZZZZZ",
                                    "0123456789abcdef0123456",
                                    "0123456789abcdef012345678",
                                    "",
                                    "0123456789ABCDEF01234567",
                                    "../../../../etc/passwd..",
                                    std::string("0123456789abcdef012345\0a", 24),
                                    "000000000000000000000000"};  // valid, but no such blob
    for (const auto& id : ids) {
        EXPECT_NO_THROW({
            EXPECT_EQ(store_->open(id), nullptr) << id;
            EXPECT_FALSE(store_->stat(id)) << id;
            EXPECT_FALSE(store_->remove(id)) << id;
        }) << id;
    }
}

TEST_P(StoreContract, NothingIsVisibleBeforeCommit) {
    auto writer = store_->create({"o", "f", "t"});
    std::string id = writer->id();
    EXPECT_FALSE(store_->stat(id));
    writer->write(Pattern(5).next(600 * 1024));
    EXPECT_FALSE(store_->stat(id));
    EXPECT_EQ(store_->open(id), nullptr);
    EXPECT_FALSE(store_->remove(id));
    writer->commit();
    EXPECT_TRUE(store_->stat(id));
}

TEST_P(StoreContract, ChosenIdIsUsedAndRewritable) {
    const std::string id = "0123456789abcdef01234567";
    NewBlob blob{"o", "f", "t"};
    blob.id = id;
    auto first = store_->create(blob);
    EXPECT_EQ(first->id(), id);
    first->write("first");
    EXPECT_EQ(first->commit().id, id);
    ASSERT_TRUE(store_->stat(id));
    EXPECT_EQ(store_->stat(id)->size, 5u);
    store_->remove(id);  // GridFS needs this before the same id is written again
    auto second = store_->create(blob);
    second->write("second!");
    second->commit();
    EXPECT_EQ(store_->stat(id)->size, 7u);
    NewBlob bad{"o", "f", "t"};
    bad.id = "../../etc/passwd";
    EXPECT_THROW(store_->create(bad), Error);
}

TEST_P(StoreContract, EmptyBlob) {
    auto writer = store_->create({"o", "empty.bin", "application/octet-stream"});
    BlobInfo info = writer->commit();
    EXPECT_EQ(info.size, 0u);
    EXPECT_EQ(info.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    auto stat = store_->stat(info.id);
    ASSERT_TRUE(stat);
    EXPECT_EQ(stat->size, 0u);
    auto reader = store_->open(info.id);
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(reader->remaining(), 0u);
    EXPECT_EQ(read_all(*reader), "");
    auto past = store_->open(info.id, 5, 5);
    ASSERT_NE(past, nullptr);
    EXPECT_EQ(read_all(*past), "");
}

TEST_P(StoreContract, TwentyMebibytesStreamIn64KiBChunks) {
    constexpr size_t kChunk = 64 * 1024;
    constexpr size_t kTotal = 20 * 1024 * 1024;
    Pattern pattern(6);
    std::string expected_sha;
    {
        // Hash what we send independently of the store.
        std::string all;
        all.reserve(kTotal);
        auto writer = store_->create({"o", "big.mp4", "video/mp4"});
        for (size_t at = 0; at < kTotal; at += kChunk) {
            std::string chunk = pattern.next(kChunk);
            writer->write(chunk);
            all += chunk;
        }
        expected_sha = sha256_hex(all);
        BlobInfo info = writer->commit();
        EXPECT_EQ(info.size, kTotal);
        EXPECT_EQ(info.sha256, expected_sha);

        auto reader = store_->open(info.id);
        ASSERT_NE(reader, nullptr);
        std::string back;
        back.reserve(kTotal);
        std::string buffer(kChunk, '\0');
        while (size_t n = reader->read(buffer.data(), buffer.size())) back.append(buffer.data(), n);
        EXPECT_EQ(back.size(), kTotal);
        EXPECT_EQ(sha256_hex(back), expected_sha);
    }
}

TEST_P(StoreContract, ConcurrentWritersAllSucceed) {
    constexpr int kThreads = 8;
    constexpr int kPerThread = 10;
    std::vector<std::vector<std::pair<std::string, std::string>>> written(kThreads);  // id, content
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            try {
                Pattern pattern(100 + t);
                for (int i = 0; i < kPerThread; ++i) {
                    std::string content = pattern.next(static_cast<size_t>(1000 + t * 997 + i * 131));
                    auto writer = store_->create({"owner-" + std::to_string(t), "f" + std::to_string(i), "t"});
                    writer->write(content.substr(0, content.size() / 2));
                    writer->write(content.substr(content.size() / 2));
                    written[t].emplace_back(writer->commit().id, content);
                }
            } catch (const std::exception& e) {
                errors[t] = e.what();
            }
        });
    }
    for (auto& thread : threads) thread.join();
    std::set<std::string> ids;
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(errors[t], "");
        for (const auto& [id, content] : written[t]) {
            ids.insert(id);
            EXPECT_EQ(get(id), content);
            auto info = store_->stat(id);
            ASSERT_TRUE(info);
            EXPECT_EQ(info->owner, "owner-" + std::to_string(t));
        }
    }
    EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_P(StoreContract, CheckReportsNoProblem) { EXPECT_TRUE(store_->check()); }

TEST_P(StoreContract, DescribeNamesTheStoreWithoutCredentials) {
    std::string text = store_->describe();
    if (GetParam() == Kind::file) {
        EXPECT_EQ(text, "file://" + root_ + "/videos");
    } else {
        EXPECT_EQ(text.find('@'), std::string::npos) << text;
        EXPECT_NE(text.find(database_), std::string::npos) << text;
    }
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::Values(Kind::file, Kind::gridfs),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                             return info.param == Kind::file ? "File" : "GridFS";
                         });

// What only GridFS has: chunks, and a pool of clients.
class GridFsStore : public StoreContract {
  protected:
    // The test server's URL with extra options.
    std::string uri_with(const std::string& options) const {
        if (uri_.find('?') != std::string::npos) return uri_ + "&" + options;
        return uri_ + (uri_.back() == '/' ? "?" : "/?") + options;
    }
};

TEST_P(GridFsStore, ARangeReadStartsAtItsChunk) {
    std::string data = Pattern(9).next(600 * 1024 + 5);  // chunks 0, 1 and 2 of 255 KiB
    std::string id = put(data).id;
    // Take chunk 0 away: a read from inside chunk 1 must not need it (the bucket's own stream would read it first).
    Db db = database();
    CollectionPtr chunks(mongoc_database_get_collection(db.get(), "fs.chunks"));
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, id.c_str());
    bson_t* filter = BCON_NEW("files_id", BCON_OID(&oid), "n", BCON_INT32(0));
    bson_error_t error{};
    ASSERT_TRUE(mongoc_collection_delete_one(chunks.get(), filter, nullptr, nullptr, &error)) << error.message;
    bson_destroy(filter);
    EXPECT_EQ(get(id, 300000), data.substr(300000));
    EXPECT_EQ(get(id, 255 * 1024, 10), data.substr(255 * 1024, 10)) << "the first byte of chunk 1";
    auto whole = store_->open(id);
    ASSERT_NE(whole, nullptr);
    EXPECT_THROW(read_all(*whole), Error) << "a read from the start does need chunk 0";
}

TEST_P(GridFsStore, AnExhaustedClientPoolFailsAfterItsWaitInsteadOfBlocking) {
    auto small = open_store(uri_with("maxPoolSize=2&waitQueueTimeoutMS=200"), database_);
    std::string id = put("some bytes").id;
    auto first = small->open(id);  // each open reader holds a pooled client until it is destroyed
    auto second = small->open(id);
    ASSERT_TRUE(first && second);
    EXPECT_THROW(small->open(id), Error);
    EXPECT_THROW(small->stat(id), Error);
    first.reset();
    auto third = small->open(id);
    ASSERT_NE(third, nullptr);
    EXPECT_EQ(read_all(*third), "some bytes");
}

// An ObjectId made `seconds_ago`, as libmongoc makes them (the time first).
bson_oid_t oid_from(int64_t seconds_ago) {
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    uint32_t when = static_cast<uint32_t>(std::time(nullptr) - seconds_ago);
    oid.bytes[0] = static_cast<uint8_t>(when >> 24);
    oid.bytes[1] = static_cast<uint8_t>(when >> 16);
    oid.bytes[2] = static_cast<uint8_t>(when >> 8);
    oid.bytes[3] = static_cast<uint8_t>(when);
    return oid;
}

TEST_P(GridFsStore, TheSpecsIndexesAreMadeAtStartUp) {
    ASSERT_TRUE(store_->check());
    Db db = database();
    CollectionPtr chunks(mongoc_database_get_collection(db.get(), "fs.chunks"));
    CHandle<mongoc_cursor_t, mongoc_cursor_destroy> cursor(
        mongoc_collection_find_indexes_with_opts(chunks.get(), nullptr));
    const bson_t* index = nullptr;
    bool unique_by_file_and_chunk = false;
    while (mongoc_cursor_next(cursor.get(), &index)) {
        bson_iter_t iter;
        if (bson_iter_init_find(&iter, index, "name") &&
            std::string(bson_iter_utf8(&iter, nullptr)) == "files_id_1_n_1") {
            unique_by_file_and_chunk = bson_iter_init_find(&iter, index, "unique") && bson_iter_as_bool(&iter);
        }
    }
    EXPECT_TRUE(unique_by_file_and_chunk) << "before any upload: reads by file and chunk never scan";
}

TEST_P(GridFsStore, AnUploadCutShortIsRemovedOnceIdleAndNothingElse) {
    std::string kept = put(Pattern(3).next(300 * 1024)).id;
    Db db = database();
    CollectionPtr chunks(mongoc_database_get_collection(db.get(), "fs.chunks"));
    CollectionPtr files(mongoc_database_get_collection(db.get(), "fs.files"));
    bson_error_t error{};
    auto insert_chunk = [&](const bson_oid_t& file, int n, int64_t written_seconds_ago) {
        bson_oid_t id = oid_from(written_seconds_ago);
        std::string data(1024, 'x');
        bson_t* chunk = BCON_NEW("_id", BCON_OID(&id), "files_id", BCON_OID(&file), "n", BCON_INT32(n), "data",
                                 BCON_BIN(BSON_SUBTYPE_BINARY, reinterpret_cast<const uint8_t*>(data.data()),
                                          static_cast<uint32_t>(data.size())));
        ASSERT_TRUE(mongoc_collection_insert_one(chunks.get(), chunk, nullptr, nullptr, &error)) << error.message;
        bson_destroy(chunk);
    };
    // A process killed mid-upload two hours ago: two chunks, no files document.
    bson_oid_t killed = oid_from(3 * 3600);
    insert_chunk(killed, 0, 3 * 3600);
    insert_chunk(killed, 1, 2 * 3600);
    // One killed between its last chunk and its commit: a pending files document.
    bson_oid_t uncommitted = oid_from(2 * 3600);
    insert_chunk(uncommitted, 0, 2 * 3600);
    bson_t* pending =
        BCON_NEW("_id", BCON_OID(&uncommitted), "length", BCON_INT64(1024), "chunkSize", BCON_INT32(255 * 1024),
                 "filename", BCON_UTF8("x.mp4"), "metadata", "{", "pending", BCON_BOOL(true), "}");
    ASSERT_TRUE(mongoc_collection_insert_one(files.get(), pending, nullptr, nullptr, &error)) << error.message;
    bson_destroy(pending);
    // A slow upload that started long ago and wrote a chunk a minute ago: alive.
    bson_oid_t slow = oid_from(5 * 3600);
    insert_chunk(slow, 0, 5 * 3600);
    insert_chunk(slow, 1, 60);
    // A live upload through the store, not committed yet.
    auto live = store_->create({"owner-1", "live.mp4", "video/mp4"});
    live->write(Pattern(5).next(300 * 1024));

    EXPECT_EQ(store_->remove_abandoned(std::chrono::hours(1)), 2u);
    auto count = [&](mongoc_collection_t* collection, const bson_oid_t& file, const char* field) {
        bson_t* filter = BCON_NEW(field, BCON_OID(&file));
        int64_t n = mongoc_collection_count_documents(collection, filter, nullptr, nullptr, nullptr, &error);
        bson_destroy(filter);
        return n;
    };
    EXPECT_EQ(count(chunks.get(), killed, "files_id"), 0);
    EXPECT_EQ(count(chunks.get(), uncommitted, "files_id"), 0);
    EXPECT_EQ(count(files.get(), uncommitted, "_id"), 0);
    EXPECT_EQ(count(chunks.get(), slow, "files_id"), 2) << "written to within the hour";
    EXPECT_EQ(get(kept), Pattern(3).next(300 * 1024));
    auto info = live->commit();
    EXPECT_EQ(get(info.id), Pattern(5).next(300 * 1024)) << "an upload in progress is untouched";
    EXPECT_EQ(store_->remove_abandoned(std::chrono::hours(1)), 0u) << "nothing more";
}

INSTANTIATE_TEST_SUITE_P(Stores, GridFsStore, ::testing::Values(Kind::gridfs),
                         [](const ::testing::TestParamInfo<Kind>&) { return std::string("GridFS"); });

}  // namespace
}  // namespace mp3c::storage
