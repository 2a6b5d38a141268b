#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <cctype>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "mp3c/curl_handles.hpp"
#include "mp3c/outbound.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::outbound {

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

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

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

struct Transfer::Impl {
    curl::EasyPtr easy;
    curl::SlistPtr headers;
    char error[CURL_ERROR_SIZE] = {0};
    // The body sink.
    std::string* body = nullptr;
    size_t max_body = 0;
    bool body_too_large = false;
    std::function<void(std::string_view, std::string_view)> header_sink;
    // The private-address guard.
    CURLcode last = CURLE_OK;
    bool guard = false;
    bool refused = false;
    std::string refused_address;

    static size_t on_body(char* data, size_t size, size_t count, void* user) {
        auto* self = static_cast<Impl*>(user);
        size_t n = size * count;
        if (self->body->size() + n > self->max_body) {
            self->body_too_large = true;
            return 0;  // aborts the transfer
        }
        self->body->append(data, n);
        return n;
    }

    static size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

    static size_t on_header(char* data, size_t size, size_t count, void* user) {
        auto* self = static_cast<Impl*>(user);
        std::string_view line(data, size * count);
        if (auto colon = line.find(':'); colon != std::string_view::npos && self->header_sink) {
            self->header_sink(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
        }
        return size * count;
    }

    static curl_socket_t open_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
        auto* self = static_cast<Impl*>(user);
        if (purpose == CURLSOCKTYPE_IPCXN && self->guard && !is_public_address(&address->addr)) {
            char text[INET6_ADDRSTRLEN] = {0};
            if (address->family == AF_INET) {
                inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address->addr)->sin_addr, text, sizeof text);
            } else if (address->family == AF_INET6) {
                inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&address->addr)->sin6_addr, text, sizeof text);
            }
            self->refused = true;
            self->refused_address = text;
            return CURL_SOCKET_BAD;
        }
        return ::socket(address->family, address->socktype, address->protocol);
    }
};

Transfer::Transfer(const std::string& url, const Options& options) : impl_(std::make_unique<Impl>()) {
    global_init();
    impl_->easy.reset(curl_easy_init());
    if (!impl_->easy) throw std::runtime_error("libcurl could not start a transfer");
    CURL* c = impl_->easy.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, options.protocols.c_str());
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, options.protocols.c_str());
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is the caller's to judge, never followed
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);        // timeouts without SIGALRM: the services are multi-threaded
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
    curl_easy_setopt(c, CURLOPT_USERAGENT, options.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, impl_->error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Impl::discard);
    if (!options.environment_proxy) curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (!options.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
    impl_->guard = options.refuse_private_addresses;
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, &Impl::open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, impl_.get());
}

Transfer::~Transfer() = default;

void Transfer::header(const std::string& line) {
    curl_slist* grown = curl_slist_append(impl_->headers.get(), line.c_str());
    if (grown == nullptr) throw std::runtime_error("out of memory for a request header");
    impl_->headers.release();  // now owned through `grown` (the same list, or its new head)
    impl_->headers.reset(grown);
    curl_easy_setopt(impl_->easy.get(), CURLOPT_HTTPHEADER, impl_->headers.get());
}

void Transfer::post(std::string_view body) {
    CURL* c = impl_->easy.get();
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
}

void Transfer::collect_body(std::string& into, size_t max_bytes) {
    impl_->body = &into;
    impl_->max_body = max_bytes;
    curl_easy_setopt(impl_->easy.get(), CURLOPT_WRITEFUNCTION, &Impl::on_body);
    curl_easy_setopt(impl_->easy.get(), CURLOPT_WRITEDATA, impl_.get());
}

void Transfer::on_header(std::function<void(std::string_view, std::string_view)> sink) {
    impl_->header_sink = std::move(sink);
    curl_easy_setopt(impl_->easy.get(), CURLOPT_HEADERFUNCTION, &Impl::on_header);
    curl_easy_setopt(impl_->easy.get(), CURLOPT_HEADERDATA, impl_.get());
}

CURL* Transfer::handle() { return impl_->easy.get(); }

bool Transfer::address_refused() const { return impl_->refused; }
int Transfer::curl_code() const { return impl_->last; }
const std::string& Transfer::refused_address() const { return impl_->refused_address; }

Result<long, Failure> Transfer::perform() {
    CURL* c = impl_->easy.get();
    CURLcode rc = curl_easy_perform(c);
    impl_->last = rc;
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK) return code;
    Failure failure;
    failure.code = code;
    failure.detail =
        std::string(curl_easy_strerror(rc)) + (impl_->error[0] != '\0' ? std::string(": ") + impl_->error : "");
    bool unusable_url = rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT;
    if (impl_->refused) {
        failure.detail = "the address " + impl_->refused_address + " is inside the network";
    } else if (impl_->body_too_large) {
        failure.detail = "the answer is larger than " + std::to_string(impl_->max_body) + " bytes";
    }
    failure.outcome = unusable_url || impl_->refused || impl_->body_too_large ? Outcome::permanent : Outcome::transient;
    return failure;
}

std::string service_url(std::string address) {
    if (address.find("://") == std::string::npos) address = "http://" + address;
    while (!address.empty() && address.back() == '/') address.pop_back();
    return address;
}

std::string query_escape(std::string_view value) {
    std::string out;
    for (unsigned char c : value) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            static constexpr char kHex[] = "0123456789ABCDEF";
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

}  // namespace mp3c::outbound
