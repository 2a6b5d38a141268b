#include "zip_stream.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mp3c/storage.hpp"

namespace mp3c::gateway {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kModified = 1'700'000'000'000;  // 2023-11-14 22:13:20 UTC

// Yields a string a few bytes at a time, so that entries end in the middle of the archive's reads.
class StringSource final : public http::BodySource {
  public:
    explicit StringSource(std::string data) : data_(std::move(data)) {}
    size_t read(char* buffer, size_t size) override {
        size_t n = std::min({size, size_t{5}, data_.size() - at_});
        std::memcpy(buffer, data_.data() + at_, n);
        at_ += n;
        return n;
    }

  private:
    std::string data_;
    size_t at_ = 0;
};

// Yields zeros: a 4 GiB entry that costs no memory.
class ZeroSource final : public http::BodySource {
  public:
    explicit ZeroSource(uint64_t size) : left_(size) {}
    size_t read(char* buffer, size_t size) override {
        auto n = static_cast<size_t>(std::min<uint64_t>(size, left_));
        std::memset(buffer, 0, n);
        left_ -= n;
        return n;
    }

  private:
    uint64_t left_;
};

ZipEntry text_entry(std::string name, std::string content, int64_t modified_ms = kModified) {
    uint64_t size = content.size();
    return {.name = std::move(name), .size = size, .modified_ms = modified_ms, .open = [content = std::move(content)] {
                return std::make_unique<StringSource>(content);
            }};
}

// The whole archive, read with buffers of varied sizes. Every read but the last fills its buffer.
std::string drain(ZipStream& zip) {
    std::string out;
    const size_t sizes[] = {1, 7, 64, 4096, 3};
    std::vector<char> buffer(4096);
    bool short_read = false;
    for (size_t i = 0;; ++i) {
        size_t want = sizes[i % std::size(sizes)];
        size_t n = zip.read(buffer.data(), want);
        if (n == 0) break;
        EXPECT_FALSE(short_read) << "a read returned less than asked before the end";
        short_read = n < want;
        out.append(buffer.data(), n);
    }
    return out;
}

// A directory of the test's own, removed at the end.
class ZipStreamTest : public ::testing::Test {
  protected:
    ZipStreamTest() : dir_(fs::temp_directory_path() / ("mp3c-zip-" + storage::new_id())) {
        fs::create_directories(dir_);
    }
    ~ZipStreamTest() override { fs::remove_all(dir_); }

    // Streams the archive into a file; its length() must be what it produced.
    fs::path write(ZipStream& zip) {
        std::string bytes = drain(zip);
        EXPECT_EQ(bytes.size(), zip.length());
        fs::path path = dir_ / "archive.zip";
        std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        return path;
    }

