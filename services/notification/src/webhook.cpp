#include "webhook.hpp"

#include "mp3c/callback_url.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/outbound.hpp"

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

WebhookResult deliver_webhook(const WebhookOptions& options, const std::string& url, const std::string& body) {
    if (auto checked = check_callback_url(url); !checked) return failure(Outcome::permanent, 0, checked.error());
    outbound::Options settings;
    settings.timeout = options.timeout;
    settings.connect_timeout = std::min<std::chrono::milliseconds>(options.timeout, std::chrono::seconds(5));
    settings.user_agent = "mp3converter-notification";
    settings.refuse_private_addresses = !options.allow_private;
    outbound::Transfer transfer(url, settings);
    transfer.header("Content-Type: application/json");
    transfer.header(std::string(kSignatureHeader) + ": " + webhook_signature(options.secret, body));
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
