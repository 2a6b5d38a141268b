// What is particular to the file:// store (the shared behaviour is in store_contract_test.cpp), and open_store's
// URL handling.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "mp3c/crypto.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::storage {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void spit(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

std::vector<fs::path> files_under(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        if (!entry.is_directory()) out.push_back(entry.path());
    }
    return out;
}

class FileStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char path[] = "/tmp/mp3c_file_store_test_XXXXXX";
        ASSERT_NE(::mkdtemp(path), nullptr);
        root_ = path;
        dir_ = root_ / "videos";
        store_ = open_store("file://" + root_.string(), "videos");
    }
    void TearDown() override {
        store_.reset();
        fs::permissions(dir_ / "tmp", fs::perms::owner_all, fs::perm_options::add);
        fs::remove_all(root_);
    }

    fs::path data_path(const std::string& id) const { return dir_ / id.substr(0, 2) / id; }
    fs::path meta_path(const std::string& id) const { return dir_ / id.substr(0, 2) / (id + ".json"); }
    bool tmp_is_empty() const { return fs::is_empty(dir_ / "tmp"); }

    fs::path root_;
    fs::path dir_;
    std::unique_ptr<BlobStore> store_;
};

TEST_F(FileStoreTest, CreatesTheBucketDirectory) {
    EXPECT_TRUE(fs::is_directory(dir_));
    EXPECT_TRUE(fs::is_directory(dir_ / "tmp"));
    auto perms = fs::status(dir_).permissions();
    EXPECT_EQ(perms & fs::perms::others_all, fs::perms::none);  // 0750 (less the umask)
}

TEST_F(FileStoreTest, CreatesMissingParentDirectories) {
    auto store = open_store("file://" + (root_ / "a" / "b").string() + "/", "mp3s");
    EXPECT_TRUE(fs::is_directory(root_ / "a" / "b" / "mp3s" / "tmp"));
    EXPECT_EQ(store->describe(), "file://" + (root_ / "a" / "b" / "mp3s").string());
}

TEST_F(FileStoreTest, DataAndMetadataAppearOnlyAtCommit) {
    auto writer = store_->create({"user-7", "clip.mp4", "video/mp4"});
    std::string id = writer->id();
    writer->write("hello ");
    writer->write("world");
    EXPECT_FALSE(fs::exists(data_path(id)));
    EXPECT_FALSE(fs::exists(meta_path(id)));
    auto parts = files_under(dir_ / "tmp");
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].filename().string().rfind(id + ".", 0), 0u) << parts[0];
    EXPECT_EQ(parts[0].extension(), ".part");
    EXPECT_EQ(fs::status(parts[0]).permissions() & fs::perms::others_all, fs::perms::none);

    BlobInfo info = writer->commit();
    EXPECT_TRUE(tmp_is_empty());
    EXPECT_EQ(slurp(data_path(id)), "hello world");
    auto meta = nlohmann::json::parse(slurp(meta_path(id)));
    EXPECT_EQ(meta["id"], id);
    EXPECT_EQ(meta["size"], 11);
    EXPECT_EQ(meta["sha256"], crypto::to_hex(crypto::sha256("hello world")));
    EXPECT_EQ(meta["content_type"], "video/mp4");
    EXPECT_EQ(meta["filename"], "clip.mp4");
    EXPECT_EQ(meta["owner"], "user-7");
    EXPECT_EQ(meta["created_ms"], info.created_ms);
    EXPECT_EQ(files_under(dir_).size(), 2u);
}

TEST_F(FileStoreTest, AbortEmptiesTheTmpDirectory) {
    auto writer = store_->create({"o", "f", "t"});
    writer->write("partial");
    EXPECT_FALSE(tmp_is_empty());
    writer->abort();
    EXPECT_TRUE(tmp_is_empty());
    EXPECT_TRUE(files_under(dir_).empty());
}

