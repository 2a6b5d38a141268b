#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mp3c/result.hpp"

// Job webhooks: POST of a small JSON document to the URL its owner gave at upload, signed in the Standard Webhooks
// format (standardwebhooks.com) with the owner's own secret, so the receiver can tell it came from this service, about
// one of its owner's jobs, recently. Only http and https; addresses inside the network (loopback,
// private, link-local...) are refused unless allowed, checked on the address actually connected to (so neither DNS
// nor a redirect can point the service at an internal host); no redirects are followed.
namespace mp3c::notification {

struct WebhookOptions {
    std::string secret;  // WEBHOOK_SECRET: the deprecated global secret of X-Mp3converter-Signature; empty: not sent
    bool allow_private = false;
    std::chrono::milliseconds timeout{10'000};
};

// A call that did not deliver: permanent for a refusal the receiver will repeat (a 3xx or 4xx other than 408 and 429,
// a URL that is not http or https) or for an address inside the network (address_refused); transient for no answer,
// a timeout, 408, 429 and 5xx. `code` is the HTTP status, 0 when there was no answer.
struct WebhookFailure : Failure {
    bool address_refused = false;
};
// The receiver's 2xx status, or why the call did not deliver.
using WebhookResult = Result<long, WebhookFailure>;

// Deprecated (kept for one release, only when WEBHOOK_SECRET is set): "sha256=" and the hex HMAC-SHA256 of the body
// under the global secret. It signs the body only, so a captured delivery can be replayed.
std::string webhook_signature(std::string_view secret, std::string_view body);
inline constexpr const char* kSignatureHeader = "X-Mp3converter-Signature";

// How one delivery is signed: the Standard Webhooks headers webhook-id, webhook-timestamp and webhook-signature
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>" for each of the owner's secrets, space-separated).
struct WebhookSigning {
    std::string id;                    // the same for every attempt of one event: receivers drop repeats by it
    int64_t timestamp = 0;             // Unix seconds, when this attempt is made
    std::vector<std::string> secrets;  // "whsec_" and base64 of the key, newest first
};
// "v1,<base64>" under one secret; nullopt for a secret that is not "whsec_" and base64.
std::optional<std::string> standard_signature(std::string_view secret, std::string_view id, int64_t timestamp,
                                              std::string_view body);

// The receiver's side (tests, and the example in docs/webhooks.md): the delivery is genuine when one of the
// signatures matches one of the secrets and the timestamp is within `tolerance` of now; else why not.
Check verify_standard_webhook(const std::vector<std::string>& secrets, std::string_view id, std::string_view timestamp,
                              std::string_view signatures, std::string_view body, int64_t now,
                              std::chrono::seconds tolerance = std::chrono::minutes(5));

WebhookResult deliver_webhook(const WebhookOptions& options, const std::string& url, const std::string& body,
                              const WebhookSigning& signing);

// The receiver of a URL, as deliveries are limited per receiver: scheme, host and port ("https://hooks.example:443").
std::string receiver_of(std::string_view url);

// Keeps each receiver to one delivery at a time, and a receiver that just failed (no answer, 5xx, 429) resting for a
// while: its other deliveries are looked at again later instead of occupying the workers that deliver to others.
// Thread-safe; time is passed in, so it is tested without waiting.
class ReceiverGate {
  public:
    using Clock = std::chrono::steady_clock;
    explicit ReceiverGate(std::chrono::milliseconds rest_after_failure) : rest_(rest_after_failure) {}
    // True (and the receiver is taken) when nothing is in flight to it and it is not resting.
    bool enter(const std::string& receiver, Clock::time_point now);
    void leave(const std::string& receiver, bool failed_transiently, Clock::time_point now);
    size_t tracked() const;

  private:
    struct State {
        bool busy = false;
        Clock::time_point resting_until{};
    };
    std::chrono::milliseconds rest_;
    mutable std::mutex mutex_;
    std::map<std::string, State> receivers_;
};

}  // namespace mp3c::notification
