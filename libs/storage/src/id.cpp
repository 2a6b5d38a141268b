#include <algorithm>
#include <atomic>
#include <cstdint>
#include <ctime>
#include <string>

#include "mp3c/crypto.hpp"
#include "mp3c/storage.hpp"

namespace mp3c::storage {
namespace {

// The ObjectId recipe: the random part is fixed per process and the counter starts at a random value, so ids from
// different processes (and from one process within one second) do not collide.
struct IdState {
    std::string process_random = crypto::random_bytes(5);
    std::atomic<uint32_t> counter;
    IdState() {
        auto seed = crypto::random_bytes(3);
        counter.store(static_cast<uint32_t>(static_cast<unsigned char>(seed[0])) << 16 |
                      static_cast<uint32_t>(static_cast<unsigned char>(seed[1])) << 8 |
                      static_cast<uint32_t>(static_cast<unsigned char>(seed[2])));
    }
};

IdState& id_state() {
    static IdState state;
    return state;
}

}  // namespace

bool is_valid_id(std::string_view id) {
    return id.size() == 24 &&
           std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string new_id() {
    IdState& state = id_state();
    auto seconds = static_cast<uint32_t>(std::time(nullptr));
    uint32_t count = state.counter.fetch_add(1, std::memory_order_relaxed) & 0xffffff;
    std::string bytes(12, '\0');
    bytes[0] = static_cast<char>(seconds >> 24);
    bytes[1] = static_cast<char>(seconds >> 16);
    bytes[2] = static_cast<char>(seconds >> 8);
    bytes[3] = static_cast<char>(seconds);
    std::copy(state.process_random.begin(), state.process_random.end(), bytes.begin() + 4);
    bytes[9] = static_cast<char>(count >> 16);
    bytes[10] = static_cast<char>(count >> 8);
    bytes[11] = static_cast<char>(count);
    return crypto::to_hex(bytes);
}

}  // namespace mp3c::storage
