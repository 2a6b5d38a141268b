#include "webhook.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <mutex>

#include "mp3c/callback_url.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/curl_handles.hpp"

namespace mp3c::notification {

namespace {

bool ipv4_public(uint32_t a) {  // host byte order
    auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
    return !(in(0x00000000, 8) ||   // "this network"
             in(0x0A000000, 8) ||   // 10/8
             in(0x64400000, 10) ||  // 100.64/10 carrier-grade NAT
             in(0x7F000000, 8) ||   // loopback
             in(0xA9FE0000, 16) ||  // link-local (cloud metadata services live here)
             in(0xAC100000, 12) ||  // 172.16/12
             in(0xC0000000, 24) ||  // 192.0.0/24 protocol assignments
             in(0xC0000200, 24) ||  // 192.0.2/24 documentation
             in(0xC0A80000, 16) ||  // 192.168/16
             in(0xC6120000, 15) ||  // 198.18/15 benchmarking
             in(0xC6336400, 24) ||  // 198.51.100/24 documentation
             in(0xCB007100, 24) ||  // 203.0.113/24 documentation
             in(0xE0000000, 4) ||   // multicast
             in(0xF0000000, 4));    // reserved, broadcast
}

struct Refusal {
    bool allow_private = false;
    bool refused = false;
    std::string address;
};

curl_socket_t open_checked_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
    auto* refusal = static_cast<Refusal*>(user);
    if (purpose == CURLSOCKTYPE_IPCXN && !refusal->allow_private && !is_public_address(&address->addr)) {
        char text[INET6_ADDRSTRLEN] = {0};
        if (address->family == AF_INET) {
            inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address->addr)->sin_addr, text, sizeof text);
        } else if (address->family == AF_INET6) {
            inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&address->addr)->sin6_addr, text, sizeof text);
        }
        refusal->refused = true;
        refusal->address = text;
        return CURL_SOCKET_BAD;
    }
    return ::socket(address->family, address->socktype, address->protocol);
}

size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

std::string webhook_signature(std::string_view secret, std::string_view body) {
    return "sha256=" + crypto::to_hex(crypto::hmac_sha256(secret, body));
}

bool is_public_address(const sockaddr* address) {
    if (address->sa_family == AF_INET) {
        return ipv4_public(ntohl(reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr));
    }
    if (address->sa_family != AF_INET6) return false;
    const uint8_t* b = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr.s6_addr;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kNat64, 12) == 0) {
        return ipv4_public((uint32_t(b[12]) << 24) | (uint32_t(b[13]) << 16) | (uint32_t(b[14]) << 8) | b[15]);
    }
    bool zero_prefix = true;  // ::, ::1 and the old IPv4-compatible ::a.b.c.d
    for (int i = 0; i < 12; ++i) zero_prefix = zero_prefix && b[i] == 0;
    if (zero_prefix) return false;
    if ((b[0] & 0xfe) == 0xfc) return false;                                         // fc00::/7 unique local
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;                         // fe80::/10 link-local
    if (b[0] == 0xff) return false;                                                  // multicast
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;  // 2001:db8::/32 documentation
    return true;
}

namespace {
WebhookFailure failure(Outcome outcome, long status, std::string detail) {
    WebhookFailure f;
    f.outcome = outcome;
    f.code = status;
    f.detail = std::move(detail);
    return f;
}
}  // namespace

WebhookResult deliver_webhook(const WebhookOptions& options, const std::string& url, const std::string& body) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (auto checked = check_callback_url(url); !checked) return failure(Outcome::permanent, 0, checked.error());
    curl::EasyPtr curl(curl_easy_init());
    if (!curl) return failure(Outcome::transient, 0, "libcurl could not start");
    curl_slist* raw = curl_slist_append(nullptr, "Content-Type: application/json");
    raw = curl_slist_append(raw,
                            (std::string(kSignatureHeader) + ": " + webhook_signature(options.secret, body)).c_str());
    raw = curl_slist_append(raw, "Expect:");
    curl::SlistPtr headers(raw);
    Refusal refusal{.allow_private = options.allow_private};
    char error[CURL_ERROR_SIZE] = {0};
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through a proxy from the environment
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, &open_checked_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &refusal);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mp3converter-notification");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(options.timeout.count(), 5000)));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    CURLcode rc = curl_easy_perform(c);
    // A name with several addresses may have been refused on one and delivered on another: only a call that did not
    // get through counts as refused.
    if (rc != CURLE_OK && refusal.refused) {
        WebhookFailure refused = failure(Outcome::permanent, 0,
                                         "the callback URL leads to " + refusal.address +
                                             ", an address inside the network (set WEBHOOK_ALLOW_PRIVATE to allow it)");
        refused.address_refused = true;
        return refused;
    }
    if (rc != CURLE_OK) {
        std::string detail = std::string(curl_easy_strerror(rc)) + (error[0] != '\0' ? std::string(": ") + error : "");
        bool permanent = rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT;
        return failure(permanent ? Outcome::permanent : Outcome::transient, 0, detail);
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status <= 299) return status;
    std::string detail = "the receiver answered " + std::to_string(status);
    if (status == 408 || status == 429 || status >= 500) return failure(Outcome::transient, status, detail);
    return failure(Outcome::permanent, status, detail);  // 3xx (not followed) and other 4xx
}

}  // namespace mp3c::notification
