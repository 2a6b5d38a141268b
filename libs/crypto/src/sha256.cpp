#include "mp3c/sha256.hpp"

#include <immintrin.h>

#include <cstring>

#include "mp3c/crypto.hpp"

namespace mp3c::crypto {

namespace {

alignas(16) constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr std::array<uint32_t, 8> kInitial = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void compress_portable(uint32_t state[8], const unsigned char* data, size_t blocks) {
    for (; blocks > 0; --blocks, data += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; ++i) {
            w[i] = (uint32_t(data[4 * i]) << 24) | (uint32_t(data[4 * i + 1]) << 16) |
                   (uint32_t(data[4 * i + 2]) << 8) | uint32_t(data[4 * i + 3]);
        }
        for (int i = 16; i < 64; ++i) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6],
                 h = state[7];
        for (int i = 0; i < 64; ++i) {
            uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

// The x86 SHA extensions: sha256rnds2 does two rounds, sha256msg1/msg2 the message schedule. The state lives as
// ABEF/CDGH halves, the layout the instructions want.
__attribute__((target("sha,sse4.1,ssse3"))) void compress_sha_ni(uint32_t state[8], const unsigned char* data,
                                                                 size_t blocks) {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&state[0]));
    __m128i state1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&state[4]));
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                // CDAB
    state1 = _mm_shuffle_epi32(state1, 0x1B);          // EFGH
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  // ABEF
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);       // CDGH

    for (; blocks > 0; --blocks, data += 64) {
        const __m128i abef_save = state0, cdgh_save = state1;
        __m128i w[4];
        // Fully unrolled, the indexes and conditions below are constants and w[] lives in registers; as a loop it
        // went through the stack and ran at two thirds of OpenSSL's speed.
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) {
            __m128i& current = w[i % 4];
            if (i < 4) {
                current = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * i)), byte_swap);
            }
            __m128i msg = _mm_add_epi32(current, _mm_load_si128(reinterpret_cast<const __m128i*>(&kK[4 * i])));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            if (i >= 3 && i <= 14) {
                __m128i& next = w[(i + 1) % 4];
                next = _mm_add_epi32(next, _mm_alignr_epi8(current, w[(i + 3) % 4], 4));
                next = _mm_sha256msg2_epu32(next, current);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
            if (i >= 1 && i <= 12) w[(i + 3) % 4] = _mm_sha256msg1_epu32(w[(i + 3) % 4], current);
        }
        state0 = _mm_add_epi32(state0, abef_save);
        state1 = _mm_add_epi32(state1, cdgh_save);
    }

    tmp = _mm_shuffle_epi32(state0, 0x1B);        // FEBA
    state1 = _mm_shuffle_epi32(state1, 0xB1);     // DCHG
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);  // DCBA
    state1 = _mm_alignr_epi8(state1, tmp, 8);     // ABEF
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&state[0]), state0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(&state[4]), state1);
}

using Compress = void (*)(uint32_t*, const unsigned char*, size_t);

Compress pick() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3")) {
        return compress_sha_ni;
    }
    return compress_portable;
}

const Compress kCompress = pick();

}  // namespace

bool Sha256::hardware_accelerated() { return kCompress == compress_sha_ni; }

Sha256::Sha256() : state_(kInitial) {}

void Sha256::update(std::string_view bytes) {
    auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    size_t size = bytes.size();
    total_ += size;
    if (block_used_ > 0) {
        size_t take = std::min(size, 64 - block_used_);
        std::memcpy(block_.data() + block_used_, data, take);
        block_used_ += take;
        data += take;
        size -= take;
        if (block_used_ < 64) return;
        kCompress(state_.data(), block_.data(), 1);
        block_used_ = 0;
    }
    if (size >= 64) {
        kCompress(state_.data(), data, size / 64);
        data += size / 64 * 64;
        size %= 64;
    }
    std::memcpy(block_.data(), data, size);
    block_used_ = size;
}

std::string Sha256::digest() {
    uint64_t bits = total_ * 8;
    unsigned char padding[72] = {0x80};
    size_t pad = (block_used_ < 56 ? 56 : 120) - block_used_;
    for (int i = 0; i < 8; ++i) padding[pad + i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    uint64_t total = total_;
    update(std::string_view(reinterpret_cast<char*>(padding), pad + 8));
    total_ = total;
    std::string out(32, '\0');
    for (int i = 0; i < 8; ++i) {
        out[4 * i] = static_cast<char>(state_[i] >> 24);
        out[4 * i + 1] = static_cast<char>(state_[i] >> 16);
        out[4 * i + 2] = static_cast<char>(state_[i] >> 8);
        out[4 * i + 3] = static_cast<char>(state_[i]);
    }
    return out;
}

std::string Sha256::hex_digest() { return to_hex(digest()); }

}  // namespace mp3c::crypto
