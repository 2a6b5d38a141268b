#include "auth_proxy.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace mp3c::gateway {

namespace {
// A client that keeps hammering waits for each refusal (up to a second): a flood of refusals then costs little.
std::chrono::milliseconds hold_for(std::chrono::seconds retry_after) {
    return std::min<std::chrono::milliseconds>(retry_after, std::chrono::seconds(1));
}
}  // namespace

http::Forward AuthProxy::to(std::string path, const AddressLimit* limit) const {
    http::Forward f{.upstream = auth_, .path = std::move(path)};
    if (limit != nullptr && limit->buckets != nullptr) {
        f.before = [limit](http::Request& outgoing) -> std::optional<http::Response> {
            auto wait = limit->buckets->take(client_key(outgoing.client_address));
            if (!wait) return std::nullopt;
            auto refused = limit_reached(limit->code, "too many requests from your address, try again later",
                                         limit->setting, limit->buckets->per_period(), wait->count());
            refused.delay = hold_for(*wait);
            return refused;
        };
    }
    // Auth's own refusals (its sign-in throttle) and the busy or unavailable auth are held the same way.
    f.after = [](const http::Request&, http::Response answer) {
        if (answer.status == 429 || answer.status == 503) {
            auto seconds = answer.headers.get("Retry-After").value_or("1");
            answer.delay = hold_for(std::chrono::seconds(std::clamp(std::atoi(std::string(seconds).c_str()), 1, 60)));
        }
        return answer;
    };
    return f;
}

http::Forward AuthProxy::verification_link() const {
    http::Forward f{.upstream = auth_, .path = "/verify"};
    f.before = [](http::Request& outgoing) -> std::optional<http::Response> {
        nlohmann::json body{{"token", outgoing.query_param("token").value_or("")}};
        outgoing.method = "POST";
        outgoing.headers = {};
        outgoing.headers.set("Content-Type", "application/json");
        outgoing.headers.set("Accept", "application/json");
        outgoing.body = body.dump();
        return std::nullopt;
    };
    f.after = [](const http::Request& received, http::Response answer) {
        auto accept = received.headers.get("Accept");
        if (accept && accept->find("application/json") != std::string_view::npos) return answer;
        std::string where = "/#verified";
        if (answer.status != 200) {
            auto body = nlohmann::json::parse(answer.body, nullptr, false);
            std::string code;
            if (body.is_object() && body.contains("error") && body["error"].is_string()) code = body["error"];
            // Only the codes auth gives, never text from the request, go into the page's address.
            if (code != "link_used" && code != "link_expired" && code != "invalid_link") code = "unavailable";
            where = "/#verify-failed=" + code;
        }
        http::Response r;
        r.status = 303;
        r.headers.set("Location", where);
        r.headers.set("Cache-Control", "no-store");
        r.headers.set("Referrer-Policy", "no-referrer");  // the link's address carried the token
        return r;
    };
    return f;
}

http::Forward AuthProxy::unsubscribe() const {
    http::Forward f = to("/unsubscribe");
    f.before = [](http::Request& outgoing) -> std::optional<http::Response> {
        nlohmann::json body{{"token", outgoing.query_param("token").value_or("")}};
        outgoing.headers = {};
        outgoing.headers.set("Content-Type", "application/json");
        outgoing.headers.set("Accept", "application/json");
        outgoing.body = body.dump();
        return std::nullopt;
    };
    return f;
}

http::Response AuthProxy::unsubscribe_page(const http::Request& request) {
    std::string token = request.query_param("token").value_or("");
    // Only a token's own characters go into the page's address.
    bool plain = !token.empty() && token.size() <= 100 && std::all_of(token.begin(), token.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
    http::Response r;
    r.status = 303;
    r.headers.set("Location", plain ? "/#unsubscribe=" + token : std::string("/#unsubscribe-failed"));
    r.headers.set("Cache-Control", "no-store");
    r.headers.set("Referrer-Policy", "no-referrer");
    return r;
}

}  // namespace mp3c::gateway
