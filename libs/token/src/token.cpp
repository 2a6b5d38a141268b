#include "mp3c/token.hpp"

#include <jwt.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "mp3c/c_handle.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/enum_names.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::token {
namespace {

using JwtPtr = CHandle<jwt_t, jwt_free>;
using JwtString = CHandle<char, std::free>;  // libjwt 1.10 allocates with malloc

constexpr size_t kMaxTokenLength = 8192;

std::optional<nlohmann::json> decode_segment(std::string_view segment) {
    auto bytes = crypto::base64_decode(segment, crypto::Base64::url_no_padding);
    if (!bytes) return std::nullopt;
    auto parsed = nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
    return parsed;
}

}  // namespace

constexpr std::array<std::string_view, 6> kVerifyErrorTexts = {"malformed token",
                                                               "unsigned token (alg none)",
                                                               "token signed with an algorithm other than HS256",
                                                               "invalid token signature",
                                                               "token expired",
                                                               "token has no expiry"};
static_assert(names_all(kVerifyErrorTexts, VerifyError::missing_exp));

std::string_view to_string(VerifyError error) { return name_of(error, kVerifyErrorTexts, "invalid token"); }

Signer::Signer(std::string secret, std::chrono::seconds leeway) : secret_(std::move(secret)), leeway_(leeway) {
    if (secret_.size() < kMinimumSecretLength) {
        throw std::invalid_argument("JWT secret must be at least " + std::to_string(kMinimumSecretLength) +
                                    " characters");
    }
}

std::string Signer::issue(const nlohmann::json& claims, Clock::time_point expires_at, Clock::time_point now) const {
    jwt_t* raw = nullptr;
    if (jwt_new(&raw) != 0) throw std::runtime_error("jwt_new failed");
    JwtPtr jwt(raw);
    nlohmann::json all = claims;
    all["iat"] = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    all["exp"] = std::chrono::duration_cast<std::chrono::seconds>(expires_at.time_since_epoch()).count();
    if (jwt_add_grants_json(jwt.get(), all.dump().c_str()) != 0) throw std::runtime_error("jwt_add_grants_json failed");
    if (jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret_.data()),
                    static_cast<int>(secret_.size())) != 0) {
        throw std::runtime_error("jwt_set_alg failed");
    }
    JwtString encoded(jwt_encode_str(jwt.get()));
    if (!encoded) throw std::runtime_error("jwt_encode_str failed");
    return encoded.get();
}

Result<nlohmann::json, VerifyError> Signer::verify(std::string_view token, Clock::time_point now) const {
    if (token.empty() || token.size() > kMaxTokenLength || !is_printable_ascii(token)) return VerifyError::malformed;
    auto parts = split(token, '.');
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) return VerifyError::malformed;
    auto header = decode_segment(parts[0]);
    auto payload = decode_segment(parts[1]);
    if (!header || !payload || !header->contains("alg") || !(*header)["alg"].is_string()) {
        return VerifyError::malformed;
    }
    std::string alg = (*header)["alg"];
    if (iequals(alg, "none")) return VerifyError::alg_none;
    if (alg != "HS256") return VerifyError::wrong_algorithm;
    if (parts[2].empty() || !crypto::base64_decode(parts[2], crypto::Base64::url_no_padding)) {
        return VerifyError::bad_signature;
    }

    // libjwt checks the signature; the checks above give each refusal its own reason first.
    jwt_t* raw = nullptr;
    std::string terminated(token);
    int rc = jwt_decode(&raw, terminated.c_str(), reinterpret_cast<const unsigned char*>(secret_.data()),
                        static_cast<int>(secret_.size()));
    JwtPtr jwt(raw);
    if (rc != 0 || !jwt || jwt_get_alg(jwt.get()) != JWT_ALG_HS256) return VerifyError::bad_signature;

    auto exp = payload->find("exp");
    if (exp == payload->end() || !exp->is_number()) return VerifyError::missing_exp;
    auto now_seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (exp->get<double>() + static_cast<double>(leeway_.count()) <= static_cast<double>(now_seconds)) {
        return VerifyError::expired;
    }
    return std::move(*payload);
}

}  // namespace mp3c::token
