// Routes another service answers (Router::forward): the call runs on the I/O thread as a Beast client coroutine, so a
// slow or flooded upstream holds sockets, never the worker threads every other route needs.
#include "server_impl.hpp"
//
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>

#include "mp3c/log.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::http {

namespace {

Response unavailable(const Upstream& up, const Request& request, const std::string& what,
                     const boost::system::error_code& ec) {
    log::warn("upstream call failed",
              {{"request_id", request.request_id}, {"upstream", up.name}, {"stage", what}, {"error", ec.message()}});
    auto r =
        Response::error(503, up.name + "_unavailable", "the " + up.name + " service is unavailable, try again shortly");
    r.headers.set("Retry-After", "5");
    return r;
}

// Decrements the upstream's in-flight count however the call ends.
struct InFlight {
    explicit InFlight(Upstream& up) : up(up) {}
    ~InFlight() { up.in_flight.fetch_sub(1); }
    Upstream& up;
};

awaitable<Response> call(Upstream& up, const Forward& forward, const Request& outgoing) {
    auto executor = co_await asio::this_coro::executor;
    auto deadline = Clock::now() + up.timeout;  // one deadline for the lookup, connecting, sending and the answer
    boost::system::error_code ec;
    tcp::resolver resolver(executor);
    // The resolver has no timeout of its own: a timer on the same strand cancels a lookup that hangs.
    asio::steady_timer lookup_deadline(executor, deadline);
    lookup_deadline.async_wait([&resolver](boost::system::error_code e) {
        if (!e) resolver.cancel();
    });
    auto endpoints =
        co_await resolver.async_resolve(up.host, std::to_string(up.port), asio::redirect_error(use_awaitable, ec));
    lookup_deadline.cancel();
    if (ec) co_return unavailable(up, outgoing, "resolve", ec);
    beast::tcp_stream stream(executor);
    stream.expires_at(deadline);
    co_await stream.async_connect(endpoints, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return unavailable(up, outgoing, "connect", ec);

    bhttp::request<bhttp::string_body> out;
    out.version(11);
    out.method_string(outgoing.method);
    out.target(up.base_path + forward.path);
    out.set(bhttp::field::host, up.host);
    for (const auto& name : forward.pass_headers) {
        if (auto value = outgoing.headers.get(name)) out.set(name, std::string(*value));
    }
    out.set("X-Request-Id", outgoing.request_id);
    out.set("X-Forwarded-For", outgoing.client_address);
    out.keep_alive(false);
    if (outgoing.method != "GET" && outgoing.method != "HEAD") {
        out.body() = outgoing.body;
        out.prepare_payload();
    }
    co_await bhttp::async_write(stream, out, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return unavailable(up, outgoing, "send", ec);

    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(up.max_answer_bytes);
    co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return unavailable(up, outgoing, "answer", ec);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);

    auto& answer = parser.get();
    Response response;
    response.status = static_cast<int>(answer.result_int());
    for (const auto& name : forward.return_headers) {
        auto it = answer.find(name);
        if (it != answer.end()) response.headers.set(name, std::string(it->value()));
    }
    response.body = std::move(answer.body());
    co_return response;
}

}  // namespace

awaitable<Response> Server::Impl::forward_request(const Forward& forward, Request& request) {
    Upstream& up = *forward.upstream;
    in_flight.add(1);
    Response response;
    try {
        Request outgoing = request;
        std::optional<Response> early;
        if (forward.before) early = forward.before(outgoing);
        if (early) {
            response = std::move(*early);
        } else if (up.in_flight.fetch_add(1) >= up.max_in_flight) {
            up.in_flight.fetch_sub(1);
            response =
                Response::error(503, up.name + "_busy",
                                "too many requests for the " + up.name + " service at once, try again in a second");
            response.headers.set("Retry-After", "1");
        } else {
            InFlight counted(up);
            response = co_await call(up, forward, outgoing);
        }
        if (forward.after) response = forward.after(request, std::move(response));
    } catch (...) {
        response = router.handle_exception(std::current_exception(), request);
    }
    in_flight.add(-1);
    co_return response;
}

}  // namespace mp3c::http