TEST_F(FileStoreTest, FileNamesAreKeptInMetadataOnly) {
    std::vector<std::string> names = {"../../etc/passwd",
                                      "a/b/c.mp3",
                                      "/absolute/path.mp3",
                                      "..",
                                      ".",
                                      "",
                                      "日本語の歌 🎵.mp3",
                                      "with\nnewline and \"quotes\"\\",
                                      "C:\\Windows\\x.mp3"};
    std::vector<std::string> ids;
    for (const auto& name : names) {
        auto writer = store_->create({"o", name, "audio/mpeg"});
        writer->write(name + "!");
        BlobInfo info = writer->commit();
        EXPECT_EQ(info.filename, name);
        ids.push_back(info.id);
        auto stat = store_->stat(info.id);
        ASSERT_TRUE(stat);
        EXPECT_EQ(stat->filename, name);
    }
    // Nothing but <2 hex>/<id> and <2 hex>/<id>.json anywhere (no std::regex: GCC 12 warns inside it at -O2).
    auto files = files_under(dir_);
    EXPECT_EQ(files.size(), 2 * names.size());
    for (const auto& file : files) {
        std::string relative = fs::relative(file, dir_).string();
        ASSERT_GE(relative.size(), 27u) << relative;
        std::string id = relative.substr(3, 24);
        EXPECT_TRUE(is_valid_id(id)) << relative;
        EXPECT_EQ(relative.substr(0, 3), id.substr(0, 2) + "/") << relative;
        EXPECT_TRUE(relative.size() == 27 || relative.substr(27) == ".json") << relative;
    }
    EXPECT_EQ(files_under(root_).size(), files.size());
}

TEST_F(FileStoreTest, InvalidUtf8AndNulInTextAreCleanedConsistently) {
    using namespace std::string_literals;
    auto writer = store_->create({"own\0er"s, "bad\xff name\0.mp3"s, "audio/mpeg"});
    BlobInfo info = writer->commit();
    EXPECT_EQ(info.filename, "bad\xef\xbf\xbd name.mp3");  // U+FFFD, NUL dropped
    EXPECT_EQ(info.owner, "owner");
    auto stat = store_->stat(info.id);
    ASSERT_TRUE(stat);
    EXPECT_EQ(stat->filename, info.filename);
    EXPECT_EQ(stat->owner, info.owner);
}

TEST_F(FileStoreTest, BlobsSurviveReopening) {
    std::string id = store_->create({"o", "f", "t"})->commit().id;  // an empty blob
    auto writer = store_->create({"o", "f", "t"});
    writer->write("kept");
    std::string id2 = writer->commit().id;
    store_ = open_store("file://" + root_.string(), "videos");
    EXPECT_TRUE(store_->stat(id));
    auto reader = store_->open(id2);
    ASSERT_NE(reader, nullptr);
    char buffer[16];
    EXPECT_EQ(reader->read(buffer, sizeof buffer), 4u);
    EXPECT_EQ(std::string(buffer, 4), "kept");
}

TEST_F(FileStoreTest, BucketsAreSeparate) {
    auto mp3s = open_store("file://" + root_.string(), "mp3s");
    auto writer = store_->create({"o", "f", "t"});
    writer->write("video");
    std::string id = writer->commit().id;
    EXPECT_FALSE(mp3s->stat(id));
    EXPECT_TRUE(store_->stat(id));
}

TEST_F(FileStoreTest, MetadataWithoutDataIsNotABlob) {
    auto writer = store_->create({"o", "f", "t"});
    writer->write("x");
    std::string id = writer->commit().id;
    fs::remove(data_path(id));
    EXPECT_FALSE(store_->stat(id));
    EXPECT_EQ(store_->open(id), nullptr);
}

TEST_F(FileStoreTest, DataWithoutMetadataIsNotABlob) {
    auto writer = store_->create({"o", "f", "t"});
    writer->write("x");
    std::string id = writer->commit().id;
    fs::remove(meta_path(id));
    EXPECT_FALSE(store_->stat(id));
    EXPECT_EQ(store_->open(id), nullptr);
    EXPECT_FALSE(store_->remove(id));
}

TEST_F(FileStoreTest, CorruptMetadataIsAnError) {
    auto writer = store_->create({"o", "f", "t"});
    writer->write("x");
    std::string id = writer->commit().id;
    spit(meta_path(id), "{not json");
    EXPECT_THROW(store_->stat(id), Error);
}

TEST_F(FileStoreTest, SweepsStalePartFilesAtStartup) {
    fs::path tmp = dir_ / "tmp";
    spit(tmp / "0123456789abcdef01234567.aaaa.part", "old upload");
    spit(tmp / "0123456789abcdef01234567.aaaa.json.part", "{}");
    spit(tmp / "fedcba9876543210fedcba98.bbbb.part", "live upload");
    spit(tmp / "unrelated.txt", "not ours");
    timespec two_hours_ago[2] = {{std::time(nullptr) - 7200, 0}, {std::time(nullptr) - 7200, 0}};
    for (const char* name :
         {"0123456789abcdef01234567.aaaa.part", "0123456789abcdef01234567.aaaa.json.part", "unrelated.txt"}) {
        ASSERT_EQ(::utimensat(AT_FDCWD, (tmp / name).c_str(), two_hours_ago, 0), 0);
    }
    store_ = open_store("file://" + root_.string(), "videos");
    EXPECT_FALSE(fs::exists(tmp / "0123456789abcdef01234567.aaaa.part"));
    EXPECT_FALSE(fs::exists(tmp / "0123456789abcdef01234567.aaaa.json.part"));
    EXPECT_TRUE(fs::exists(tmp / "fedcba9876543210fedcba98.bbbb.part"));
    EXPECT_TRUE(fs::exists(tmp / "unrelated.txt"));
}

