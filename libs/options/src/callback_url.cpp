#include "mp3c/callback_url.hpp"

#include <curl/curl.h>

#include <memory>

#include "mp3c/curl_handles.hpp"

namespace mp3c {

Check check_callback_url(const std::string& url) {
    if (url.empty()) return std::string("callback_url is empty");
    if (url.size() > 2000) return std::string("callback_url is longer than 2000 characters");
    // libcurl reads up to a NUL and forgives what a URL may not hold: whatever it does not see is refused here first
    // (found by bench/fuzz-campaign: "http://127.0.0.\0\0\000/webhook" passed as http://127.0.0./).
    for (unsigned char c : url) {
        if (c <= 0x20 || c >= 0x7f) {
            return std::string(
                "callback_url must be ASCII without spaces or control characters (percent-encode the rest)");
        }
    }
    // The authority must be spelt out right after the scheme: not "http:/host" or "http:///host", which libcurl also
    // takes, and no "@", not even with an empty user name ("http://@host").
    const auto scheme_end = url.find(':');
    if (scheme_end == std::string::npos || url.compare(scheme_end, 3, "://") != 0) {
        return std::string("callback_url is not a valid URL");
    }
    const auto authority = url.substr(scheme_end + 3, url.find_first_of("/?#", scheme_end + 3) - scheme_end - 3);
    if (authority.empty()) return std::string("callback_url has no host");
    if (authority.find('@') != std::string::npos) {
        return std::string("callback_url must not contain a user name or password");
    }
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
