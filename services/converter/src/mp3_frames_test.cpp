#include "mp3_frames.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace mp3c::converter::mp3 {
namespace {

// A layer III frame of `size` bytes: MPEG-1 (0xFB: no CRC, 0xFA: with) or MPEG-2 (0xF3), stereo or mono, with this
// main_data_begin, and its main data filled with `fill`, fill + 1, ...
std::vector<uint8_t> frame(uint8_t second, bool mono, int main_data_begin, size_t size, uint8_t fill) {
    std::vector<uint8_t> f(size, 0);
    f[0] = 0xFF;
    f[1] = second;
    f[2] = 0x90;
    f[3] = mono ? 0xC0 : 0x00;
    auto layout = parse_frame(f);
    EXPECT_TRUE(layout.has_value());
    size_t at = 4 + ((second & 1) == 0 ? 2 : 0);
    if (layout->lsf) {
        f[at] = static_cast<uint8_t>(main_data_begin);
    } else {
        f[at] = static_cast<uint8_t>(main_data_begin >> 1);
        f[at + 1] = static_cast<uint8_t>((main_data_begin & 1) << 7);
    }
    for (size_t i = layout->main_data_offset; i < size; ++i) f[i] = static_cast<uint8_t>(fill + i);
    return f;
}

TEST(Mp3Frames, ReadsTheSideInformationOfEachKind) {
    auto mpeg1 = parse_frame(frame(0xFB, false, 300, 417, 0));
    ASSERT_TRUE(mpeg1);
    EXPECT_EQ(mpeg1->main_data_offset, 36u);
    EXPECT_EQ(mpeg1->main_data_begin, 300);  // 9 bits
    EXPECT_FALSE(mpeg1->lsf);
    EXPECT_EQ(parse_frame(frame(0xFA, false, 511, 417, 0))->main_data_offset, 38u);  // a CRC after the header
    EXPECT_EQ(parse_frame(frame(0xFA, false, 511, 417, 0))->main_data_begin, 511);
    EXPECT_EQ(parse_frame(frame(0xFB, true, 1, 417, 0))->main_data_offset, 21u);
    auto mpeg2 = parse_frame(frame(0xF3, false, 255, 200, 0));
    ASSERT_TRUE(mpeg2);
    EXPECT_TRUE(mpeg2->lsf);
    EXPECT_EQ(mpeg2->main_data_offset, 21u);
    EXPECT_EQ(mpeg2->main_data_begin, 255);  // 8 bits
    EXPECT_EQ(parse_frame(frame(0xF3, true, 7, 200, 0))->main_data_offset, 13u);
    EXPECT_EQ(parse_frame(frame(0xE3, false, 9, 200, 0))->main_data_begin, 9);  // MPEG-2.5
}

TEST(Mp3Frames, RefusesWhatIsNotALayer3Frame) {
    std::vector<uint8_t> layer2 = {0xFF, 0xFD, 0x90, 0x00};
    layer2.resize(100);
    EXPECT_FALSE(parse_frame(layer2));
    std::vector<uint8_t> reserved_version = {0xFF, 0xEB, 0x90, 0x00};
    reserved_version.resize(100);
    EXPECT_FALSE(parse_frame(reserved_version));
    std::vector<uint8_t> no_sync = {0x49, 0x44, 0x33, 0x04};  // "ID3"
    no_sync.resize(100);
    EXPECT_FALSE(parse_frame(no_sync));
    EXPECT_FALSE(parse_frame(std::vector<uint8_t>{0xFF, 0xFB, 0x90}));
    EXPECT_FALSE(parse_frame(std::vector<uint8_t>(20, 0xFF)));  // too short for its side information
}

std::vector<uint8_t> main_data(const std::vector<uint8_t>& f) {
    return {f.begin() + static_cast<long>(parse_frame(f)->main_data_offset), f.end()};
}

TEST(Mp3Frames, MovesTheReservoirAcrossFramesToTheSameDistanceBeforeTheJoin) {
    // 381 main-data bytes a frame: 500 bytes of reservoir lie in the last two frames on each side.
    std::vector<std::vector<uint8_t>> earlier = {frame(0xFB, false, 0, 417, 10), frame(0xFB, false, 0, 417, 20)};
    std::vector<std::vector<uint8_t>> later = {frame(0xFB, false, 0, 417, 100), frame(0xFB, false, 0, 417, 200)};
    const auto untouched = earlier;
    std::vector<std::span<uint8_t>> before = {earlier[0], earlier[1]};
    std::vector<std::span<const uint8_t>> lead = {later[0], later[1]};
    ASSERT_TRUE(move_reservoir(before, lead, 500, 511));
    // The last 500 main-data bytes before the join are the later stream's; everything else is as it was.
    auto a0 = main_data(earlier[0]), a1 = main_data(earlier[1]);
    auto b0 = main_data(later[0]), b1 = main_data(later[1]);
    EXPECT_EQ(a1, b1);
    EXPECT_TRUE(std::equal(a0.end() - 119, a0.end(), b0.end() - 119));
    EXPECT_TRUE(std::equal(a0.begin(), a0.end() - 119, main_data(untouched[0]).begin()));
    // Headers and side information are not touched.
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_TRUE(std::equal(earlier[i].begin(), earlier[i].begin() + 36, untouched[i].begin()));
    }
}

