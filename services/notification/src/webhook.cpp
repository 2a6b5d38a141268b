#include "webhook.hpp"

#include <curl/curl.h>
#include <sodium.h>

#include <memory>

#include "mp3c/callback_url.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/outbound.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::notification {

namespace {

WebhookFailure failure(Outcome outcome, long status, std::string detail) {
    WebhookFailure f;
    f.outcome = outcome;
    f.code = status;
    f.detail = std::move(detail);
    return f;
}

}  // namespace

std::string webhook_signature(std::string_view secret, std::string_view body) {
    return "sha256=" + crypto::to_hex(crypto::hmac_sha256(secret, body));
}

std::optional<std::string> standard_signature(std::string_view secret, std::string_view id, int64_t timestamp,
                                              std::string_view body) {
    constexpr std::string_view kPrefix = "whsec_";
    if (!secret.starts_with(kPrefix)) return std::nullopt;
    auto key = crypto::base64_decode(secret.substr(kPrefix.size()));
    if (!key || key->empty()) return std::nullopt;
    std::string signed_content;
    signed_content.reserve(id.size() + body.size() + 24);
    signed_content.append(id).append(".").append(std::to_string(timestamp)).append(".").append(body);
    return "v1," + crypto::base64_encode(crypto::hmac_sha256(*key, signed_content));
}

Check verify_standard_webhook(const std::vector<std::string>& secrets, std::string_view id, std::string_view timestamp,
                              std::string_view signatures, std::string_view body, int64_t now,
                              std::chrono::seconds tolerance) {
    if (id.empty() || timestamp.empty() || signatures.empty()) return std::string("missing webhook headers");
    int64_t sent = 0;
    try {
        size_t used = 0;
        sent = std::stoll(std::string(timestamp), &used);
        if (used != timestamp.size()) return std::string("webhook-timestamp is not a number");
    } catch (const std::exception&) {
        return std::string("webhook-timestamp is not a number");
    }
    if (sent < now - tolerance.count()) return std::string("too old: a replay, or a clock far off");
    if (sent > now + tolerance.count()) return std::string("timestamp in the future");
    for (const auto& secret : secrets) {
        auto expected = standard_signature(secret, id, sent, body);
        if (!expected) continue;
        // Each space-separated entry is "<version>,<signature>"; compared in constant time.
        for (size_t start = 0; start < signatures.size();) {
            size_t end = signatures.find(' ', start);
            if (end == std::string_view::npos) end = signatures.size();
            std::string_view given = signatures.substr(start, end - start);
            if (given.size() == expected->size() && sodium_memcmp(given.data(), expected->data(), given.size()) == 0) {
                return Ok{};
            }
            start = end + 1;
        }
    }
    return std::string("no signature matches");
}

std::string receiver_of(std::string_view url) {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), &curl_url_cleanup);
    if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, std::string(url).c_str(), 0) != CURLUE_OK) {
        return std::string(url);
    }
    auto part = [&](CURLUPart which, unsigned flags) {
        char* value = nullptr;
        if (curl_url_get(parsed.get(), which, &value, flags) != CURLUE_OK || value == nullptr) return std::string();
        std::string text(value);
        curl_free(value);
        return text;
    };
    return part(CURLUPART_SCHEME, 0) + "://" + to_lower_ascii(part(CURLUPART_HOST, 0)) + ":" +
           part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
}

bool ReceiverGate::enter(const std::string& receiver, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    // Forget receivers that are idle and rested, so that the map stays as small as the receivers in use.
    if (receivers_.size() > 1000) {
        std::erase_if(receivers_, [&](const auto& r) { return !r.second.busy && r.second.resting_until <= now; });
    }
    State& state = receivers_[receiver];
    if (state.busy || state.resting_until > now) return false;
    state.busy = true;
    return true;
}

void ReceiverGate::leave(const std::string& receiver, bool failed_transiently, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    State& state = receivers_[receiver];
    state.busy = false;
    state.resting_until = failed_transiently ? now + rest_ : Clock::time_point{};
}

size_t ReceiverGate::tracked() const {
    std::lock_guard lock(mutex_);
    return receivers_.size();
}

WebhookResult deliver_webhook(const WebhookOptions& options, const std::string& url, const std::string& body,
                              const WebhookSigning& signing) {
    if (auto checked = check_callback_url(url); !checked) return failure(Outcome::permanent, 0, checked.error());
    outbound::Options settings;
    settings.timeout = options.timeout;
    settings.connect_timeout = std::min<std::chrono::milliseconds>(options.timeout, std::chrono::seconds(5));
    settings.user_agent = "mp3converter-notification";
    settings.refuse_private_addresses = !options.allow_private;
    outbound::Transfer transfer(url, settings);
    transfer.header("Content-Type: application/json");
    std::string signatures;
    for (const auto& secret : signing.secrets) {
        if (auto signature = standard_signature(secret, signing.id, signing.timestamp, body)) {
            signatures += (signatures.empty() ? "" : " ") + *signature;
        }
    }
    transfer.header("webhook-id: " + signing.id);
    transfer.header("webhook-timestamp: " + std::to_string(signing.timestamp));
    if (!signatures.empty()) transfer.header("webhook-signature: " + signatures);
    if (!options.secret.empty()) {
        transfer.header(std::string(kSignatureHeader) + ": " + webhook_signature(options.secret, body));
    }
    transfer.header("Expect:");
    transfer.post(body);
    auto status = transfer.perform();
    // A name with several addresses may have been refused on one and delivered on another: only a call that did not
    // get through counts as refused.
    if (!status && transfer.address_refused()) {
        WebhookFailure refused = failure(Outcome::permanent, 0,
                                         "the callback URL leads to " + transfer.refused_address() +
                                             ", an address inside the network (set WEBHOOK_ALLOW_PRIVATE to allow it)");
        refused.address_refused = true;
        return refused;
    }
    if (!status) return failure(status.error().outcome, 0, status.error().detail);
    if (status.value() >= 200 && status.value() <= 299) return status.value();
    std::string detail = "the receiver answered " + std::to_string(status.value());
    if (status.value() == 408 || status.value() == 429 || status.value() >= 500) {
        return failure(Outcome::transient, status.value(), detail);
    }
    return failure(Outcome::permanent, status.value(), detail);  // 3xx (not followed) and other 4xx
}

}  // namespace mp3c::notification
