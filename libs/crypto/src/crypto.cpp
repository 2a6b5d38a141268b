#include "mp3c/crypto.hpp"

#include <sodium.h>

#include <mutex>
#include <stdexcept>

namespace mp3c::crypto {

void init() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
    });
}

std::string random_bytes(size_t count) {
    init();
    std::string out(count, '\0');
    randombytes_buf(out.data(), out.size());
    return out;
}

std::string to_hex(std::string_view bytes) {
    std::string out(bytes.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    out.pop_back();
    return out;
}

std::string random_hex(size_t bytes) { return to_hex(random_bytes(bytes)); }

static int sodium_variant(Base64 variant) {
    return variant == Base64::standard ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
}

std::string base64_encode(std::string_view bytes, Base64 variant) {
    init();
    int v = sodium_variant(variant);
    std::string out(sodium_base64_encoded_len(bytes.size(), v), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), v);
    out.resize(out.size() - 1);  // the terminating NUL
    return out;
}

std::optional<std::string> base64_decode(std::string_view text, Base64 variant) {
    init();
    std::string out(text.size() / 4 * 3 + 3, '\0');
    size_t length = 0;
    const char* end = nullptr;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                          &length, &end, sodium_variant(variant)) != 0 ||
        end != text.data() + text.size()) {
        return std::nullopt;
    }
    out.resize(length);
    return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
    init();
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()), message.size());
    std::string out(crypto_auth_hmacsha256_BYTES, '\0');
    crypto_auth_hmacsha256_final(&state, reinterpret_cast<unsigned char*>(out.data()));
    sodium_memzero(&state, sizeof state);
    return out;
}

std::string sha256(std::string_view bytes) {
    init();
    std::string out(crypto_hash_sha256_BYTES, '\0');
    crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                       reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    return out;
}

PasswordHasher::Cost PasswordHasher::interactive() {
    return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}

PasswordHasher::Cost PasswordHasher::minimum() { return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN}; }

PasswordHasher::PasswordHasher(Cost cost) : cost_(cost) { init(); }

std::string PasswordHasher::hash(std::string_view password) const {
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), cost_.ops, cost_.memory_bytes,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        throw std::runtime_error("argon2id hashing ran out of memory");
    }
    return out;
}

bool PasswordHasher::verify(std::string_view stored_hash, std::string_view password) const {
    std::string terminated(stored_hash);  // libsodium wants a NUL-terminated string
    return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

bool PasswordHasher::needs_rehash(std::string_view stored_hash) const {
    std::string terminated(stored_hash);
    return crypto_pwhash_str_needs_rehash(terminated.c_str(), cost_.ops, cost_.memory_bytes) != 0;
}

}  // namespace mp3c::crypto