TEST_F(FileStoreTest, RemovesAbandonedPartFilesWhileRunning) {
    fs::path tmp = dir_ / "tmp";
    auto live = store_->create({"owner-1", "live.mp4", "video/mp4"});
    live->write("still coming");
    spit(tmp / "0123456789abcdef01234567.cccc.part", "a killed converter's upload");
    timespec ninety_minutes_ago[2] = {{std::time(nullptr) - 5400, 0}, {std::time(nullptr) - 5400, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (tmp / "0123456789abcdef01234567.cccc.part").c_str(), ninety_minutes_ago, 0), 0);
    EXPECT_EQ(store_->remove_abandoned(std::chrono::hours(1)), 1u);
    EXPECT_FALSE(fs::exists(tmp / "0123456789abcdef01234567.cccc.part"));
    auto info = live->commit();
    EXPECT_EQ(store_->stat(info.id)->size, 12u) << "the upload in progress is untouched";
}

TEST_F(FileStoreTest, CheckReportsAnUnwritableDirectory) {
    if (::geteuid() == 0) {
        GTEST_SKIP() << "running as root, which ignores directory permissions: a read-only store directory cannot be "
                        "simulated";
    }
    fs::permissions(dir_ / "tmp", fs::perms::owner_read | fs::perms::owner_exec, fs::perm_options::replace);
    auto checked = store_->check();
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().find((dir_ / "tmp").string()), std::string::npos) << checked.error();
    EXPECT_THROW(store_->create({"o", "f", "t"}), Error);
}

TEST_F(FileStoreTest, CheckReportsAMissingDirectory) {
    fs::remove_all(dir_);
    auto checked = store_->check();
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().find(dir_.string()), std::string::npos) << checked.error();
    fs::create_directories(dir_ / "tmp");  // for TearDown
}

// A full disk needs a small file system of its own (root and a mount); RLIMIT_FSIZE makes write() fail the same way
// (EFBIG instead of ENOSPC), for any user.
TEST_F(FileStoreTest, AFailedWriteThrowsAndLeavesNothing) {
    struct Restore {
        rlimit saved{};
        void (*handler)(int);
        Restore() : handler(std::signal(SIGXFSZ, SIG_IGN)) { ::getrlimit(RLIMIT_FSIZE, &saved); }
        ~Restore() {
            ::setrlimit(RLIMIT_FSIZE, &saved);
            std::signal(SIGXFSZ, handler);
        }
    } restore;
    rlimit small = restore.saved;
    small.rlim_cur = 64 * 1024;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);

    auto writer = store_->create({"o", "f", "t"});
    std::string id = writer->id();
    try {
        // More than the writer stages before it writes (1 MiB with O_DIRECT), so the failure shows in write().
        writer->write(std::string(3 << 20, 'x'));
        FAIL() << "write past RLIMIT_FSIZE succeeded";
    } catch (const Error& e) {
        std::string what = e.what();
        EXPECT_EQ(what.rfind("write " + (dir_ / "tmp").string() + "/" + id + ".", 0), 0u) << what;
        EXPECT_NE(what.find("File too large"), std::string::npos) << what;
    }
    EXPECT_THROW(writer->commit(), Error);
    writer.reset();
    EXPECT_TRUE(tmp_is_empty());
    EXPECT_TRUE(files_under(dir_).empty());
}

TEST(OpenStore, RejectsOtherSchemes) {
    for (const char* url : {"", "s3://bucket", "/var/lib/mp3c", "FILE:///tmp", "http://x", "mongodb:/x"}) {
        try {
            open_store(url, "videos");
            ADD_FAILURE() << url;
        } catch (const Error& e) {
            EXPECT_STREQ(e.what(), "STORAGE_URL must start with file:// or mongodb://");
        }
    }
}

