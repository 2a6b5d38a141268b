#include "mp3_frames.hpp"

#include <vector>

namespace mp3c::converter::mp3 {

std::optional<FrameLayout> parse_frame(std::span<const uint8_t> frame) {
    if (frame.size() < 4) return std::nullopt;
    if (frame[0] != 0xFF || (frame[1] & 0xE0) != 0xE0) return std::nullopt;  // 11 sync bits
    const int version = (frame[1] >> 3) & 3;                                 // 0: 2.5, 1: reserved, 2: 2, 3: 1
    const int layer = (frame[1] >> 1) & 3;                                   // 1: layer III
    if (version == 1 || layer != 1) return std::nullopt;
    const bool crc = (frame[1] & 1) == 0;
    const bool mono = ((frame[3] >> 6) & 3) == 3;
    FrameLayout layout;
    layout.lsf = version != 3;
    const size_t side_info = layout.lsf ? (mono ? 9 : 17) : (mono ? 17 : 32);
    const size_t at = 4 + (crc ? 2 : 0);
    layout.main_data_offset = at + side_info;
    if (frame.size() < layout.main_data_offset) return std::nullopt;
    layout.main_data_begin = layout.lsf ? frame[at] : (frame[at] << 1) | (frame[at + 1] >> 7);
    return layout;
}

namespace {

// Layer III bitrates in kb/s by index, and sample rates by index (ISO/IEC 11172-3 and 13818-3, MPEG 2.5).
constexpr int kMpeg1Kbps[15] = {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320};
constexpr int kLsfKbps[15] = {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160};
constexpr int kRates[4][3] = {{11025, 12000, 8000}, {0, 0, 0}, {22050, 24000, 16000}, {44100, 48000, 32000}};

int frame_bytes(bool lsf, int kbps, int rate, bool padding) {
    return (lsf ? 72000 : 144000) * kbps / rate + (padding ? 1 : 0);
}

}  // namespace

std::optional<GrownHeader> grow_bitrate(std::span<const uint8_t> frame, int extra) {
    auto layout = parse_frame(frame);
    if (!layout || (frame[1] & 1) == 0) return std::nullopt;  // a CRC covers the bitrate
    const int version = (frame[1] >> 3) & 3;
    const int index = frame[2] >> 4, rate_index = (frame[2] >> 2) & 3;
    if (index == 0 || index == 15 || rate_index == 3) return std::nullopt;  // free format, or not a valid header
    const int* kbps = layout->lsf ? kLsfKbps : kMpeg1Kbps;
    const int rate = kRates[version][rate_index];
    const bool padding = (frame[2] & 2) != 0;
    const int now = frame_bytes(layout->lsf, kbps[index], rate, padding);
    for (int larger = index + 1; larger < 15; ++larger) {
        int added = frame_bytes(layout->lsf, kbps[larger], rate, padding) - now;
        if (added >= extra) return GrownHeader{static_cast<uint8_t>((larger << 4) | (frame[2] & 0x0F)), added};
    }
    return std::nullopt;
}

namespace {

// The main-data bytes of `frames`, counted back from their end: calls f(frame, offset) for the `count` last ones,
// nearest first. False when the frames hold fewer.
template <typename Frames, typename F>
bool for_last_main_data_bytes(Frames frames, int count, F&& f) {
    for (size_t i = frames.size(); i-- > 0 && count > 0;) {
        auto layout = parse_frame(frames[i]);
        if (!layout) return false;
        for (size_t at = frames[i].size(); at > layout->main_data_offset && count > 0; --count) f(frames[i], --at);
    }
    return count == 0;
}

}  // namespace

bool move_reservoir(std::span<const std::span<uint8_t>> before, std::span<const std::span<const uint8_t>> lead,
                    int needed, int free_bytes) {
    if (needed == 0) return true;
    if (needed > free_bytes) return false;
    std::vector<uint8_t> bytes;  // nearest the join first
    bytes.reserve(static_cast<size_t>(needed));
    if (!for_last_main_data_bytes(lead, needed, [&](const auto& f, size_t at) { bytes.push_back(f[at]); }))
        return false;
    // The earlier stream must hold as many main-data bytes before the join (checked before anything is changed).
    if (!for_last_main_data_bytes(before, needed, [](const auto&, size_t) {})) return false;
    size_t next = 0;
    for_last_main_data_bytes(before, needed, [&](auto& f, size_t at) { f[at] = bytes[next++]; });
    return true;
}

}  // namespace mp3c::converter::mp3
