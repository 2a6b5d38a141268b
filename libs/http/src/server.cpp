// <utility> first: Boost 1.74's coroutine support needs it with g++ 12.
#include <utility>
//
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "mp3c/crypto.hpp"
#include "mp3c/http.hpp"
#include "mp3c/http_address.hpp"
#include "mp3c/log.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

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

// Bounded label values: unknown methods would otherwise let clients create unlimited metric series.
std::string method_label(std::string_view method) {
    for (auto known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
        if (method == known) return std::string(method);
    return "OTHER";
}

bool is_probe(std::string_view route) { return route == "/healthz" || route == "/readyz" || route == "/metrics"; }

}  // namespace

struct Connection {
    explicit Connection(beast::tcp_stream s) : stream(std::move(s)) {}
    beast::tcp_stream stream;
    // Touched only on the connection's strand.
    bool idle = true;  // waiting for the first byte of a request: safe to close when draining
};

// One chunk of a streamed request body being handed to its consumer on a worker thread; the connection's strand is
// woken through `signal` when it is done.
struct ChunkTask {
    explicit ChunkTask(asio::any_io_executor executor) : signal(std::move(executor)) {
        signal.expires_at(asio::steady_timer::time_point::max());
    }
    asio::steady_timer signal;
    bool done = false;  // touched on the strand only
    std::optional<Response> response;
    std::exception_ptr error;
};

struct Server::Impl {
    Impl(ServerOptions o, Router r, std::shared_ptr<metrics::Registry> reg, ReadinessCheck ready)
        : options(std::move(o)),
          router(std::move(r)),
          registry(std::move(reg)),
          readiness(std::move(ready)),
          workers(options.worker_threads),
          acceptor(ioc),
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

    ServerOptions options;
    Router router;
    std::shared_ptr<metrics::Registry> registry;
    ReadinessCheck readiness;
    std::vector<Cidr> trusted;

    asio::io_context ioc;
    asio::thread_pool workers;
    tcp::acceptor acceptor;
    std::vector<std::thread> io_threads;
    uint16_t bound_port = 0;

    std::atomic<bool> is_draining{false};
    std::atomic<bool> forced{false};  // stopped before every handler had returned
    std::atomic<bool> listener_closed{false};
    std::mutex connections_mutex;
    std::unordered_map<Connection*, std::weak_ptr<Connection>> connections;
    std::optional<asio::steady_timer> drain_timer, grace_timer;

    std::mutex stopped_mutex;
    std::condition_variable stopped_cv;
    bool stopped = false;
    bool started = false;

    metrics::Family<metrics::Counter>& requests;
    metrics::Family<metrics::Histogram>& latency;
    metrics::Gauge& in_flight;
    metrics::Gauge& open_connections;

    // ---- lifecycle -------------------------------------------------------------------------------------------

