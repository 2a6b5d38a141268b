#include "auth_proxy.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include "mp3c/curl_handles.hpp"
#include "mp3c/log.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::gateway {

namespace {

constexpr size_t kMaxAnswerBytes = 1 << 20;

struct Answer {
    std::string body;
    http::Headers headers;
    bool too_large = false;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto* answer = static_cast<Answer*>(user);
    size_t n = size * count;
    if (answer->body.size() + n > kMaxAnswerBytes) {
        answer->too_large = true;
        return 0;  // aborts the transfer
    }
    answer->body.append(data, n);
    return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* answer = static_cast<Answer*>(user);
    std::string_view line(data, size * count);
    auto colon = line.find(':');
    if (colon != std::string_view::npos) {
        auto name = trim(line.substr(0, colon));
        auto value = trim(line.substr(colon + 1));
        for (const char* keep : {"Content-Type", "Retry-After", "WWW-Authenticate"}) {
            if (iequals(name, keep)) answer->headers.set(keep, std::string(value));
        }
    }
    return size * count;
}

}  // namespace

AuthProxy::AuthProxy(std::string base_url, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), timeout_(timeout) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

http::Response AuthProxy::forward(const http::Request& request, const std::string& path) const {
    curl::EasyPtr curl(curl_easy_init());
    if (!curl) return http::Response::error(503, "auth_unavailable", "the auth service cannot be reached");
    std::string url = base_url_ + path;
    curl_slist* raw = nullptr;
    for (const char* name : {"Authorization", "Accept", "Content-Type"}) {
        if (auto value = request.headers.get(name))
            raw = curl_slist_append(raw, (std::string(name) + ": " + std::string(*value)).c_str());
    }
    raw = curl_slist_append(raw, ("X-Request-Id: " + request.request_id).c_str());
    raw = curl_slist_append(raw, ("X-Forwarded-For: " + request.client_address).c_str());
    raw = curl_slist_append(raw, "Expect:");  // no 100-continue round trip for small bodies
    curl::SlistPtr headers(raw);
    Answer answer;
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: we are multi-threaded
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &answer);
    CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK || answer.too_large) {
        log::warn("auth service unavailable",
                  {{"request_id", request.request_id}, {"url", url}, {"error", curl_easy_strerror(rc)}});
        auto r = http::Response::error(503, "auth_unavailable", "the auth service is unavailable, try again shortly");
        r.headers.set("Retry-After", "5");
        return r;
    }
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    http::Response response;
    response.status = static_cast<int>(status);
    response.body = std::move(answer.body);
    response.headers = std::move(answer.headers);
    return response;
}

}  // namespace mp3c::gateway
