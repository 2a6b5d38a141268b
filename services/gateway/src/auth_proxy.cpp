#include "auth_proxy.hpp"

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
    transfer.post(request.body);
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

}  // namespace mp3c::gateway
