#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mp3c/metrics.hpp"
#include "mp3c/result.hpp"

// The HTTP server every service uses. This header is Beast-free on purpose (Beast compiles slowly); the server
// itself lives in server.cpp.
namespace mp3c::http {

struct Header {
    std::string name;
    std::string value;
};

// Case-insensitive header list.
class Headers {
  public:
    void set(std::string name, std::string value);
    void add(std::string name, std::string value);
    std::optional<std::string_view> get(std::string_view name) const;
    bool has(std::string_view name) const { return get(name).has_value(); }
    const std::vector<Header>& all() const { return headers_; }

  private:
    std::vector<Header> headers_;
};

struct Request {
    std::string method;
    std::string target;  // as received: path and query
    std::string path;    // without the query
    std::string query;   // after '?', not decoded
    Headers headers;
    std::string body;            // empty for streaming routes
    uint64_t body_bytes = 0;     // bytes of body received (also for streaming routes)
    std::string remote_address;  // the TCP peer
    std::string client_address;  // the peer, or the client named by X-Forwarded-For when the peer is a trusted proxy
    std::string request_id;
    std::string route;  // the matched pattern, "/jobs/{id}"
    std::map<std::string, std::string> path_params;

    // The percent-decoded value of a query parameter (first occurrence), nullopt when absent.
    std::optional<std::string> query_param(std::string_view name) const;
    const std::string& path_param(const std::string& name) const;
};

// A response body produced piece by piece (a download). read() runs on a worker thread and may block; 0 ends it.
class BodySource {
  public:
    virtual ~BodySource() = default;
    virtual size_t read(char* buffer, size_t size) = 0;
};

// A long-lived stream of text (Server-Sent Events). poll() runs on the I/O thread and must not block: it returns what
// to send now (possibly nothing), or nullopt when the stream is over. The server polls at the start, again at once
// after each poll that gave text, whenever the stream calls the wake function it was given, and otherwise every poll
// interval.
class EventStream {
  public:
    virtual ~EventStream() = default;
    virtual std::optional<std::string> poll() = 0;
    // Called once before the first poll. `wake` may be called from any thread, also after the stream ended (then it
    // does nothing): a stream pushed by its producer this way needs no short poll interval.
    virtual void on_wake(std::function<void()> wake) { (void)wake; }
};

struct Response {
    int status = 200;
    Headers headers;
    std::string body;
    // Instead of body: a streamed body of source_length bytes (Content-Length), or chunked when unknown.
    std::shared_ptr<BodySource> source;
    std::optional<uint64_t> source_length;
    // Instead of body: an event stream, sent chunked until poll() returns nullopt or the server shuts down.
    std::shared_ptr<EventStream> events;
    std::chrono::milliseconds poll_interval{250};
    // The answer is held this long before it is sent (a timer on the I/O thread: no worker waits). A client that
    // hammers a limit gets its refusals slowly, so that refusing it costs little; at most 1024 answers are held at
    // once, past that they go at once.
    std::chrono::milliseconds delay{0};

    static Response json(int status, const nlohmann::json& body);
    static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
    // The uniform error body {"error": code, "message": message}.
    static Response error(int status, std::string_view code, std::string_view message);
};

using Handler = std::function<Response(Request&)>;

// Receives a request body chunk by chunk as it arrives (uploads), so it is never held in memory whole. Every call
// runs on a worker thread. Destroying a consumer before on_end() means the request failed (the client went away, a
// limit was hit, an early response was sent): it must then undo what it started (delete a partial file).
class BodyConsumer {
  public:
    virtual ~BodyConsumer() = default;
    // Each chunk of the body, in order. A response returned here ends the request early (the rest is not read).
    virtual std::optional<Response> on_data(std::string_view chunk) = 0;
    // The whole body has arrived.
    virtual Response on_end() = 0;
};

// A streaming route's handler sees the request header (body empty) and either answers at once (refusing the
// upload: 401, 429...) or returns the consumer that takes the body.
using StreamingHandler = std::function<std::variant<Response, std::unique_ptr<BodyConsumer>>(Request&)>;

// Which listener serves a route when the server has an admin port (ServerOptions::admin_port); with one listener it
// serves every route.
enum class Exposure { public_port, admin_port, both };

struct RouteOptions {
    uint64_t max_body_bytes = 64 * 1024;
    Exposure exposure = Exposure::public_port;
    // The handler runs on the I/O thread, never queued behind the workers: for answers that must come even when
    // every worker is busy (/healthz). It must not block.
    bool on_io_thread = false;
};

// Another HTTP service (plain http) that routes pass requests on to (Router::forward). Its calls run on the server's
// I/O threads, never on a worker, so a slow upstream holds no handler thread; at most max_in_flight at a time (then
// 503 "<name>_busy" at once), each within timeout (connect, send and answer together).
struct Upstream {
    std::string name;  // "auth": the error codes "auth_unavailable", "auth_busy"
    std::string host;
    uint16_t port = 80;
    std::string base_path;  // prepended to each route's path
    std::chrono::milliseconds timeout{5000};
    size_t max_in_flight = 64;
    size_t max_answer_bytes = 1 << 20;
    std::atomic<size_t> in_flight{0};

