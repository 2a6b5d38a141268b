#include "mp3c/sha256.hpp"

#include <gtest/gtest.h>

#include <random>

#include "mp3c/crypto.hpp"

namespace mp3c::crypto {
namespace {

TEST(Sha256, KnownDigests) {
    Sha256 empty;
    EXPECT_EQ(empty.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Sha256 abc;
    abc.update("abc");
    EXPECT_EQ(abc.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    Sha256 two_blocks;
    two_blocks.update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
    EXPECT_EQ(two_blocks.hex_digest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, AgreesWithLibsodiumForEveryLengthAndSplit) {
    std::mt19937 rng(42);
    std::string data(4096, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    for (size_t length : {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096}) {
        std::string_view input(data.data(), length);
        std::string expected = sha256(input);
        Sha256 whole;
        whole.update(input);
        EXPECT_EQ(whole.digest(), expected) << length;
        for (size_t split : {size_t{1}, size_t{7}, size_t{63}, size_t{64}, size_t{100}}) {
            Sha256 pieces;
            for (size_t at = 0; at < length; at += split) pieces.update(input.substr(at, split));
            EXPECT_EQ(pieces.digest(), expected) << length << " in pieces of " << split;
        }
    }
}

TEST(Sha256, LargeInputAgreesWithLibsodium) {
    std::string data(3 << 20, '\0');
    std::mt19937 rng(7);
    for (auto& c : data) c = static_cast<char>(rng());
    Sha256 h;
    for (size_t at = 0; at < data.size(); at += 262144) h.update(std::string_view(data).substr(at, 262144));
    EXPECT_EQ(h.digest(), sha256(data));
    std::printf("SHA-256 hardware accelerated: %s\n", Sha256::hardware_accelerated() ? "yes" : "no");
}

}  // namespace
}  // namespace mp3c::crypto
