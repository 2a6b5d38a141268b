#include <stdexcept>

#include "mp3c/http.hpp"
#include "mp3c/log.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::http {
namespace {

std::vector<std::string> path_segments(std::string_view path) {
    std::vector<std::string> out;
    if (path.empty() || path[0] != '/') return out;
    for (auto part : split(path.substr(1), '/')) out.emplace_back(part);
    return out;
}

bool is_capture(const std::string& segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler, RouteOptions options) {
    if (pattern.empty() || pattern[0] != '/') throw std::invalid_argument("route pattern must start with '/'");
    Route route{std::move(method), pattern, path_segments(pattern), std::move(handler), nullptr, nullptr, options};
    routes_.push_back(std::move(route));
}

void Router::add_streaming(std::string method, std::string pattern, StreamingHandler handler, RouteOptions options) {
    add(std::move(method), std::move(pattern), nullptr, options);
    routes_.back().streaming = std::move(handler);
}

void Router::forward(std::string method, std::string pattern, Forward forward, RouteOptions options) {
    if (!forward.upstream) throw std::invalid_argument("forward route without an upstream: " + pattern);
    add(std::move(method), std::move(pattern), nullptr, options);
    routes_.back().forward = std::make_shared<const Forward>(std::move(forward));
}

namespace {
bool serves(Router::Listener listener, Exposure exposure) {
    switch (listener) {
        case Router::Listener::only:
            return true;
        case Router::Listener::public_port:
            return exposure != Exposure::admin_port;
        case Router::Listener::admin_port:
            return exposure != Exposure::public_port;
    }
    return false;
}
}  // namespace

Router::Match Router::match(std::string_view method, std::string_view path, Listener listener) const {
    Match result;
    auto segments = path_segments(path);
    for (const auto& route : routes_) {
        if (route.segments.size() != segments.size() || !serves(listener, route.options.exposure)) continue;
        std::map<std::string, std::string> params;
        bool matched = true;
        for (size_t i = 0; i < segments.size() && matched; ++i) {
            const auto& want = route.segments[i];
            if (is_capture(want)) {
                auto decoded = percent_decode(segments[i], false);
                if (!decoded || decoded->empty()) {
                    matched = false;
                } else {
                    params[want.substr(1, want.size() - 2)] = std::move(*decoded);
                }
            } else {
                matched = want == segments[i];
            }
        }
        if (!matched) continue;
        // HEAD is served by the GET handler (the server drops the body).
        if (route.method == method || (method == "HEAD" && route.method == "GET")) {
            result.route = &route;
            result.params = std::move(params);
            result.allowed_methods.clear();
            return result;
        }
        result.allowed_methods.push_back(route.method);
    }
    return result;
}

Response Router::handle_exception(std::exception_ptr error, const Request& request) const {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        for (const auto& mapper : mappers_) {
            if (auto response = mapper(e)) return *response;
        }
        log::error("unhandled exception in handler",
                   {{"request_id", request.request_id}, {"route", request.route}, {"error", e.what()}});
    } catch (...) {
        log::error("unhandled non-standard exception in handler",
                   {{"request_id", request.request_id}, {"route", request.route}});
    }
    return Response::error(500, "internal_error", "internal server error");
}

}  // namespace mp3c::http