    // "http://host[:port][/base]"; nullptr for anything else (https is not spoken here).
    static std::shared_ptr<Upstream> from_url(std::string name, std::string_view url, std::chrono::milliseconds timeout,
                                              size_t max_in_flight);
};

struct Forward {
    std::shared_ptr<Upstream> upstream;
    std::string path;  // at the upstream
    // Runs on an I/O thread (must not block) with the request about to be sent, which it may change (method, headers,
    // body). An answer returned here is the reply and nothing is sent (a refusal: 401, 429).
    std::function<std::optional<Response>(Request& outgoing)> before;
    // Runs on an I/O thread (must not block) with the request as received and the upstream's answer (or the 503 of a
    // failed call); returns the reply.
    std::function<Response(const Request& received, Response answer)> after;
    std::vector<std::string> pass_headers = {"Authorization", "Accept", "Content-Type"};
    std::vector<std::string> return_headers = {"Content-Type", "Retry-After", "WWW-Authenticate"};
};

struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" segments capture
    Handler handler;
    StreamingHandler streaming;              // set instead of handler for streaming routes
    std::shared_ptr<const Forward> forward;  // set instead of handler for routes another service answers
    RouteOptions options;
};

class Router {
  public:
    // pattern: "/jobs/{id}/mp3"; a "{name}" segment matches one non-empty path segment (percent-decoded).
    void add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});
    void add_streaming(std::string method, std::string pattern, StreamingHandler handler, RouteOptions options);
    // The request's body (within options' limit) goes to the upstream, its answer comes back (Forward).
    void forward(std::string method, std::string pattern, Forward forward, RouteOptions options = {});

    // Which listener asks: a server with one serves every route on it.
    enum class Listener { only, public_port, admin_port };

    struct Match {
        const Route* route = nullptr;
        std::map<std::string, std::string> params;
        std::vector<std::string> allowed_methods;  // when the path exists but not for this method
    };
    Match match(std::string_view method, std::string_view path, Listener listener = Listener::only) const;

    // Turns exceptions a handler throws into responses (for example a database outage into 503). Returning nullopt
    // passes the exception on; an exception no mapper takes becomes 500.
    using ExceptionMapper = std::function<std::optional<Response>(const std::exception&)>;
    void on_exception(ExceptionMapper mapper) { mappers_.push_back(std::move(mapper)); }
    Response handle_exception(std::exception_ptr error, const Request& request) const;

  private:
    std::vector<Route> routes_;
    std::vector<ExceptionMapper> mappers_;
};

std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space);

struct ServerOptions {
    std::string service_name = "service";
    std::string bind_address = "0.0.0.0";
    uint16_t port = 0;  // 0: any free port (tests)
    unsigned io_threads = 2;
    unsigned worker_threads = 8;  // where handlers (blocking work) run
    size_t max_header_bytes = 16 * 1024;
    std::chrono::milliseconds idle_timeout{60'000};    // keep-alive: waiting for the next request
    std::chrono::milliseconds header_timeout{10'000};  // from the first byte to the end of the header
    std::chrono::milliseconds body_timeout{60'000};    // for reading a (non-streamed) request body
    std::chrono::milliseconds write_timeout{60'000};
    std::chrono::milliseconds drain_delay{0};          // readiness is 503 this long before the listener closes
    std::chrono::milliseconds shutdown_grace{20'000};  // in-flight requests get this long to finish
    std::vector<std::string> trusted_proxies;          // CIDRs whose X-Forwarded-For is believed
    // A second listener for operators: /metrics is served there only, /healthz and /readyz on both (the public
    // /readyz without the reason), and routes marked Exposure::admin_port. 0: any free port.
    std::optional<uint16_t> admin_port;
};

// Answers /readyz: Ok when ready, else the reason.
using ReadinessCheck = std::function<Check()>;

// An asynchronous HTTP/1.1 server (Boost.Beast, C++20 coroutines): connections on a small I/O pool, handlers on a
// worker pool, explicit limits and timeouts, request ids, access log, Prometheus metrics, /healthz, /readyz and
// /metrics (on an admin port when there is one), `X-Content-Type-Options: nosniff` and a `Referrer-Policy` on every
// answer, and graceful shutdown.
class Server {
  public:
    Server(ServerOptions options, Router router, std::shared_ptr<metrics::Registry> registry,
           ReadinessCheck readiness = nullptr);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and starts serving; returns the bound port. Throws std::runtime_error when the port cannot be bound.
    uint16_t start();
    // Starts a graceful shutdown: readiness turns 503, after drain_delay the listener closes and idle connections
    // are closed, in-flight requests finish (their connections close after the response), and after shutdown_grace
    // whatever is left is closed. Safe from any thread.
    void shutdown();
    // Blocks until the server has stopped.
    void wait();
    // start() if needed, shutdown() on SIGTERM or SIGINT (a second signal closes everything at once), wait().
    // When the grace period ran out (or a second signal came) with handlers still running, the process exits(0)
    // here rather than wait for them.
    void run_until_signal();

    uint16_t port() const;
    uint16_t admin_port() const;  // 0 without one
    bool draining() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mp3c::http
