#pragma once

#include <string_view>
#include <vector>

#include "mp3c/http.hpp"

// The web page (services/gateway/web), compiled into the gateway and served at /, /app.js and /app.css.
namespace mp3c::gateway {

struct EmbeddedFile {
    std::string_view path;  // "/index.html"
    std::string_view bytes;
};
const std::vector<EmbeddedFile>& embedded_web_files();  // generated at build time (cmake/EmbedFiles.cmake)

// Adds GET routes for the page's files, with a strict Content-Security-Policy, ETags and revalidation.
void add_web_routes(http::Router& router);

}  // namespace mp3c::gateway
