#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mp3c::crypto {

// Streaming SHA-256. Uses the CPU's SHA extensions when it has them (several times faster than portable code, which
// matters when every uploaded byte is hashed), else portable code; both give the same digests.
class Sha256 {
  public:
    Sha256();
    void update(std::string_view bytes);
    std::string digest();  // 32 raw bytes; the object is spent afterwards
    std::string hex_digest();

    static bool hardware_accelerated();

  private:
    std::array<uint32_t, 8> state_;
    std::array<unsigned char, 64> block_{};
    size_t block_used_ = 0;
    uint64_t total_ = 0;
};

}  // namespace mp3c::crypto
