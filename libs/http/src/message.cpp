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

}  // namespace mp3c::http
