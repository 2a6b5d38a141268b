#include "zip_stream.hpp"

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "mp3c/strings.hpp"

namespace mp3c::gateway {

namespace {

// APPNOTE.TXT (PKWARE's ZIP specification) 4.3.
constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kDataDescriptorSignature = 0x08074b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint16_t kZip64ExtraId = 0x0001;

constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kLocalZip64ExtraSize = 4 + 16;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kEndSize = 22;

constexpr uint32_t kMax32 = 0xFFFFFFFF;
constexpr uint16_t kMax16 = 0xFFFF;

// Bit 3: the CRC-32 and sizes follow the data (a data descriptor), since the CRC is only known once it has streamed.
// Bit 11: the names are UTF-8.
constexpr uint16_t kFlags = (1 << 3) | (1 << 11);
constexpr uint16_t kStored = 0;
constexpr uint16_t kVersion = 20;       // 2.0: stored entries, data descriptors
constexpr uint16_t kVersionZip64 = 45;  // 4.5: ZIP64
constexpr uint16_t kMadeByUnix = 3 << 8;
// A regular file, rw-r--r--: without it unzip may give the extracted files no permissions.
constexpr uint32_t kExternalAttributes = 0100644u << 16;

void put16(std::string& out, uint16_t v) {
    for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put32(std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put64(std::string& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t clamp32(uint64_t v, bool overflows) { return overflows ? kMax32 : static_cast<uint32_t>(v); }

size_t data_descriptor_size(bool zip64) { return zip64 ? 24 : 16; }

size_t central_extra_size(bool size_overflows, bool offset_overflows) {
    size_t fields = (size_overflows ? 2 : 0) + (offset_overflows ? 1 : 0);
    return fields == 0 ? 0 : 4 + 8 * fields;
}

// DOS date and time (no time zone: written in UTC), two-second resolution, 1980 to 2107.
std::pair<uint16_t, uint16_t> dos_date_time(int64_t modified_ms) {
    using namespace std::chrono;
    constexpr auto first = sys_days{year{1980} / January / 1};
    constexpr auto last = sys_days{year{2107} / December / 31} + hours{23} + minutes{59} + seconds{58};
    auto t = sys_time<milliseconds>{milliseconds{modified_ms}};
    t = std::clamp(t, sys_time<milliseconds>{first}, sys_time<milliseconds>{last});
    auto day = floor<days>(t);
    year_month_day ymd{day};
    hh_mm_ss hms{floor<seconds>(t - day)};
    auto date = static_cast<uint16_t>((static_cast<int>(ymd.year()) - 1980) << 9 |
                                      static_cast<unsigned>(ymd.month()) << 5 | static_cast<unsigned>(ymd.day()));
    auto time =
        static_cast<uint16_t>(hms.hours().count() << 11 | hms.minutes().count() << 5 | hms.seconds().count() / 2);
    return {date, time};
}

}  // namespace

ZipStream::ZipStream(std::vector<ZipEntry> entries, ZipOptions options)
    : entries_(std::move(entries)), options_(options) {
    bool force = options_.force_zip64;
    bool any_zip64 = false;
    uint64_t at = 0;
    layout_.reserve(entries_.size());
    for (const ZipEntry& e : entries_) {
        if (e.name.size() > kMax16) throw std::invalid_argument("a ZIP entry name is longer than 65535 bytes");
        Layout l;
        l.offset = at;
        l.size_overflows = force || e.size >= kMax32;
        l.offset_overflows = force || at >= kMax32;
        l.zip64 = l.size_overflows || l.offset_overflows;
        any_zip64 = any_zip64 || l.zip64;
        std::tie(l.dos_date, l.dos_time) = dos_date_time(e.modified_ms);
        at += kLocalHeaderSize + e.name.size() + (l.zip64 ? kLocalZip64ExtraSize : 0) + e.size +
              data_descriptor_size(l.zip64);
        central_size_ += kCentralHeaderSize + e.name.size() + central_extra_size(l.size_overflows, l.offset_overflows);
        layout_.push_back(l);
    }
    central_offset_ = at;
    zip64_end_ =
        force || any_zip64 || entries_.size() >= kMax16 || central_offset_ >= kMax32 || central_size_ >= kMax32;
    length_ = central_offset_ + central_size_ + (zip64_end_ ? kZip64EndSize + kZip64LocatorSize : 0) + kEndSize;
    central_.reserve(central_size_);
}

size_t ZipStream::read(char* buffer, size_t size) {
    if (failed_) throw std::runtime_error("the ZIP stream failed earlier");
    size_t done = 0;
    while (done < size) {
        if (pending_at_ < pending_.size()) {
            size_t n = std::min(size - done, pending_.size() - pending_at_);
            std::memcpy(buffer + done, pending_.data() + pending_at_, n);
            pending_at_ += n;
            done += n;
        } else if (source_) {
            if (remaining_ == 0) {
                finish_entry();
                continue;
            }
            size_t want = static_cast<size_t>(std::min<uint64_t>(size - done, remaining_));
            size_t n = source_->read(buffer + done, want);
            if (n == 0) fail("ZIP entry \"" + entries_[current_].name + "\" ended before its declared size");
            crc_ = static_cast<uint32_t>(crc32_z(crc_, reinterpret_cast<const Bytef*>(buffer + done), n));
            remaining_ -= n;
            done += n;
        } else if (current_ < entries_.size()) {
            start_entry();
        } else if (!trailer_started_) {
            start_trailer();
        } else {
            break;  // the end of the archive
        }
    }
    return done;
}

void ZipStream::start_entry() {
    const ZipEntry& e = entries_[current_];
    const Layout& l = layout_[current_];
    source_ = e.open ? e.open() : nullptr;
    if (!source_) fail("ZIP entry \"" + e.name + "\" could not be opened");
    remaining_ = e.size;
    crc_ = static_cast<uint32_t>(crc32_z(0, nullptr, 0));

    // The CRC and sizes are zero here (ZIP64: 0xFFFFFFFF, and zeros in the extra field): the data descriptor after the
    // data has them.
    pending_.clear();
    pending_at_ = 0;
    put32(pending_, kLocalHeaderSignature);
    put16(pending_, l.zip64 ? kVersionZip64 : kVersion);
    put16(pending_, kFlags);
    put16(pending_, kStored);
    put16(pending_, l.dos_time);
    put16(pending_, l.dos_date);
    put32(pending_, 0);
    put32(pending_, l.zip64 ? kMax32 : 0);
    put32(pending_, l.zip64 ? kMax32 : 0);
    put16(pending_, static_cast<uint16_t>(e.name.size()));
    put16(pending_, static_cast<uint16_t>(l.zip64 ? kLocalZip64ExtraSize : 0));
    pending_ += e.name;
    if (l.zip64) {
        // APPNOTE 4.5.3: in a local header the ZIP64 field holds both sizes; readers take it to mean 8-byte sizes in
        // the data descriptor.
        put16(pending_, kZip64ExtraId);
        put16(pending_, 16);
        put64(pending_, 0);
        put64(pending_, 0);
    }
}

void ZipStream::finish_entry() {
    // A source with more than it declared would shift every later offset: the archive would be corrupt.
    char probe;
    if (source_->read(&probe, 1) != 0) {
        fail("ZIP entry \"" + entries_[current_].name + "\" yielded more than its declared size");
    }
    source_.reset();
    const ZipEntry& e = entries_[current_];
    const Layout& l = layout_[current_];

    pending_.clear();
    pending_at_ = 0;
    put32(pending_, kDataDescriptorSignature);
    put32(pending_, crc_);
    if (l.zip64) {
        put64(pending_, e.size);
        put64(pending_, e.size);
    } else {
        put32(pending_, static_cast<uint32_t>(e.size));
        put32(pending_, static_cast<uint32_t>(e.size));
    }

    uint16_t version = l.zip64 ? kVersionZip64 : kVersion;
    put32(central_, kCentralHeaderSignature);
    put16(central_, kMadeByUnix | version);
    put16(central_, version);
    put16(central_, kFlags);
    put16(central_, kStored);
    put16(central_, l.dos_time);
    put16(central_, l.dos_date);
    put32(central_, crc_);
    put32(central_, clamp32(e.size, l.size_overflows));
    put32(central_, clamp32(e.size, l.size_overflows));
    put16(central_, static_cast<uint16_t>(e.name.size()));
    put16(central_, static_cast<uint16_t>(central_extra_size(l.size_overflows, l.offset_overflows)));
    put16(central_, 0);  // comment length
    put16(central_, 0);  // disk number
    put16(central_, 0);  // internal attributes
    put32(central_, kExternalAttributes);
    put32(central_, clamp32(l.offset, l.offset_overflows));
    central_ += e.name;
    if (size_t extra = central_extra_size(l.size_overflows, l.offset_overflows); extra > 0) {
        // APPNOTE 4.5.3: only the fields that overflowed, in this order.
        put16(central_, kZip64ExtraId);
        put16(central_, static_cast<uint16_t>(extra - 4));
        if (l.size_overflows) {
            put64(central_, e.size);  // uncompressed
            put64(central_, e.size);  // compressed
        }
        if (l.offset_overflows) put64(central_, l.offset);
    }
    ++current_;
}

void ZipStream::start_trailer() {
    trailer_started_ = true;
    pending_ = std::move(central_);
    pending_at_ = 0;
    central_.clear();
    bool force = options_.force_zip64;
    uint64_t count = entries_.size();
    if (zip64_end_) {
        uint64_t zip64_end_offset = central_offset_ + central_size_;
        put32(pending_, kZip64EndSignature);
        put64(pending_, kZip64EndSize - 12);  // the size of the rest of the record
        put16(pending_, kMadeByUnix | kVersionZip64);
        put16(pending_, kVersionZip64);
        put32(pending_, 0);  // this disk
        put32(pending_, 0);  // the disk where the central directory starts
        put64(pending_, count);
        put64(pending_, count);
        put64(pending_, central_size_);
        put64(pending_, central_offset_);

        put32(pending_, kZip64LocatorSignature);
        put32(pending_, 0);  // the disk with the ZIP64 end record
        put64(pending_, zip64_end_offset);
        put32(pending_, 1);  // disks in all
    }
    uint16_t count16 = force || count >= kMax16 ? kMax16 : static_cast<uint16_t>(count);
    put32(pending_, kEndSignature);
    put16(pending_, 0);  // this disk
    put16(pending_, 0);  // the disk where the central directory starts
    put16(pending_, count16);
    put16(pending_, count16);
    put32(pending_, clamp32(central_size_, force || central_size_ >= kMax32));
    put32(pending_, clamp32(central_offset_, force || central_offset_ >= kMax32));
    put16(pending_, 0);  // comment length
}

void ZipStream::fail(const std::string& what) {
    failed_ = true;
    source_.reset();
    throw std::runtime_error(what);
}

namespace {

std::string fit_name(std::string name) {
    // A name that claims to be UTF-8 (flag bit 11) must be: keep its ASCII only.
    bool utf8 = is_valid_utf8(name);
    for (char& c : name) {
        auto byte = static_cast<unsigned char>(c);
        if (c == '/' || c == '\\' || byte < 0x20 || byte == 0x7f || (!utf8 && byte >= 0x80)) c = '_';
    }
    if (name.empty()) return "audio.mp3";
    if (name == "." || name == "..") return std::string(name.size(), '_');
    return name;
}

}  // namespace

std::vector<std::string> unique_entry_names(const std::vector<std::string>& names) {
    std::vector<std::string> out;
    out.reserve(names.size());
    std::unordered_set<std::string> taken;                  // lower-case
    std::unordered_map<std::string, unsigned> next_suffix;  // lower-case name -> the next number to try
    for (const std::string& original : names) {
        std::string name = fit_name(original);
        std::string key = to_lower_ascii(name);
        if (taken.insert(key).second) {
            out.push_back(std::move(name));
            continue;
        }
        // "a.mp3" -> "a (2).mp3"; a leading dot starts a name, not an extension (".mp3" -> ".mp3 (2)").
        size_t dot = name.rfind('.');
        if (dot == 0 || dot == std::string::npos) dot = name.size();
        std::string stem = name.substr(0, dot);
        std::string extension = name.substr(dot);
        unsigned& n = next_suffix.try_emplace(key, 2).first->second;
        for (;; ++n) {
            std::string candidate = stem + " (" + std::to_string(n) + ")" + extension;
            if (taken.insert(to_lower_ascii(candidate)).second) {
                out.push_back(std::move(candidate));
                ++n;
                break;
            }
        }
    }
    return out;
}

}  // namespace mp3c::gateway