TEST(OpenStore, RejectsRelativePathsAndBadBuckets) {
    EXPECT_THROW(open_store("file://relative/dir", "videos"), Error);
    EXPECT_THROW(open_store("file://", "videos"), Error);
    EXPECT_THROW(open_store("file:///tmp/x?direct_io=maybe", "videos"), Error);
    EXPECT_THROW(open_store("file:///tmp/x?cache=none", "videos"), Error);
    for (const char* bucket : {"", "..", "a/b", "../etc", "with space", "x.y"}) {
        EXPECT_THROW(open_store("file:///tmp", bucket), Error) << bucket;
        EXPECT_THROW(open_store("mongodb://127.0.0.1:1", bucket), Error) << bucket;
    }
}

// No server is needed for these: libmongoc connects lazily, and port 1 refuses at once.
TEST(GridFsWithoutServer, DescribeHidesCredentialsAndOptions) {
    auto store = open_store(
        "mongodb://alice:s3cret@127.0.0.1:1,127.0.0.2:2/admin?authSource=admin&tlsCertificateKeyFilePassword=x",
        "videos");
    EXPECT_EQ(store->describe(), "mongodb://127.0.0.1:1,127.0.0.2:2/videos");
}

TEST(GridFsWithoutServer, RejectsAnInvalidUrlWithoutEchoingIt) {
    try {
        open_store("mongodb://alice:s3cret@", "videos");
        FAIL() << "accepted an URL without hosts";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
    }
}

TEST(GridFsWithoutServer, UnreachableServerIsAnErrorNotACrash) {
    auto store = open_store("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200", "videos");
    auto checked = store->check();
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().find("mongodb://127.0.0.1:1/videos"), std::string::npos) << checked.error();
    EXPECT_THROW(store->stat("0123456789abcdef01234567"), Error);
    EXPECT_THROW(store->open("0123456789abcdef01234567"), Error);
    EXPECT_THROW(store->remove("0123456789abcdef01234567"), Error);
    // Invalid ids never reach the server.
    EXPECT_EQ(store->open("../x"), nullptr);
    EXPECT_FALSE(store->stat("../x"));
    EXPECT_FALSE(store->remove("../x"));

    // Every upload asks the server about indexes at its first write, and an empty one inserts its files document
    // at commit: both fail, and neither may hang, nor may dropping the failed writer.
    auto small = store->create({"o", "f", "t"});
    EXPECT_THROW(small->write("x"), Error);
    EXPECT_THROW(small->commit(), Error);
    small.reset();

    auto empty = store->create({"o", "f", "t"});
    EXPECT_THROW(empty->commit(), Error);
    EXPECT_THROW(empty->write("x"), Error);
    empty.reset();

    auto large = store->create({"o", "f", "t"});
    EXPECT_THROW(large->write(std::string(1024 * 1024, 'x')), Error);
    EXPECT_THROW(large->commit(), Error);
}

}  // namespace
}  // namespace mp3c::storage

namespace mp3c::storage {
namespace {

// Sizes around the 4096-byte blocks that O_DIRECT writes, written in uneven chunks, read back byte for byte: with
// O_DIRECT (the default) and with ordinary buffered writes (?direct_io=off, and filesystems that refuse O_DIRECT).
TEST(FileStoreSizes, EverySizeRoundTripsWithAndWithoutDirectIo) {
    for (std::string query : {"", "?direct_io=on", "?direct_io=off"}) {
        const std::string& base = query;
        std::string root = "/tmp/mp3c_sizes_" + crypto::random_hex(4);
        auto store = open_store("file://" + root + query, "videos");
        for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{(1 << 20) - 1},
                            size_t{1 << 20}, size_t{(1 << 20) + 1}, size_t{(3 << 20) + 123}}) {
            std::string bytes(size, '\0');
            for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131) ^ (i >> 12));
            auto writer = store->create({"o", "f.bin", "application/octet-stream"});
            for (size_t at = 0, step = 1; at < size; at += step, step = step * 3 + 7) {
                writer->write(std::string_view(bytes).substr(at, step));
            }
            auto info = writer->commit();
            EXPECT_EQ(info.size, size) << base;
            EXPECT_EQ(info.sha256, crypto::to_hex(crypto::sha256(bytes))) << base << " " << size;
            auto reader = store->open(info.id);
            ASSERT_TRUE(reader);
            std::string back;
            char buffer[65536];
            while (size_t n = reader->read(buffer, sizeof buffer)) back.append(buffer, n);
            EXPECT_TRUE(back == bytes) << base << ": " << size << " bytes came back as " << back.size();
            EXPECT_EQ(fs::file_size(fs::path(root) / "videos" / info.id.substr(0, 2) / info.id), size);
        }
        fs::remove_all(root);
    }
}

}  // namespace
}  // namespace mp3c::storage
