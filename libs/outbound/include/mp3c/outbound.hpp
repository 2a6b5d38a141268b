#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "mp3c/result.hpp"

typedef void CURL;  // libcurl's easy handle, as <curl/curl.h> declares it

// Every outgoing call of the system goes through here (the gateway's pass-through to auth, SMTP, webhooks, the
// mp3conv client): one place owns libcurl's global set-up, each transfer's handle, header list and error buffer
// from the moment they exist, the timeouts, the protocols allowed, TLS trust, the proxy policy and the guard against
// connecting inside the network. A failed transfer is a Failure whose Outcome says whether trying again can help.
namespace mp3c::outbound {

struct Options {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds timeout{30000};  // the whole transfer; 0: no limit (a long download watches progress)
    std::string protocols = "http,https";      // what a URL (or a redirect) may use
    std::string user_agent = "mp3converter";
    std::string ca_file;             // trust this CA bundle instead of the system's
    bool environment_proxy = false;  // honour http_proxy and friends (the client does; services do not)
    // Refuse to connect to loopback, private, link-local, carrier-grade NAT, multicast, reserved and documentation
    // addresses, checked on the address actually connected to (so neither DNS nor a redirect can point inside).
    bool refuse_private_addresses = false;
};

// The base URL of an internal service from its address setting: "auth:5000" (as the original) becomes
// "http://auth:5000"; a URL with a scheme stays; trailing slashes are dropped.
std::string service_url(std::string address);
// Percent-encodes a query parameter's value.
std::string query_escape(std::string_view value);

// Whether an address may be called by a guarded transfer (see Options::refuse_private_addresses); IPv4-mapped and
// NAT64 forms of IPv4 ranges are judged as those ranges.
bool is_public_address(const sockaddr* address);

class Transfer {
  public:
    // Throws std::runtime_error when libcurl cannot start a handle (out of memory).
    Transfer(const std::string& url, const Options& options);
    ~Transfer();
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    // A request header line ("Name: value"); the list is owned by the transfer.
    void header(const std::string& line);
    // The request body, sent as a POST (the string must outlive perform()).
    void post(std::string_view body);
    // The response body into `into`, at most `max_bytes` (more aborts the transfer as a permanent failure).
    void collect_body(std::string& into, size_t max_bytes);
    // Each response header as it arrives (name and value trimmed).
    void on_header(std::function<void(std::string_view name, std::string_view value)> sink);
    // The raw handle, for the options one use alone needs (SMTP's envelope, uploads, authentication...). Its lists
    // and buffers are the caller's to keep alive until perform() returns.
    CURL* handle();

    // Runs the transfer. Ok: the response code (HTTP status, or the SMTP server's last reply). A Failure: no usable
    // answer, with the response code when there was one: permanent for a URL that cannot work (malformed, a protocol
    // not allowed), a refused address (address_refused() says which) or a body over its limit; transient otherwise.
    Result<long, Failure> perform();
    bool address_refused() const;
    const std::string& refused_address() const;
    int curl_code() const;  // the last perform()'s CURLcode, for the one use that must tell some apart (SMTP logins)

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mp3c::outbound
