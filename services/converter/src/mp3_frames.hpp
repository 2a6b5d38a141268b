#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

// What the segment joiner needs to know about MPEG audio layer III frames (ISO/IEC 11172-3 and 13818-3), and the
// bit-reservoir repair at a join. Pure byte logic: no FFmpeg.
namespace mp3c::converter::mp3 {

struct FrameLayout {
    size_t main_data_offset = 0;  // header, CRC and side information come first
    int main_data_begin = 0;      // how many main-data bytes before this frame's header its own main data starts
    bool lsf = false;             // MPEG-2 or 2.5 (8-bit main_data_begin, 576 samples a frame)
};

// nullopt when the bytes are not one layer III frame's header and side information.
std::optional<FrameLayout> parse_frame(std::span<const uint8_t> frame);

// A header for the same frame at the smallest higher bitrate that makes it at least `extra` bytes longer (the bytes
// added at its end lengthen its main-data area, which makes room before the next frame), and how many bytes that adds.
// nullopt when no bitrate is high enough, or the frame has a CRC (it covers the bitrate).
struct GrownHeader {
    uint8_t third_byte = 0;  // the header's byte with the bitrate index
    int added = 0;
};
std::optional<GrownHeader> grow_bitrate(std::span<const uint8_t> frame, int extra);

// The join of two independently encoded streams of the same audio at a frame boundary. `before` are the last frames
// kept from the earlier stream (in order, ending just before the join); `lead` the later stream's frames before its
// first kept frame (in order, ending just before it), and `needed` that frame's main_data_begin: its main data starts
// `needed` bytes back, inside `lead`, which is dropped. Those bytes are copied to the same distance before the join
// in `before`, which must not use them (`free_bytes`: the earlier stream's own main_data_begin at the join frame,
// which says how much of its tail no kept frame uses). Returns false when they do not fit (nothing is changed).
bool move_reservoir(std::span<const std::span<uint8_t>> before, std::span<const std::span<const uint8_t>> lead,
                    int needed, int free_bytes);

}  // namespace mp3c::converter::mp3
