#pragma once

// The Beast-based HTTP server's insides, shared by server.cpp (lifecycle, connections, routing), server_replies.cpp
// (writing answers) and server_streaming.cpp (streamed request bodies). Private to libs/http: Beast headers compile
// slowly, so they never reach http.hpp.
#include <utility>  // first: Boost 1.74's coroutine support needs it with g++ 12
//
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "mp3c/http.hpp"
#include "mp3c/http_address.hpp"

namespace mp3c::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
using HeaderParser = bhttp::request_parser<bhttp::empty_body>;

struct Connection {
    Connection(beast::tcp_stream s, Router::Listener l) : stream(std::move(s)), listener(l) {}
    beast::tcp_stream stream;
    Router::Listener listener;  // which of the server's listeners accepted it
    // Touched only on the connection's strand.
    bool idle = true;  // waiting for the first byte of a request: safe to close when draining
};

// One request being answered on a connection.
struct Exchange {
    Connection& conn;
    beast::flat_buffer& buffer;  // bytes read past the header are the body's first ones
    Request request;
    Clock::time_point started_at = Clock::now();
    bool keep_alive = false;  // what the client asked for
};

Response body_too_large(uint64_t limit);

// Wakes an event stream's coroutine (EventStream::on_wake, and the server when it drains): posted to the stream's
// strand, where it cancels the wait of the poll timer.
struct StreamWaker {
    explicit StreamWaker(asio::any_io_executor e) : executor(e), timer(e) {}
    // The posted handler holds the waker alive until it ran.
    static void wake(const std::shared_ptr<StreamWaker>& waker);
    asio::any_io_executor executor;
    asio::steady_timer timer;
    bool pending = false;  // touched on the strand only
};

struct Server::Impl {
    Impl(ServerOptions o, Router r, std::shared_ptr<metrics::Registry> reg, ReadinessCheck ready);

    ServerOptions options;
    Router router;
    std::shared_ptr<metrics::Registry> registry;
    ReadinessCheck readiness;
    std::vector<Cidr> trusted;

    asio::io_context ioc;
    asio::thread_pool workers;
    tcp::acceptor acceptor;
    tcp::acceptor admin_acceptor;  // open only with options.admin_port
    std::vector<std::thread> io_threads;
    uint16_t bound_port = 0;
    uint16_t bound_admin_port = 0;

    std::atomic<bool> is_draining{false};
    std::atomic<int> held_replies{0};  // answers waiting out their Response::delay
    static constexpr int kMaxHeldReplies = 1024;
    std::atomic<bool> forced{false};  // stopped before every handler had returned
    std::atomic<bool> listener_closed{false};
    std::mutex connections_mutex;
    std::unordered_map<Connection*, std::weak_ptr<Connection>> connections;
    std::optional<asio::steady_timer> drain_timer, grace_timer;
    std::mutex streams_mutex;
    std::unordered_map<StreamWaker*, std::weak_ptr<StreamWaker>> streams;  // open event streams, woken to drain

    std::mutex stopped_mutex;
    std::condition_variable stopped_cv;
    bool stopped = false;
    bool started = false;

    metrics::Family<metrics::Counter>& requests;
    metrics::Family<metrics::Histogram>& latency;
    metrics::Gauge& in_flight;
    metrics::Gauge& open_connections;

    static constexpr size_t kStreamChunk = 1 << 20;

    // ---- lifecycle (server.cpp)
    uint16_t start();
    void shutdown();
    void begin_drain();
    void close_listener();
    void for_each_connection(const std::function<void(const std::shared_ptr<Connection>&)>& f);
    void finish_if_idle();
    void finish();
    void wait();

    // ---- connections and requests (server.cpp)
    // Binds and listens; throws std::runtime_error naming the address when it cannot.
    uint16_t listen(tcp::acceptor& on, uint16_t port);
    static awaitable<void> accept_loop(Impl* self, tcp::acceptor& from, Router::Listener listener);
    static awaitable<void> session(Impl* self, std::shared_ptr<Connection> conn);
    awaitable<void> serve(Connection& conn);
    awaitable<bool> handle_one(Connection& conn, beast::flat_buffer& buffer, const std::string& peer);
    // A route whose handler takes the whole body at once (within the route's limit).
    awaitable<bool> handle_buffered(Exchange& ex, HeaderParser& header_parser, const Route& route, bool send_continue);
    awaitable<Response> run_handler(const Route& route, Request& request);
    // A Forward route: the request goes to the upstream from here, on the I/O thread (server_forward.cpp).
    awaitable<Response> forward_request(const Forward& forward, Request& request);
    // Tells a client that sent "Expect: 100-continue" to go on; false when the connection failed.
    awaitable<bool> write_continue(Connection& conn);

    // Runs f on the worker pool and resumes here with its result (or its exception).
    template <class F>
    awaitable<std::invoke_result_t<F&>> on_workers(F& f) {
        using R = std::invoke_result_t<F&>;
        co_return co_await asio::co_spawn(
            workers, [&f]() -> awaitable<R> { co_return f(); }, use_awaitable);
    }

    // ---- streamed request bodies (server_streaming.cpp)
    awaitable<bool> handle_streaming(Exchange& ex, HeaderParser& header_parser, const Route& route, bool send_continue);
    struct Pumped {
        std::optional<Response> response;  // the consumer's early answer, or an exception's
        boost::system::error_code error;   // reading the body failed
        bool complete = false;             // the whole body was read
    };
    awaitable<Pumped> pump_body(Exchange& ex, HeaderParser& header_parser, const Route& route, BodyConsumer& consumer);

    // ---- answers (server_replies.cpp)
    awaitable<bool> reply(Exchange& ex, Response response);
    awaitable<void> reply_and_close(Exchange& ex, Response response);
    awaitable<bool> reply_source(Exchange& ex, Response response, bool keep_alive);
    awaitable<bool> reply_events(Exchange& ex, Response response);
    awaitable<void> linger(Connection& conn);
    void record(const Request& request, int status, size_t body_bytes, Clock::time_point started_at,
                boost::system::error_code write_error);
};

}  // namespace mp3c::http
