#include "mp3c/callback_url.hpp"

#include <curl/curl.h>

#include <memory>

#include "mp3c/curl_handles.hpp"

namespace mp3c {

Check check_callback_url(const std::string& url) {
    if (url.empty()) return std::string("callback_url is empty");
    if (url.size() > 2000) return std::string("callback_url is longer than 2000 characters");
    curl::UrlPtr parsed(curl_url());
    if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
        return std::string("callback_url is not a valid URL");
    }
    auto part = [&](CURLUPart which) -> std::string {
        char* value = nullptr;
        if (curl_url_get(parsed.get(), which, &value, 0) != CURLUE_OK || value == nullptr) return "";
        std::string out = value;
        curl_free(value);
        return out;
    };
    std::string scheme = part(CURLUPART_SCHEME);
    if (scheme != "http" && scheme != "https") return std::string("callback_url must be an http or https URL");
    if (part(CURLUPART_HOST).empty()) return std::string("callback_url has no host");
    if (!part(CURLUPART_USER).empty() || !part(CURLUPART_PASSWORD).empty()) {
        return std::string("callback_url must not contain a user name or password");
    }
    return Ok{};
}

}  // namespace mp3c
