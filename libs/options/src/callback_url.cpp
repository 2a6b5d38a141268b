#include "mp3c/callback_url.hpp"

#include <curl/curl.h>

#include <memory>

#include "mp3c/curl_handles.hpp"

namespace mp3c {

std::string callback_url_problem(const std::string& url) {
    if (url.empty()) return "callback_url is empty";
    if (url.size() > 2000) return "callback_url is longer than 2000 characters";
    curl::UrlPtr parsed(curl_url());
    if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
        return "callback_url is not a valid URL";
    }
    auto part = [&](CURLUPart which) -> std::string {
        char* value = nullptr;
        if (curl_url_get(parsed.get(), which, &value, 0) != CURLUE_OK || value == nullptr) return "";
        std::string out = value;
        curl_free(value);
        return out;
    };
    std::string scheme = part(CURLUPART_SCHEME);
    if (scheme != "http" && scheme != "https") return "callback_url must be an http or https URL";
    if (part(CURLUPART_HOST).empty()) return "callback_url has no host";
    if (!part(CURLUPART_USER).empty() || !part(CURLUPART_PASSWORD).empty()) {
        return "callback_url must not contain a user name or password";
    }
    return "";
}

}  // namespace mp3c
