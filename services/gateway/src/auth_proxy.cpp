#include "auth_proxy.hpp"

#include <nlohmann/json.hpp>

#include "mp3c/log.hpp"
#include "mp3c/outbound.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::gateway {

namespace {
constexpr size_t kMaxAnswerBytes = 1 << 20;
}  // namespace

AuthProxy::AuthProxy(std::string base_url, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), timeout_(timeout) {}

http::Response AuthProxy::forward(const http::Request& request, const std::string& path) const {
    std::string url = base_url_ + path;
    outbound::Options options;
    options.connect_timeout = timeout_;
    options.timeout = timeout_;
    outbound::Transfer transfer(url, options);
    for (const char* name : {"Authorization", "Accept", "Content-Type"}) {
        if (auto value = request.headers.get(name)) transfer.header(std::string(name) + ": " + std::string(*value));
    }
    transfer.header("X-Request-Id: " + request.request_id);
    transfer.header("X-Forwarded-For: " + request.client_address);
    transfer.header("Expect:");  // no 100-continue round trip for small bodies
    if (request.method != "GET") transfer.post(request.body);
    http::Response response;
    transfer.collect_body(response.body, kMaxAnswerBytes);
    transfer.on_header([&](std::string_view name, std::string_view value) {
        for (const char* keep : {"Content-Type", "Retry-After", "WWW-Authenticate"}) {
            if (iequals(name, keep)) response.headers.set(keep, std::string(value));
        }
    });
    auto status = transfer.perform();
    if (!status) {
        log::warn("auth service unavailable",
                  {{"request_id", request.request_id}, {"url", url}, {"error", status.error().detail}});
        auto r = http::Response::error(503, "auth_unavailable", "the auth service is unavailable, try again shortly");
        r.headers.set("Retry-After", "5");
        return r;
    }
    response.status = static_cast<int>(status.value());
    return response;
}

http::Response AuthProxy::follow_verification_link(const http::Request& request) const {
    http::Request redeem;
    redeem.method = "POST";
    redeem.request_id = request.request_id;
    redeem.client_address = request.client_address;
    redeem.headers.set("Content-Type", "application/json");
    redeem.headers.set("Accept", "application/json");
    redeem.body = nlohmann::json{{"token", request.query_param("token").value_or("")}}.dump();
    http::Response answer = forward(redeem, "/verify");
    auto accept = request.headers.get("Accept");
    if (accept && accept->find("application/json") != std::string_view::npos) return answer;
    std::string where = "/#verified";
    if (answer.status != 200) {
        auto body = nlohmann::json::parse(answer.body, nullptr, false);
        std::string code = body.is_object() ? body.value("error", "") : "";
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
}

}  // namespace mp3c::gateway