    uint16_t start() {
        boost::system::error_code ec;
        auto address = asio::ip::make_address(options.bind_address, ec);
        if (ec) throw std::runtime_error("invalid bind address '" + options.bind_address + "'");
        tcp::endpoint endpoint(address, options.port);
        acceptor.open(endpoint.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(endpoint, ec);
        if (ec) {
            throw std::runtime_error("cannot listen on " + options.bind_address + ":" + std::to_string(options.port) +
                                     ": " + ec.message());
        }
        acceptor.listen(asio::socket_base::max_listen_connections);
        bound_port = acceptor.local_endpoint().port();
        asio::co_spawn(ioc, accept_loop(this), asio::detached);
        for (unsigned i = 0; i < std::max(1u, options.io_threads); ++i) {
            io_threads.emplace_back([this] { ioc.run(); });
        }
        started = true;
        log::info("listening", {{"address", options.bind_address}, {"port", bound_port}});
        return bound_port;
    }

    void shutdown() {
        asio::post(ioc, [this] { begin_drain(); });
    }

    void begin_drain() {
        if (is_draining.exchange(true)) return;
        log::info("shutting down: draining",
                  {{"drain_delay_ms", options.drain_delay.count()}, {"grace_ms", options.shutdown_grace.count()}});
        drain_timer.emplace(ioc, options.drain_delay);
        drain_timer->async_wait([this](boost::system::error_code) { close_listener(); });
    }

    void close_listener() {
        boost::system::error_code ignored;
        acceptor.close(ignored);
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

    template <class F>
    void for_each_connection(F f) {
        std::vector<std::shared_ptr<Connection>> live;
        {
            std::lock_guard lock(connections_mutex);
            for (auto& [raw, weak] : connections)
                if (auto c = weak.lock()) live.push_back(std::move(c));
        }
        for (auto& c : live) asio::post(c->stream.get_executor(), [c, f] { f(c); });
    }

    void finish_if_idle() {
        bool empty;
        {
            std::lock_guard lock(connections_mutex);
            empty = connections.empty();
        }
        if (listener_closed && empty) finish();
    }

    void finish() {
        if (grace_timer) grace_timer->cancel();
        ioc.stop();
        std::lock_guard lock(stopped_mutex);
        if (!stopped) log::info("stopped");
        stopped = true;
        stopped_cv.notify_all();
    }

    void wait() {
        {
            std::unique_lock lock(stopped_mutex);
            stopped_cv.wait(lock, [this] { return stopped || !started; });
        }
        for (auto& t : io_threads)
            if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
        io_threads.clear();
    }

    // ---- connections -----------------------------------------------------------------------------------------

    // Coroutines hold a plain Impl*: the Server waits for them before Impl goes away, and no cycle keeps it alive.
    static awaitable<void> accept_loop(Impl* self) {
        for (;;) {
            boost::system::error_code ec;
            auto socket = co_await self->acceptor.async_accept(asio::make_strand(self->ioc),
                                                               asio::redirect_error(use_awaitable, ec));
            if (ec) {
                if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) co_return;  // shutting down
                log::warn("accept failed", {{"error", ec.message()}});
                // Out of file descriptors and the like: back off instead of spinning.
                asio::steady_timer pause(self->ioc, std::chrono::milliseconds(100));
                co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
                continue;
            }
            auto conn = std::make_shared<Connection>(beast::tcp_stream(std::move(socket)));
            {
                std::lock_guard lock(self->connections_mutex);
                self->connections.emplace(conn.get(), conn);
            }
            self->open_connections.add(1);
            asio::co_spawn(conn->stream.get_executor(), session(self, conn), asio::detached);
        }
    }

    static awaitable<void> session(Impl* self, std::shared_ptr<Connection> conn) {
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

    awaitable<void> serve(Connection& conn) {
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

    // Reads and answers one request; returns whether the connection may carry another.
    awaitable<bool> handle_one(Connection& conn, beast::flat_buffer& buffer, const std::string& peer) {
        auto started_at = Clock::now();
        Request request;
        request.remote_address = peer;
        request.request_id = crypto::random_hex(8);
        boost::system::error_code ec;

        bhttp::request_parser<bhttp::empty_body> header_parser;
        header_parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
        header_parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // the route's limit is checked below
        conn.stream.expires_after(options.header_timeout);
        co_await bhttp::async_read_header(conn.stream, buffer, header_parser, asio::redirect_error(use_awaitable, ec));
        if (ec == bhttp::error::header_limit) {
            co_await reply_and_close(
                conn, request, started_at,
                Response::error(431, "header_too_large",
                                "request header larger than " + std::to_string(options.max_header_bytes) + " bytes"));
            co_return false;
        }
        if (ec == beast::error::timeout || ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
            ec == asio::error::bad_descriptor) {
            co_return false;
        }
        if (ec) {
            co_await reply_and_close(conn, request, started_at,
                                     Response::error(400, "bad_request", "malformed HTTP request: " + ec.message()));
            co_return false;
        }

        const auto& head = header_parser.get();
        request.method = std::string(head.method_string());
        request.target = std::string(head.target());
        auto question = request.target.find('?');
        request.path = request.target.substr(0, question);
        if (question != std::string::npos) request.query = request.target.substr(question + 1);
        for (const auto& field : head)
            request.headers.add(std::string(field.name_string()), std::string(field.value()));
        if (auto id = request.headers.get("X-Request-Id"); id && valid_request_id(*id)) request.request_id = *id;
        request.client_address = client_address(peer, request.headers.get("X-Forwarded-For"), trusted);
        bool client_keep_alive = head.keep_alive();
        bool expects_continue = iequals(std::string(head[bhttp::field::expect]), "100-continue");
        auto content_length = header_parser.content_length();
        bool has_body = content_length ? *content_length > 0 : header_parser.chunked();

        if (request.path.empty() || request.path[0] != '/') {
            co_await reply_and_close(conn, request, started_at,
                                     Response::error(400, "bad_request", "request target must be an absolute path"));
            co_return false;
        }

        auto match = router.match(request.method, request.path);
        if (!match.route) {
            Response response;
            if (!match.allowed_methods.empty()) {
                std::string allow;
                for (const auto& m : match.allowed_methods) allow += (allow.empty() ? "" : ", ") + m;
                response = Response::error(405, "method_not_allowed",
                                           "method " + request.method + " is not allowed on " + request.path);
                response.headers.set("Allow", allow);
            } else {
                response = Response::error(404, "not_found", "no such route: " + request.method + " " + request.path);
            }
            request.route = "unmatched";
            // The body was not read: the connection cannot carry another request unless there was none.
            if (has_body) {
                co_await reply_and_close(conn, request, started_at, std::move(response));
                co_return false;
            }
            co_return co_await reply(conn, request, started_at, std::move(response), client_keep_alive);
        }
        request.route = match.route->pattern;
        request.path_params = std::move(match.params);

        // A streaming route's handler judges the announced length itself (its own limits, its own words); the route's
        // limit still bounds what is read.
        if (match.route->streaming) {
            co_return co_await handle_streaming(conn, buffer, header_parser, request, *match.route, started_at,
                                                client_keep_alive, has_body && expects_continue, content_length);
        }
        uint64_t limit = match.route->options.max_body_bytes;
        if (content_length && *content_length > limit) {
            co_await reply_and_close(
                conn, request, started_at,
                Response::error(413, "body_too_large", "request body larger than " + std::to_string(limit) + " bytes"));
            co_return false;
        }
        if (has_body && expects_continue) {
            static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            conn.stream.expires_after(options.write_timeout);
            co_await asio::async_write(conn.stream, asio::buffer(kContinue.data(), kContinue.size()),
                                       asio::redirect_error(use_awaitable, ec));
            if (ec) co_return false;
        }

        bhttp::request_parser<bhttp::string_body> parser(std::move(header_parser));
        parser.body_limit(limit);
        conn.stream.expires_after(options.body_timeout);
        co_await bhttp::async_read(conn.stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
        if (ec == bhttp::error::body_limit) {
            co_await reply_and_close(
                conn, request, started_at,
                Response::error(413, "body_too_large", "request body larger than " + std::to_string(limit) + " bytes"));
            co_return false;
        }
        if (ec == beast::error::timeout) {
            co_await reply_and_close(conn, request, started_at,
                                     Response::error(408, "request_timeout", "request body not received in time"));
            co_return false;
        }
        if (ec) co_return false;  // the client went away mid-body
        request.body = std::move(parser.get().body());
        request.body_bytes = request.body.size();

        Response response = co_await run_handler(*match.route, request);
        co_return co_await reply(conn, request, started_at, std::move(response), client_keep_alive);
    }

    // Runs f on the worker pool and resumes here with its result (or its exception).
    template <class F>
    awaitable<std::invoke_result_t<F&>> on_workers(F& f) {
        using R = std::invoke_result_t<F&>;
        co_return co_await asio::co_spawn(
            workers, [&f]() -> awaitable<R> { co_return f(); }, use_awaitable);
    }

    static constexpr size_t kStreamChunk = 1 << 20;

    // A streaming route: the handler sees the header and returns a consumer, which then gets the body chunk by chunk
    // as it arrives; memory stays at one chunk whatever the body's size.
    awaitable<bool> handle_streaming(Connection& conn, beast::flat_buffer& buffer,
                                     bhttp::request_parser<bhttp::empty_body>& header_parser, Request& request,
                                     const Route& route, Clock::time_point started_at, bool keep_alive,
                                     bool send_continue, boost::optional<std::uint64_t> content_length) {
        boost::system::error_code ec;
        std::exception_ptr failure;
        std::variant<Response, std::unique_ptr<BodyConsumer>> decision;
        in_flight.add(1);
        auto decide = [&] { return route.streaming(request); };
        try {
            decision = co_await on_workers(decide);
        } catch (...) {
            failure = std::current_exception();
        }
        in_flight.add(-1);
        if (failure) decision = router.handle_exception(failure, request);
        if (auto* refused = std::get_if<Response>(&decision)) {
            co_await reply_and_close(conn, request, started_at, std::move(*refused));  // the body is never read
            co_return false;
        }
        std::unique_ptr<BodyConsumer> consumer = std::move(std::get<std::unique_ptr<BodyConsumer>>(decision));
        auto release = [&] { consumer.reset(); };  // may delete a partial file: a worker's job
        if (content_length && *content_length > route.options.max_body_bytes) {
            // The parser checks a declared length only while reading the header, which is done: check it here.
            co_await on_workers(release);
            co_await reply_and_close(
                conn, request, started_at,
                Response::error(413, "body_too_large",
                                "request body larger than " + std::to_string(route.options.max_body_bytes) + " bytes"));
            co_return false;
        }

        if (send_continue) {
            static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            conn.stream.expires_after(options.write_timeout);
            co_await asio::async_write(conn.stream, asio::buffer(kContinue.data(), kContinue.size()),
                                       asio::redirect_error(use_awaitable, ec));
            if (ec) {
                co_await on_workers(release);
                co_return false;
            }
        }

        // With a Content-Length the body is read straight from the socket into the chunks (one copy, as much per
        // call as the socket holds); a chunked body goes through Beast's parser.
        const bool sized = content_length.has_value() && !header_parser.chunked();
        uint64_t left = sized ? *content_length : 0;
        bhttp::request_parser<bhttp::buffer_body> parser(std::move(header_parser));
        parser.body_limit(route.options.max_body_bytes);
        // Two buffers: while a worker hands one chunk to the consumer (hashing, writing), the next is read from the
        // socket. The network and the disk work in parallel, and memory stays at two chunks.
        std::array<std::vector<char>, 2> chunks = {std::vector<char>(kStreamChunk), std::vector<char>(kStreamChunk)};
        int current = 0;
        std::shared_ptr<ChunkTask> pending;
        std::optional<Response> response;
        auto settle = [&](std::shared_ptr<ChunkTask> task) -> awaitable<void> {
            while (!task->done) {
                boost::system::error_code ignored;
                co_await task->signal.async_wait(asio::redirect_error(use_awaitable, ignored));
            }
            if (task->error) {
                response = router.handle_exception(task->error, request);
            } else if (task->response) {
                response = std::move(task->response);
            }
        };
        in_flight.add(1);
        auto body_done = [&] { return sized ? left == 0 : parser.is_done(); };
        while (!body_done() && !response) {
            auto& chunk = chunks[current];
            size_t n = 0;
            if (sized) {
                size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), left));
                if (buffer.size() > 0) {  // body bytes that came in with the header
                    n = asio::buffer_copy(asio::buffer(chunk.data(), want), buffer.data());
                    buffer.consume(n);
                }
                while (n < want) {
                    conn.stream.expires_after(options.body_timeout);  // an inactivity limit, not a total one
                    n += co_await conn.stream.async_read_some(asio::buffer(chunk.data() + n, want - n),
                                                              asio::redirect_error(use_awaitable, ec));
                    if (ec) break;
                }
                left -= n;
            } else {
                parser.get().body().data = chunk.data();
                parser.get().body().size = chunk.size();
                conn.stream.expires_after(options.body_timeout);  // an inactivity limit: each chunk must come in time
                co_await bhttp::async_read(conn.stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
                if (ec == bhttp::error::need_buffer) ec = {};
                n = chunk.size() - parser.get().body().size;
            }
            if (pending) {
                co_await settle(std::move(pending));  // the previous chunk must be taken before the next goes
                pending.reset();
                if (response) break;
            }
            if (ec) break;
            if (n == 0) continue;
            request.body_bytes += n;
            pending = std::make_shared<ChunkTask>(conn.stream.get_executor());
            asio::post(workers, [task = pending, consumer = consumer.get(), data = std::string_view(chunk.data(), n)] {
                try {
                    task->response = consumer->on_data(data);
                } catch (...) {
                    task->error = std::current_exception();
                }
                asio::post(task->signal.get_executor(), [task] {
                    task->done = true;
                    task->signal.cancel();
                });
            });
            current ^= 1;
        }
        if (pending) co_await settle(std::move(pending));  // never release the consumer under a running worker
        if (!ec && !response) {
            auto end = [&] { return consumer->on_end(); };
            try {
                response = co_await on_workers(end);
            } catch (...) {
                failure = std::current_exception();
            }
            if (failure) response = router.handle_exception(failure, request);
        }
        in_flight.add(-1);
        co_await on_workers(release);

        if (ec) {
            if (ec == bhttp::error::body_limit) {
                co_await reply_and_close(conn, request, started_at,
                                         Response::error(413, "body_too_large",
                                                         "request body larger than " +
                                                             std::to_string(route.options.max_body_bytes) + " bytes"));
            } else {
                log::info("request body not completed", {{"request_id", request.request_id},
                                                         {"route", request.route},
                                                         {"bytes_in", request.body_bytes},
                                                         {"error", ec.message()}});
            }
            co_return false;  // timeout or the client went away: nothing more to say on this connection
        }
        if (!body_done()) {  // answered early: the rest of the body is not wanted
            co_await reply_and_close(conn, request, started_at, std::move(*response));
            co_return false;
        }
        co_return co_await reply(conn, request, started_at, std::move(*response), keep_alive);
    }

    template <class Message>
    void fill_header(Message& out, const Request& request, const Response& response, bool keep_alive) {
        out.version(11);
        out.result(static_cast<unsigned>(response.status));
        for (const auto& h : response.headers.all()) out.insert(h.name, h.value);
        out.set(bhttp::field::server, "mp3converter");
        out.set("X-Request-Id", request.request_id);
        out.keep_alive(keep_alive);
    }

    // Sends one piece of a streamed (buffer_body) response; more = false ends the body.
    awaitable<boost::system::error_code> write_piece(Connection& conn,
                                                     bhttp::response_serializer<bhttp::buffer_body>& serializer,
                                                     bhttp::response<bhttp::buffer_body>& out, const char* data,
                                                     size_t size, bool more) {
        out.body().data = size > 0 ? const_cast<char*>(data) : nullptr;
        out.body().size = size;
        out.body().more = more;
        boost::system::error_code ec;
        conn.stream.expires_after(options.write_timeout);
        co_await bhttp::async_write(conn.stream, serializer, asio::redirect_error(use_awaitable, ec));
        if (ec == bhttp::error::need_buffer) ec = {};
        co_return ec;
    }

    // A body read from a BodySource on the workers, one chunk at a time.
    awaitable<bool> reply_source(Connection& conn, Request& request, Clock::time_point started_at, Response response,
                                 bool keep_alive) {
        bhttp::response<bhttp::buffer_body> out;
        fill_header(out, request, response, keep_alive);
        if (response.source_length) {
            out.content_length(*response.source_length);
        } else {
            out.chunked(true);
        }
        out.body().data = nullptr;
        out.body().more = true;
        bhttp::response_serializer<bhttp::buffer_body> serializer(out);
        boost::system::error_code ec;
        conn.stream.expires_after(options.write_timeout);
        co_await bhttp::async_write_header(conn.stream, serializer, asio::redirect_error(use_awaitable, ec));
        uint64_t sent = 0;
        if (!ec && request.method != "HEAD") {
            std::vector<char> chunk(kStreamChunk);
            auto source = response.source;
            for (;;) {
                size_t n = 0;
                auto read = [&] { return source->read(chunk.data(), chunk.size()); };
                std::string read_error;
                try {
                    n = co_await on_workers(read);
                } catch (const std::exception& e) {
                    read_error = e.what();
                }
                if (!read_error.empty()) {
                    // The header is out: the only honest signal left is to cut the connection short.
                    log::error("response body failed", {{"request_id", request.request_id}, {"error", read_error}});
                    ec = asio::error::broken_pipe;
                    break;
                }
                ec = co_await write_piece(conn, serializer, out, chunk.data(), n, n > 0);
                if (ec || n == 0) break;
                sent += n;
            }
            if (!ec && response.source_length && sent != *response.source_length) ec = asio::error::message_size;
        }
        record(request, response.status, sent, started_at, ec);
        co_return keep_alive && !ec;
    }

    // Server-Sent Events: poll the stream on this strand, send what it has, until it ends or the server drains.
    awaitable<bool> reply_events(Connection& conn, Request& request, Clock::time_point started_at, Response response) {
        bhttp::response<bhttp::buffer_body> out;
        fill_header(out, request, response, false);
        out.chunked(true);
        out.body().data = nullptr;
        out.body().more = true;
        bhttp::response_serializer<bhttp::buffer_body> serializer(out);
        boost::system::error_code ec;
        conn.stream.expires_after(options.write_timeout);
        co_await bhttp::async_write_header(conn.stream, serializer, asio::redirect_error(use_awaitable, ec));
        uint64_t sent = 0;
        asio::steady_timer timer(conn.stream.get_executor());
        while (!ec && !is_draining && request.method != "HEAD") {
            auto text = response.events->poll();
            if (!text) break;
            if (!text->empty()) {
                ec = co_await write_piece(conn, serializer, out, text->data(), text->size(), true);
                sent += text->size();
                if (ec) break;
            }
            timer.expires_after(response.poll_interval);
            co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
        }
        if (!ec) ec = co_await write_piece(conn, serializer, out, nullptr, 0, false);
        record(request, response.status, sent, started_at, ec);
        co_return false;
    }

    awaitable<Response> run_handler(const Route& route, Request& request) {
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
        Response response = co_await on_workers(handle);
        in_flight.add(-1);
        co_return response;
    }

    awaitable<void> reply_and_close(Connection& conn, Request& request, Clock::time_point started_at,
                                    Response response) {
        if (request.route.empty()) request.route = "unmatched";
        co_await reply(conn, request, started_at, std::move(response), false);
        co_await linger(conn);
    }

    // After an early answer (413, 431) the client may still be sending: read and drop a little of it so that the
    // close does not reset the connection before the client has read the answer.
    awaitable<void> linger(Connection& conn) {
        boost::system::error_code ec;
        conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        conn.stream.expires_after(std::chrono::seconds(1));
        std::array<char, 16384> scratch;
        size_t total = 0;
        while (!ec && total < (4u << 20)) {
            total +=
                co_await conn.stream.async_read_some(asio::buffer(scratch), asio::redirect_error(use_awaitable, ec));
        }
    }

    awaitable<bool> reply(Connection& conn, Request& request, Clock::time_point started_at, Response response,
                          bool client_keep_alive) {
        bool keep_alive = client_keep_alive && !is_draining;
        if (response.events) co_return co_await reply_events(conn, request, started_at, std::move(response));
        if (response.source) {
            co_return co_await reply_source(conn, request, started_at, std::move(response), keep_alive);
        }
        bhttp::response<bhttp::string_body> out;
        fill_header(out, request, response, keep_alive);
        if (response.status == 204 || response.status == 304 || (response.status >= 100 && response.status < 200)) {
            // These answers have no body by definition (Beast refuses to send one): drop what a handler put there.
            response.body.clear();
            out.erase(bhttp::field::content_type);
        }
        if (!response.headers.has("Content-Type") && !response.body.empty()) {
            out.set(bhttp::field::content_type, "text/plain; charset=utf-8");
        }
        size_t body_bytes = response.body.size();
        out.body() = std::move(response.body);
        out.prepare_payload();
        if (request.method == "HEAD") out.body().clear();  // Content-Length stays that of the GET answer

        boost::system::error_code ec;
        conn.stream.expires_after(options.write_timeout);
        if (request.method == "HEAD") {
            bhttp::response_serializer<bhttp::string_body> serializer(out);
            co_await bhttp::async_write_header(conn.stream, serializer, asio::redirect_error(use_awaitable, ec));
        } else {
            co_await bhttp::async_write(conn.stream, out, asio::redirect_error(use_awaitable, ec));
        }
        record(request, response.status, body_bytes, started_at, ec);
        co_return keep_alive && !ec;
    }

    void record(const Request& request, int status, size_t body_bytes, Clock::time_point started_at,
                boost::system::error_code write_error) {
        double seconds = std::chrono::duration<double>(Clock::now() - started_at).count();
        std::string method = method_label(request.method);
        requests.with({request.route, method, std::to_string(status)}).inc();
        latency.with({request.route, method}).observe(seconds);
        nlohmann::json fields = {
            {"request_id", request.request_id},
            {"method", request.method},
            {"path", request.path},
            {"route", request.route},
            {"status", status},
            {"duration_ms", std::round(seconds * 1e5) / 100},
            {"bytes_in", request.body_bytes},
            {"bytes_out", body_bytes},
            {"client", request.client_address.empty() ? request.remote_address : request.client_address}};
        if (auto agent = request.headers.get("User-Agent")) fields["user_agent"] = *agent;
        if (write_error) fields["write_error"] = write_error.message();
        log::write(is_probe(request.route) ? log::Level::debug : log::Level::info, "request", fields);
    }
};

namespace {

Router with_builtin_routes(Router router, std::shared_ptr<metrics::Registry> registry, ReadinessCheck readiness) {
    router.add("GET", "/healthz", [](Request&) { return Response::json(200, {{"status", "ok"}}); });
    router.add("GET", "/readyz", [readiness](Request&) {
        if (readiness) {
            if (auto ready = readiness(); !ready) return Response::error(503, "not_ready", ready.error());
        }
        return Response::json(200, {{"status", "ready"}});
    });
    router.add("GET", "/metrics", [registry](Request&) {
        return Response::text(200, registry->render(), "text/plain; version=0.0.4; charset=utf-8");
    });
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
