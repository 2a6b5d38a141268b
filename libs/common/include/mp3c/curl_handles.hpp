#pragma once

// Owners of libcurl's handles (header-only: each user links libcurl itself). Envoy's rule: every C handle is owned by
// a unique_ptr with a deleter.
#include <curl/curl.h>

#include "mp3c/c_handle.hpp"

namespace mp3c::curl {

using EasyPtr = CHandle<CURL, curl_easy_cleanup>;
using SlistPtr = CHandle<curl_slist, curl_slist_free_all>;
using MimePtr = CHandle<curl_mime, curl_mime_free>;
using UrlPtr = CHandle<CURLU, curl_url_cleanup>;

}  // namespace mp3c::curl
