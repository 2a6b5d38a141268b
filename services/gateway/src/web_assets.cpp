#include "web_assets.hpp"

#include <string>

#include "mp3c/crypto.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::gateway {

namespace {

std::string content_type(std::string_view path) {
    if (path.ends_with(".html")) return "text/html; charset=utf-8";
    if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
    if (path.ends_with(".css")) return "text/css; charset=utf-8";
    if (path.ends_with(".svg")) return "image/svg+xml";
    if (path.ends_with(".png")) return "image/png";
    return "application/octet-stream";
}

// Same origin only, no inline script or style: the page never needs anything else, and it blunts injected markup.
constexpr const char* kPolicy =
    "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

}  // namespace

void add_web_routes(http::Router& router) {
    for (const auto& file : embedded_web_files()) {
        std::string etag = "\"" + crypto::to_hex(crypto::sha256(file.bytes)).substr(0, 32) + "\"";
        std::string type = content_type(file.path);
        std::string_view bytes = file.bytes;
        auto handler = [etag, type, bytes](http::Request& request) {
            http::Response r;
            r.headers.set("Cache-Control", "no-cache");  // revalidate: a new gateway may bring a new page
            r.headers.set("ETag", etag);
            r.headers.set("X-Content-Type-Options", "nosniff");
            r.headers.set("Referrer-Policy", "no-referrer");
            if (type.starts_with("text/html")) {
                r.headers.set("Content-Security-Policy", kPolicy);
                r.headers.set("X-Frame-Options", "DENY");
            }
            if (auto match = request.headers.get("If-None-Match"); match && trim(*match) == etag) {
                r.status = 304;
                return r;
            }
            r.status = 200;
            r.headers.set("Content-Type", type);
            r.body = std::string(bytes);
            return r;
        };
        router.add("GET", std::string(file.path), handler);
        if (file.path == "/index.html") router.add("GET", "/", handler);
    }
}

}  // namespace mp3c::gateway
