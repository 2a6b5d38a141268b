// The server's lifecycle, its connections, and the routing of each request (server_impl.hpp).
#include "server_impl.hpp"
//
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "mp3c/crypto.hpp"
#include "mp3c/log.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::http {

namespace {

constexpr size_t kMaxRequestIdLength = 128;

bool valid_request_id(std::string_view id) {
    if (id.empty() || id.size() > kMaxRequestIdLength) return false;
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.' || c == ':';
        if (!ok) return false;
    }
    return true;
}

// The answer for a path no route has, or has for other methods.
Response no_route(const Request& request, const std::vector<std::string>& allowed_methods) {
    if (allowed_methods.empty()) {
        return Response::error(404, "not_found", "no such route: " + request.method + " " + request.path);
    }
    std::string allow;
    for (const auto& m : allowed_methods) allow += (allow.empty() ? "" : ", ") + m;
    Response response =
        Response::error(405, "method_not_allowed", "method " + request.method + " is not allowed on " + request.path);
    response.headers.set("Allow", allow);
    return response;
}

}  // namespace

Response body_too_large(uint64_t limit) {
    return Response::error(413, "body_too_large", "request body larger than " + std::to_string(limit) + " bytes");
}

Server::Impl::Impl(ServerOptions o, Router r, std::shared_ptr<metrics::Registry> reg, ReadinessCheck ready)
    : options(std::move(o)),
      router(std::move(r)),
      registry(std::move(reg)),
      readiness(std::move(ready)),
      workers(options.worker_threads),
      acceptor(ioc),
      admin_acceptor(ioc),
      requests(registry->counter("http_requests_total", "HTTP requests served.", {"route", "method", "status"})),
      latency(registry->histogram("http_request_duration_seconds", "Time from request header to response sent.",
                                  {"route", "method"})),
      in_flight(registry->gauge("http_requests_in_flight", "Requests being handled.").with({})),
      open_connections(registry->gauge("http_open_connections", "Open client connections.").with({})) {
    for (const auto& text : options.trusted_proxies) {
        auto cidr = Cidr::parse(text);
        if (!cidr) throw std::invalid_argument("invalid trusted proxy network: " + text);
        trusted.push_back(*cidr);
    }
}

// ---- lifecycle -----------------------------------------------------------------------------------------------------

uint16_t Server::Impl::listen(tcp::acceptor& on, uint16_t port) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options.bind_address, ec);
    if (ec) throw std::runtime_error("invalid bind address '" + options.bind_address + "'");
    tcp::endpoint endpoint(address, port);
    on.open(endpoint.protocol());
    on.set_option(asio::socket_base::reuse_address(true));
    on.bind(endpoint, ec);
    if (ec) {
        throw std::runtime_error("cannot listen on " + options.bind_address + ":" + std::to_string(port) + ": " +
                                 ec.message());
    }
    on.listen(asio::socket_base::max_listen_connections);
    return on.local_endpoint().port();
}

uint16_t Server::Impl::start() {
    bound_port = listen(acceptor, options.port);
    if (options.admin_port) {
        bound_admin_port = listen(admin_acceptor, *options.admin_port);
        asio::co_spawn(ioc, accept_loop(this, acceptor, Router::Listener::public_port), asio::detached);
        asio::co_spawn(ioc, accept_loop(this, admin_acceptor, Router::Listener::admin_port), asio::detached);
    } else {
        asio::co_spawn(ioc, accept_loop(this, acceptor, Router::Listener::only), asio::detached);
    }
    for (unsigned i = 0; i < std::max(1u, options.io_threads); ++i) {
        io_threads.emplace_back([this] { ioc.run(); });
    }
    started = true;
    if (options.admin_port) {
        log::info("listening",
                  {{"address", options.bind_address}, {"port", bound_port}, {"admin_port", bound_admin_port}});
    } else {
        log::info("listening", {{"address", options.bind_address}, {"port", bound_port}});
    }
    return bound_port;
}

void Server::Impl::shutdown() {
    asio::post(ioc, [this] { begin_drain(); });
}

void Server::Impl::begin_drain() {
    if (is_draining.exchange(true)) return;
    {
        // Event streams end now (their clients reconnect elsewhere), not at their next poll.
        std::lock_guard lock(streams_mutex);
        for (auto& [raw, weak] : streams) {
            if (auto w = weak.lock()) StreamWaker::wake(w);
        }
    }
    log::info("shutting down: draining",
              {{"drain_delay_ms", options.drain_delay.count()}, {"grace_ms", options.shutdown_grace.count()}});
    drain_timer.emplace(ioc, options.drain_delay);
    drain_timer->async_wait([this](boost::system::error_code) { close_listener(); });
}

