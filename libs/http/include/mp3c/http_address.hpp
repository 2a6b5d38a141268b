#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mp3c::http {

// An IPv4 or IPv6 network such as "10.0.0.0/8" or "::1/128" (a bare address is a /32 or /128).
class Cidr {
  public:
    static std::optional<Cidr> parse(std::string_view text);
    bool contains(std::string_view address) const;

  private:
    std::string bytes_;  // network address, 4 or 16 bytes
    unsigned prefix_ = 0;
};

// The client's address: the peer, or when the peer is a trusted proxy, the right-most X-Forwarded-For entry that is
// not itself a trusted proxy.
std::string client_address(std::string_view peer, std::optional<std::string_view> forwarded_for,
                           const std::vector<Cidr>& trusted);

}  // namespace mp3c::http
