#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mp3c/result.hpp"

// HS256 JSON Web Tokens (libjwt). Verification is strict: only the configured algorithm, a valid signature and an
// `exp` claim in the future are accepted; each refusal has its own reason.
namespace mp3c::token {

enum class VerifyError { malformed, alg_none, wrong_algorithm, bad_signature, expired, missing_exp };
std::string_view to_string(VerifyError error);

using Clock = std::chrono::system_clock;

class Signer {
  public:
    static constexpr size_t kMinimumSecretLength = 32;

    // Throws std::invalid_argument for a secret shorter than kMinimumSecretLength.
    explicit Signer(std::string secret, std::chrono::seconds leeway = std::chrono::seconds(0));

    // Signs `claims` plus `iat` (now) and `exp` (expires_at).
    std::string issue(const nlohmann::json& claims, Clock::time_point expires_at,
                      Clock::time_point now = Clock::now()) const;

    Result<nlohmann::json, VerifyError> verify(std::string_view token, Clock::time_point now = Clock::now()) const;

  private:
    std::string secret_;
    std::chrono::seconds leeway_;
};

}  // namespace mp3c::token