void Server::Impl::close_listener() {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    admin_acceptor.close(ignored);
    listener_closed = true;
    for_each_connection([](const std::shared_ptr<Connection>& c) {
        if (c->idle) c->stream.socket().close();  // the coroutine's pending read ends with an error
    });
    grace_timer.emplace(ioc, options.shutdown_grace);
    grace_timer->async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        log::warn("shutdown grace period over: closing remaining connections");
        for_each_connection([](const std::shared_ptr<Connection>& c) { c->stream.socket().close(); });
        forced = true;
        finish();
    });
    finish_if_idle();
}

void Server::Impl::for_each_connection(const std::function<void(const std::shared_ptr<Connection>&)>& f) {
    std::vector<std::shared_ptr<Connection>> live;
    {
        std::lock_guard lock(connections_mutex);
        for (auto& [raw, weak] : connections)
            if (auto c = weak.lock()) live.push_back(std::move(c));
    }
    for (auto& c : live) asio::post(c->stream.get_executor(), [c, f] { f(c); });
}

void Server::Impl::finish_if_idle() {
    bool empty;
    {
        std::lock_guard lock(connections_mutex);
        empty = connections.empty();
    }
    if (listener_closed && empty) finish();
}

void Server::Impl::finish() {
    if (grace_timer) grace_timer->cancel();
    ioc.stop();
    std::lock_guard lock(stopped_mutex);
    if (!stopped) log::info("stopped");
    stopped = true;
    stopped_cv.notify_all();
}

void Server::Impl::wait() {
    {
        std::unique_lock lock(stopped_mutex);
        stopped_cv.wait(lock, [this] { return stopped || !started; });
    }
    for (auto& t : io_threads)
        if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    io_threads.clear();
}

// ---- connections ---------------------------------------------------------------------------------------------------

// Coroutines hold a plain Impl*: the Server waits for them before Impl goes away, and no cycle keeps it alive.
awaitable<void> Server::Impl::accept_loop(Impl* self, tcp::acceptor& from, Router::Listener listener) {
    for (;;) {
        boost::system::error_code ec;
        auto socket = co_await from.async_accept(asio::make_strand(self->ioc), asio::redirect_error(use_awaitable, ec));
        if (ec) {
            if (ec == asio::error::operation_aborted || !from.is_open()) co_return;  // shutting down
            log::warn("accept failed", {{"error", ec.message()}});
            // Out of file descriptors and the like: back off instead of spinning.
            asio::steady_timer pause(self->ioc, std::chrono::milliseconds(100));
            co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
            continue;
        }
        auto conn = std::make_shared<Connection>(beast::tcp_stream(std::move(socket)), listener);
        {
            std::lock_guard lock(self->connections_mutex);
            self->connections.emplace(conn.get(), conn);
        }
        self->open_connections.add(1);
        asio::co_spawn(conn->stream.get_executor(), session(self, conn), asio::detached);
    }
}

awaitable<void> Server::Impl::session(Impl* self, std::shared_ptr<Connection> conn) {
    try {
        co_await self->serve(*conn);
    } catch (const std::exception& e) {
        log::warn("connection ended by an error", {{"error", e.what()}});
    }
    boost::system::error_code ignored;
    conn->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    conn->stream.socket().close(ignored);
    {
        std::lock_guard lock(self->connections_mutex);
        self->connections.erase(conn.get());
    }
    self->open_connections.add(-1);
    if (self->is_draining) asio::post(self->ioc, [self] { self->finish_if_idle(); });
}

awaitable<void> Server::Impl::serve(Connection& conn) {
    beast::flat_buffer buffer;
    std::string peer;
    {
        boost::system::error_code ec;
        auto endpoint = conn.stream.socket().remote_endpoint(ec);
        peer = ec ? "unknown" : endpoint.address().to_string();
    }
    bool first = true;
    for (;;) {
        conn.idle = true;
        if (is_draining && listener_closed) co_return;
        boost::system::error_code ec;
        if (buffer.size() == 0) {
            // Waiting for a request: the header timeout for a new connection, the idle timeout between requests.
            conn.stream.expires_after(first ? options.header_timeout : options.idle_timeout);
            size_t n =
                co_await conn.stream.async_read_some(buffer.prepare(4096), asio::redirect_error(use_awaitable, ec));
            if (ec) co_return;
            buffer.commit(n);
        }
        conn.idle = false;
        first = false;
        bool keep_alive = co_await handle_one(conn, buffer, peer);
        if (!keep_alive) co_return;
    }
}

