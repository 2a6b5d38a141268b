#include "mp3c/http.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::http {

void Headers::set(std::string name, std::string value) {
    for (auto& h : headers_) {
        if (iequals(h.name, name)) {
            h.value = std::move(value);
            return;
        }
    }
    headers_.push_back({std::move(name), std::move(value)});
}

void Headers::add(std::string name, std::string value) { headers_.push_back({std::move(name), std::move(value)}); }

std::optional<std::string_view> Headers::get(std::string_view name) const {
    for (const auto& h : headers_)
        if (iequals(h.name, name)) return std::string_view(h.value);
    return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return std::nullopt;
            int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_as_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
    for (auto pair : split(query, '&')) {
        auto eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq), true);
        if (!key || *key != name) continue;
        if (eq == std::string_view::npos) return std::string();
        return percent_decode(pair.substr(eq + 1), true);
    }
    return std::nullopt;
}

const std::string& Request::path_param(const std::string& name) const {
    static const std::string kEmpty;
    auto it = path_params.find(name);
    return it == path_params.end() ? kEmpty : it->second;
}

Response Response::json(int status, const nlohmann::json& body) {
    Response r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
}

Response Response::text(int status, std::string body, std::string content_type) {
    Response r;
    r.status = status;
    r.headers.set("Content-Type", std::move(content_type));
    r.body = std::move(body);
    return r;
}

Response Response::error(int status, std::string_view code, std::string_view message) {
    return json(status, {{"error", code}, {"message", message}});
}

std::shared_ptr<Upstream> Upstream::from_url(std::string name, std::string_view url, std::chrono::milliseconds timeout,
                                             size_t max_in_flight) {
    constexpr std::string_view kScheme = "http://";
    if (url.substr(0, kScheme.size()) != kScheme) return nullptr;
    std::string_view rest = url.substr(kScheme.size());
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string base = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
    while (!base.empty() && base.back() == '/') base.pop_back();
    auto up = std::make_shared<Upstream>();
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
        auto port_text = authority.substr(colon + 1);
        unsigned port = 0;
        if (port_text.empty() || port_text.size() > 5) return nullptr;
        for (char c : port_text) {
            if (c < '0' || c > '9') return nullptr;
            port = port * 10 + static_cast<unsigned>(c - '0');
        }
        if (port == 0 || port > 65535) return nullptr;
        up->port = static_cast<uint16_t>(port);
        authority = authority.substr(0, colon);
    }
    if (authority.size() > 2 && authority.front() == '[' && authority.back() == ']') {
        authority = authority.substr(1, authority.size() - 2);
    }
    if (authority.empty() || authority.find_first_of("@/?#[] ") != std::string_view::npos) return nullptr;
    up->name = std::move(name);
    up->host = std::string(authority);
    up->base_path = std::move(base);
    up->timeout = timeout;
    up->max_in_flight = max_in_flight;
    return up;
}

}  // namespace mp3c::http
