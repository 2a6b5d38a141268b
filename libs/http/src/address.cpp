#include <arpa/inet.h>

#include "mp3c/http_address.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::http {
namespace {

// 4 bytes for IPv4 (also for IPv4-mapped IPv6), 16 for IPv6; nullopt when not an address.
std::optional<std::string> address_bytes(std::string_view text) {
    std::string terminated(trim(text));
    unsigned char buffer[16];
    if (inet_pton(AF_INET, terminated.c_str(), buffer) == 1) return std::string(reinterpret_cast<char*>(buffer), 4);
    if (inet_pton(AF_INET6, terminated.c_str(), buffer) == 1) {
        static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::equal(kMapped, kMapped + 12, buffer)) return std::string(reinterpret_cast<char*>(buffer) + 12, 4);
        return std::string(reinterpret_cast<char*>(buffer), 16);
    }
    return std::nullopt;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
    text = trim(text);
    auto slash = text.find('/');
    auto bytes = address_bytes(text.substr(0, slash));
    if (!bytes) return std::nullopt;
    unsigned max_prefix = static_cast<unsigned>(bytes->size() * 8);
    unsigned prefix = max_prefix;
    if (slash != std::string_view::npos) {
        auto digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3) return std::nullopt;
        prefix = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            prefix = prefix * 10 + static_cast<unsigned>(c - '0');
        }
        if (prefix > max_prefix) return std::nullopt;
    }
    Cidr cidr;
    cidr.bytes_ = *bytes;
    cidr.prefix_ = prefix;
    return cidr;
}

bool Cidr::contains(std::string_view address) const {
    auto bytes = address_bytes(address);
    if (!bytes || bytes->size() != bytes_.size()) return false;
    unsigned full = prefix_ / 8, rest = prefix_ % 8;
    if (bytes->compare(0, full, bytes_, 0, full) != 0) return false;
    if (rest == 0) return true;
    auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (static_cast<unsigned char>((*bytes)[full]) & mask) == (static_cast<unsigned char>(bytes_[full]) & mask);
}

std::string client_address(std::string_view peer, std::optional<std::string_view> forwarded_for,
                           const std::vector<Cidr>& trusted) {
    auto is_trusted = [&](std::string_view address) {
        for (const auto& cidr : trusted)
            if (cidr.contains(address)) return true;
        return false;
    };
    if (!forwarded_for || !is_trusted(peer)) return std::string(peer);
    auto hops = split(*forwarded_for, ',');
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        auto hop = trim(*it);
        if (!address_bytes(hop)) break;  // garbage: stop believing the header here
        if (!is_trusted(hop)) return std::string(hop);
    }
    return std::string(peer);
}

}  // namespace mp3c::http
