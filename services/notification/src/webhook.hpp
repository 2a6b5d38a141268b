#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "mp3c/result.hpp"

// Job webhooks: POST of a small JSON document to the URL its owner gave at upload, signed with HMAC-SHA256 so the
// receiver can tell it came from this service. Only http and https; addresses inside the network (loopback,
// private, link-local...) are refused unless allowed, checked on the address actually connected to (so neither DNS
// nor a redirect can point the service at an internal host); no redirects are followed.
namespace mp3c::notification {

struct WebhookOptions {
    std::string secret;  // WEBHOOK_SECRET; empty: webhooks are not sent
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

// The signature header's value: "sha256=" and the hex HMAC-SHA256 of the body under the secret.
std::string webhook_signature(std::string_view secret, std::string_view body);
inline constexpr const char* kSignatureHeader = "X-Mp3converter-Signature";

WebhookResult deliver_webhook(const WebhookOptions& options, const std::string& url, const std::string& body);

}  // namespace mp3c::notification
