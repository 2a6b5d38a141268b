#pragma once

// Owners of libcurl's handles (header-only: each user links libcurl itself). Envoy's rule: every C handle is owned by
// a unique_ptr with a deleter.
#include <curl/curl.h>

#include <memory>

namespace mp3c::curl {

struct EasyFree {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct MimeFree {
    void operator()(curl_mime* m) const { curl_mime_free(m); }
};
struct UrlFree {
    void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

using EasyPtr = std::unique_ptr<CURL, EasyFree>;
using SlistPtr = std::unique_ptr<curl_slist, SlistFree>;
using MimePtr = std::unique_ptr<curl_mime, MimeFree>;
using UrlPtr = std::unique_ptr<CURLU, UrlFree>;

}  // namespace mp3c::curl