// ---- requests ------------------------------------------------------------------------------------------------------

// Reads one request's header, routes it and has it answered; returns whether the connection may carry another.
awaitable<bool> Server::Impl::handle_one(Connection& conn, beast::flat_buffer& buffer, const std::string& peer) {
    Exchange ex{.conn = conn, .buffer = buffer, .request = {}};
    Request& request = ex.request;
    request.remote_address = peer;
    request.request_id = crypto::random_hex(8);
    boost::system::error_code ec;

    HeaderParser header_parser;
    header_parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    header_parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // the route's limit is checked later
    conn.stream.expires_after(options.header_timeout);
    co_await bhttp::async_read_header(conn.stream, buffer, header_parser, asio::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::header_limit) {
        co_await reply_and_close(
            ex, Response::error(431, "header_too_large",
                                "request header larger than " + std::to_string(options.max_header_bytes) + " bytes"));
        co_return false;
    }
    if (ec == beast::error::timeout || ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::bad_descriptor) {
        co_return false;
    }
    if (ec) {
        co_await reply_and_close(ex, Response::error(400, "bad_request", "malformed HTTP request: " + ec.message()));
        co_return false;
    }

    const auto& head = header_parser.get();
    request.method = std::string(head.method_string());
    request.target = std::string(head.target());
    auto question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    for (const auto& field : head) request.headers.add(std::string(field.name_string()), std::string(field.value()));
    if (auto id = request.headers.get("X-Request-Id"); id && valid_request_id(*id)) request.request_id = *id;
    request.client_address = client_address(peer, request.headers.get("X-Forwarded-For"), trusted);
    ex.keep_alive = head.keep_alive();
    auto content_length = header_parser.content_length();
    bool has_body = content_length ? *content_length > 0 : header_parser.chunked();
    bool send_continue = has_body && iequals(std::string(head[bhttp::field::expect]), "100-continue");

    if (request.path.empty() || request.path[0] != '/') {
        co_await reply_and_close(ex, Response::error(400, "bad_request", "request target must be an absolute path"));
        co_return false;
    }
    auto match = router.match(request.method, request.path, conn.listener);
    if (!match.route) {
        request.route = "unmatched";
        // The body was not read: the connection cannot carry another request unless there was none.
        if (has_body) {
            co_await reply_and_close(ex, no_route(request, match.allowed_methods));
            co_return false;
        }
        co_return co_await reply(ex, no_route(request, match.allowed_methods));
    }
    request.route = match.route->pattern;
    request.path_params = std::move(match.params);
    if (match.route->streaming) co_return co_await handle_streaming(ex, header_parser, *match.route, send_continue);
    co_return co_await handle_buffered(ex, header_parser, *match.route, send_continue);
}

awaitable<bool> Server::Impl::handle_buffered(Exchange& ex, HeaderParser& header_parser, const Route& route,
                                              bool send_continue) {
    uint64_t limit = route.options.max_body_bytes;
    if (auto length = header_parser.content_length(); length && *length > limit) {
        co_await reply_and_close(ex, body_too_large(limit));
        co_return false;
    }
    if (send_continue && !co_await write_continue(ex.conn)) co_return false;

    bhttp::request_parser<bhttp::string_body> parser(std::move(header_parser));
    parser.body_limit(limit);
    boost::system::error_code ec;
    ex.conn.stream.expires_after(options.body_timeout);
    co_await bhttp::async_read(ex.conn.stream, ex.buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec == bhttp::error::body_limit) {
        co_await reply_and_close(ex, body_too_large(limit));
        co_return false;
    }
    if (ec == beast::error::timeout) {
        co_await reply_and_close(ex, Response::error(408, "request_timeout", "request body not received in time"));
        co_return false;
    }
    if (ec) co_return false;  // the client went away mid-body
    ex.request.body = std::move(parser.get().body());
    ex.request.body_bytes = ex.request.body.size();
    if (route.forward) co_return co_await reply(ex, co_await forward_request(*route.forward, ex.request));
    co_return co_await reply(ex, co_await run_handler(route, ex.request));
}

awaitable<bool> Server::Impl::write_continue(Connection& conn) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    boost::system::error_code ec;
    conn.stream.expires_after(options.write_timeout);
    co_await asio::async_write(conn.stream, asio::buffer(kContinue.data(), kContinue.size()),
                               asio::redirect_error(use_awaitable, ec));
    co_return !ec;
}