TEST(Mp3Frames, RefusesAReservoirThatDoesNotFit) {
    std::vector<std::vector<uint8_t>> earlier = {frame(0xFB, false, 0, 417, 10)};
    std::vector<std::vector<uint8_t>> later = {frame(0xFB, false, 0, 417, 100), frame(0xFB, false, 0, 417, 200)};
    const auto untouched = earlier;
    std::vector<std::span<uint8_t>> before = {earlier[0]};
    std::vector<std::span<const uint8_t>> lead = {later[0], later[1]};
    EXPECT_FALSE(move_reservoir(before, lead, 200, 199));  // the earlier stream uses all but 199 bytes
    EXPECT_FALSE(move_reservoir(before, lead, 400, 511));  // only 381 main-data bytes before the join
    std::vector<std::span<const uint8_t>> short_lead = {later[1]};
    EXPECT_FALSE(move_reservoir(before, short_lead, 382, 511));  // the later stream's own frames hold fewer
    EXPECT_EQ(earlier, untouched);
    EXPECT_TRUE(move_reservoir(before, lead, 0, 0));  // nothing to move: a frame that starts afresh
    EXPECT_EQ(earlier, untouched);
}

TEST(Mp3Frames, GrowsAFrameToTheSmallestBitrateThatMakesTheRoom) {
    // 0x90: 128 kb/s at 44.1 kHz, 417 bytes; 160 kb/s makes 522, 192 kb/s 626.
    auto at128 = frame(0xFB, false, 0, 417, 0);
    auto grown = grow_bitrate(at128, 50);
    ASSERT_TRUE(grown);
    EXPECT_EQ(grown->third_byte, 0xA0);
    EXPECT_EQ(grown->added, 105);
    grown = grow_bitrate(at128, 200);
    ASSERT_TRUE(grown);
    EXPECT_EQ(grown->third_byte, 0xB0);
    EXPECT_EQ(grown->added, 209);
    at128[2] |= 0x02;  // the padding bit stays as it was
    EXPECT_EQ(grow_bitrate(at128, 1)->third_byte, 0xA2);
    auto at320 = frame(0xFB, false, 0, 1044, 0);
    at320[2] = 0xE0;
    EXPECT_FALSE(grow_bitrate(at320, 1)) << "no bitrate above 320 kb/s";
    EXPECT_FALSE(grow_bitrate(frame(0xFA, false, 0, 417, 0), 1)) << "a CRC covers the bitrate";
    auto lsf = frame(0xF3, false, 0, 208, 0);  // MPEG-2 at 22.05 kHz: 0x90 is 64 kb/s, 208 bytes; 80 kb/s 261
    lsf[2] = 0x80;
    EXPECT_EQ(grow_bitrate(lsf, 10)->added, 53);
}

}  // namespace
}  // namespace mp3c::converter::mp3