    fs::path dir_;
};

// What Python's zipfile makes of the archive: `script` runs with it open as `zf` and prints (no single quotes in it:
// it is passed in them).
std::string python_zip(const fs::path& archive, const std::string& script) {
    std::string command =
        "PYTHONIOENCODING=utf-8 python3 -c 'import sys, zipfile\nzf = zipfile.ZipFile(sys.argv[1])\n" + script + "' '" +
        archive.string() + "' 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) throw std::runtime_error("popen python3 failed");
    std::string out;
    char chunk[4096];
    while (size_t n = std::fread(chunk, 1, sizeof chunk, pipe)) out.append(chunk, n);
    int status = pclose(pipe);
    if (status != 0) out += "[python3 exited with " + std::to_string(WEXITSTATUS(status)) + "]";
    return out;
}

// One line per entry: name|size|content, then whether every CRC checks out (None: no bad entry).
const std::string kListing =
    "for i in zf.infolist(): print(i.filename, i.file_size, zf.read(i).decode(), sep=\"|\")\n"
    "print(\"testzip\", zf.testzip())\n";

TEST(UniqueEntryNames, LaterDuplicatesGetANumberBeforeTheExtension) {
    EXPECT_EQ(unique_entry_names({"a.mp3", "a.mp3", "A.mp3", "b.mp3"}),
              (std::vector<std::string>{"a.mp3", "a (2).mp3", "A (3).mp3", "b.mp3"}));
    EXPECT_EQ(unique_entry_names({"a (2).mp3", "a.mp3", "a.mp3"}),
              (std::vector<std::string>{"a (2).mp3", "a.mp3", "a (3).mp3"}))
        << "a number already taken is skipped";
    EXPECT_EQ(unique_entry_names({"x.tar.gz", "x.tar.gz", "noext", "NOEXT", ".mp3", ".mp3"}),
              (std::vector<std::string>{"x.tar.gz", "x.tar (2).gz", "noext", "NOEXT (2)", ".mp3", ".mp3 (2)"}));
}

TEST(UniqueEntryNames, NamesAreMadeSafeToUnpack) {
    EXPECT_EQ(unique_entry_names({"../x/y\\z\x01\x7f.mp3", "", "", "..", "\xC3\xA9t\xC3\xA9.mp3", "bad\xFF.mp3"}),
              (std::vector<std::string>{".._x_y_z__.mp3", "audio.mp3", "audio (2).mp3", "__", "\xC3\xA9t\xC3\xA9.mp3",
                                        "bad_.mp3"}));
}

TEST_F(ZipStreamTest, EntriesWithDuplicateNames) {
    auto names = unique_entry_names({"song.mp3", "Song.mp3", "\xC3\x89t\xC3\xA9.mp3"});
    ZipStream zip({text_entry(names[0], "ID3 first"), text_entry(names[1], "second, a little longer"),
                   text_entry(names[2], "3")});
    auto path = write(zip);
    EXPECT_EQ(python_zip(path, kListing),
              "song.mp3|9|ID3 first\n"
              "Song (2).mp3|23|second, a little longer\n"
              "\xC3\x89t\xC3\xA9.mp3|1|3\n"
              "testzip None\n");
    // Stored, data descriptor and UTF-8 flags, made on Unix as a plain rw-r--r-- file, the time in DOS form.
    EXPECT_EQ(python_zip(path,
                         "i = zf.infolist()[0]\n"
                         "print(i.compress_type, hex(i.flag_bits), i.create_system, oct(i.external_attr >> 16), "
                         "i.extract_version, i.date_time)\n"),
              "0 0x808 3 0o100644 20 (2023, 11, 14, 22, 13, 20)\n");
}

TEST_F(ZipStreamTest, EmptyArchive) {
    ZipStream zip({});
    EXPECT_EQ(zip.length(), 22u) << "only the end record";
    auto path = write(zip);
    EXPECT_EQ(python_zip(path, kListing), "testzip None\n");
}

TEST_F(ZipStreamTest, EmptyEntryAndATimeBefore1980) {
    ZipStream zip({text_entry("empty.mp3", "", 0), text_entry("after.mp3", "after")});
    auto path = write(zip);
    EXPECT_EQ(python_zip(path, kListing), "empty.mp3|0|\nafter.mp3|5|after\ntestzip None\n");
    EXPECT_EQ(python_zip(path, "print(zf.infolist()[0].date_time)\n"), "(1980, 1, 1, 0, 0, 0)\n");
}

TEST_F(ZipStreamTest, ForcedZip64IsReadable) {
    ZipStream zip({text_entry("one.mp3", "first"), text_entry("two.mp3", ""), text_entry("three.mp3", "third")},
                  {.force_zip64 = true});
    auto path = write(zip);
    EXPECT_EQ(python_zip(path, kListing), "one.mp3|5|first\ntwo.mp3|0|\nthree.mp3|5|third\ntestzip None\n");
    EXPECT_EQ(python_zip(path, "print([i.extract_version for i in zf.infolist()])\n"), "[45, 45, 45]\n");
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(bytes.find(std::string("PK\x06\x06", 4)), std::string::npos) << "the ZIP64 end record";
    EXPECT_NE(bytes.find(std::string("PK\x06\x07", 4)), std::string::npos) << "its locator";
}

TEST(ZipStream, OpensEachEntryOnlyWhenItsTurnComes) {
    int opened = 0;
    auto counted = [&opened](std::string name) {
        return ZipEntry{.name = name, .size = 3, .open = [&opened] {
                            ++opened;
                            return std::make_unique<StringSource>("abc");
                        }};
    };
    ZipStream zip({counted("a.mp3"), counted("b.mp3")});
    EXPECT_GT(zip.length(), 0u);
    EXPECT_EQ(opened, 0);
    char buffer[40];
    ASSERT_EQ(zip.read(buffer, sizeof buffer), sizeof buffer);  // a's header and data
    EXPECT_EQ(opened, 1);
    drain(zip);
    EXPECT_EQ(opened, 2);
}

TEST(ZipStream, AnEntryThatDoesNotYieldItsDeclaredSizeThrows) {
    auto declared = [](uint64_t size, std::string content) {
        return ZipEntry{
            .name = "a.mp3", .size = size, .open = [content] { return std::make_unique<StringSource>(content); }};
    };
    ZipStream fewer({declared(10, "abc")});
    EXPECT_THROW(drain(fewer), std::runtime_error);
    EXPECT_THROW(drain(fewer), std::runtime_error) << "and it stays failed";
    ZipStream more({declared(2, "abc")});
    EXPECT_THROW(drain(more), std::runtime_error);
    ZipStream none({ZipEntry{.name = "a.mp3", .size = 1, .open = [] { return std::unique_ptr<http::BodySource>(); }}});
    EXPECT_THROW(drain(none), std::runtime_error);
}

// CRC-32 of n zero bytes, by combining the CRCs of 1 MiB blocks (not the way the stream computes it).
uint32_t crc_of_zeros(uint64_t n) {
    std::vector<unsigned char> zeros(1 << 20);
    uLong block = crc32(0, zeros.data(), static_cast<uInt>(zeros.size()));
    uLong crc = crc32(0, nullptr, 0);
    while (n > 0) {
        auto step = static_cast<size_t>(std::min<uint64_t>(n, zeros.size()));
        uLong part = step == zeros.size() ? block : crc32(0, zeros.data(), static_cast<uInt>(step));
        crc = crc32_combine(crc, part, static_cast<z_off_t>(step));
        n -= step;
    }
    return static_cast<uint32_t>(crc);
}

constexpr uint64_t kBig = (uint64_t{4} << 30) + 10;

TEST_F(ZipStreamTest, Zip64ForAnEntryOf4GiB) {
    const std::string small = "after the big one";
    ZipStream zip({ZipEntry{.name = "big.mp3",
                            .size = kBig,
                            .modified_ms = kModified,
                            .open = [] { return std::make_unique<ZeroSource>(kBig); }},
                   text_entry("small.mp3", small)});

    // Written sparsely: a chunk of zeros is a hole, so the test needs no 4 GB of disk.
    fs::path path = dir_ / "big.zip";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
    std::vector<char> buffer(1 << 20);
    const std::vector<char> zeros(buffer.size());
    uint64_t total = 0;
    while (size_t n = zip.read(buffer.data(), buffer.size())) {
        if (std::memcmp(buffer.data(), zeros.data(), n) == 0) {
            ASSERT_GE(::lseek(fd, static_cast<off_t>(n), SEEK_CUR), 0) << std::strerror(errno);
        } else {
            ASSERT_EQ(::write(fd, buffer.data(), n), static_cast<ssize_t>(n)) << std::strerror(errno);
        }
        total += n;
    }
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(total)), 0) << std::strerror(errno);
    closer.reset();
    EXPECT_EQ(total, zip.length());

    // Python reads the directory and the entry after the big one (past 4 GiB), not the big one itself: its CRC is
    // compared with one computed here.
    auto crc_text = [](uint32_t crc) {
        char text[9];
        std::snprintf(text, sizeof text, "%08x", crc);
        return std::string(text);
    };
    auto small_crc =
        static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(small.data()), static_cast<uInt>(small.size())));
    EXPECT_EQ(python_zip(path,
                         "for i in zf.infolist(): print(i.filename, i.file_size, \"%08x\" % i.CRC, sep=\"|\")\n"
                         "print(zf.read(\"small.mp3\").decode())\n"),
              "big.mp3|4294967306|" + crc_text(crc_of_zeros(kBig)) + "\n" + "small.mp3|17|" + crc_text(small_crc) +
                  "\n" + small + "\n");
}

}  // namespace
}  // namespace mp3c::gateway