awaitable<Response> Server::Impl::run_handler(const Route& route, Request& request) {
    if (route.pattern == "/readyz" && is_draining) {
        co_return Response::error(503, "shutting_down", "the service is shutting down");
    }
    in_flight.add(1);
    // Handlers may block (database calls, hashing, file I/O): they run on the worker pool, never here.
    auto handle = [this, &route, &request]() -> Response {
        try {
            return route.handler(request);
        } catch (...) {
            return router.handle_exception(std::current_exception(), request);
        }
    };
    // (Not a conditional expression: g++ 12 miscompiles co_await inside one.)
    Response response;
    if (route.options.on_io_thread) {
        response = handle();
    } else {
        response = co_await on_workers(handle);
    }
    in_flight.add(-1);
    co_return response;
}

namespace {

Router with_builtin_routes(Router router, std::shared_ptr<metrics::Registry> registry, ReadinessCheck readiness) {
    // Alive means able to answer: not queued behind workers that a slow dependency holds.
    router.add("GET", "/healthz",
               [](Request&) {
                   return Response::json(200, {{"status", "ok"}});
               },
               {.exposure = Exposure::both, .on_io_thread = true});
    // The reason a dependency is down is for operators (the admin port, or the only one).
    auto ready = [readiness](bool with_reason) {
        return [readiness, with_reason](Request&) {
            if (readiness) {
                if (auto ready = readiness(); !ready) {
                    return Response::error(503, "not_ready", with_reason ? ready.error() : "not ready");
                }
            }
            return Response::json(200, {{"status", "ready"}});
        };
    };
    router.add("GET", "/readyz", ready(true), {.exposure = Exposure::admin_port});
    router.add("GET", "/readyz", ready(false), {.exposure = Exposure::public_port});
    router.add("GET", "/metrics",
               [registry](Request&) {
                   return Response::text(200, registry->render(), "text/plain; version=0.0.4; charset=utf-8");
               },
               {.exposure = Exposure::admin_port});
    return router;
}

}  // namespace

Server::Server(ServerOptions options, Router router, std::shared_ptr<metrics::Registry> registry,
               ReadinessCheck readiness) {
    if (!registry) registry = std::make_shared<metrics::Registry>();
    Router full = with_builtin_routes(std::move(router), registry, readiness);
    impl_ = std::make_unique<Impl>(std::move(options), std::move(full), std::move(registry), std::move(readiness));
}

Server::~Server() {
    if (impl_->started) {
        {
            std::lock_guard lock(impl_->stopped_mutex);
            if (!impl_->stopped) {
                impl_->stopped = true;
                impl_->ioc.stop();
            }
        }
        impl_->wait();
    }
    impl_->workers.join();
}

uint16_t Server::start() { return impl_->start(); }
void Server::shutdown() { impl_->shutdown(); }
void Server::wait() { impl_->wait(); }
uint16_t Server::port() const { return impl_->bound_port; }
uint16_t Server::admin_port() const { return impl_->bound_admin_port; }
bool Server::draining() const { return impl_->is_draining; }

void Server::run_until_signal() {
    if (!impl_->started) start();
    auto signals = std::make_shared<asio::signal_set>(impl_->ioc, SIGTERM, SIGINT);
    std::function<void(boost::system::error_code, int)> on_signal;
    Impl* impl = impl_.get();
    on_signal = [impl, signals, &on_signal](boost::system::error_code ec, int signal_number) {
        if (ec) return;
        if (impl->is_draining) {
            log::warn("second signal: closing all connections now", {{"signal", signal_number}});
            impl->for_each_connection([](const std::shared_ptr<Connection>& c) { c->stream.socket().close(); });
            impl->forced = true;
            impl->finish();
            return;
        }
        log::info("signal received", {{"signal", signal_number}});
        impl->begin_drain();
        signals->async_wait(on_signal);
    };
    signals->async_wait(on_signal);
    impl_->wait();
    boost::system::error_code ignored;
    signals->cancel(ignored);
    if (impl_->forced) {
        // A handler still runs (a slow database call, say): the deadline is the deadline. Waiting for it would
        // overrun SHUTDOWN_GRACE, and tearing the server down under it would be unsafe, so leave at once.
        log::warn("exiting with requests still in progress");
        std::_Exit(0);
    }
}

}  // namespace mp3c::http
