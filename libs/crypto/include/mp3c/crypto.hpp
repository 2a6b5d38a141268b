#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Thin, safe wrappers over libsodium.
namespace mp3c::crypto {

// Initialises libsodium once; every function below calls it, so calling it early only moves the cost.
void init();

std::string random_bytes(size_t count);
std::string random_hex(size_t bytes);  // 2 * bytes hex characters
std::string to_hex(std::string_view bytes);

enum class Base64 { standard, url_no_padding };
std::string base64_encode(std::string_view bytes, Base64 variant = Base64::standard);
// nullopt for anything that is not canonical base64 of the variant.
std::optional<std::string> base64_decode(std::string_view text, Base64 variant = Base64::standard);

bool constant_time_equal(std::string_view a, std::string_view b);

// HMAC-SHA-256 with a key of any length; returns the 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view message);
std::string sha256(std::string_view bytes);

// Argon2id password hashes in the PHC string format ($argon2id$v=19$m=...,t=...,p=1$salt$hash), which carries its
// own parameters so that verification keeps working when the cost settings change.
class PasswordHasher {
  public:
    struct Cost {
        uint64_t ops;
        size_t memory_bytes;
    };
    static Cost interactive();  // libsodium's INTERACTIVE limits: 2 passes, 64 MiB
    static Cost minimum();      // the smallest argon2id allows; for tests only

    explicit PasswordHasher(Cost cost = interactive());
    std::string hash(std::string_view password) const;
    bool verify(std::string_view stored_hash, std::string_view password) const;
    bool needs_rehash(std::string_view stored_hash) const;

  private:
    Cost cost_;
};

}  // namespace mp3c::crypto
