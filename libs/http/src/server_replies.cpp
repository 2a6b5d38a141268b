// Writing answers: whole bodies, bodies streamed from a BodySource, Server-Sent Events; and the request log line.
#include "server_impl.hpp"
//
#include <array>
#include <boost/asio/redirect_error.hpp>
#include <cmath>

#include "mp3c/log.hpp"

namespace mp3c::http {

namespace {

// Bounded label values: unknown methods would otherwise let clients create unlimited metric series.
std::string method_label(std::string_view method) {
    for (auto known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
        if (method == known) return std::string(method);
    return "OTHER";
}

bool is_probe(std::string_view route) { return route == "/healthz" || route == "/readyz" || route == "/metrics"; }

template <class Message>
void fill_header(Message& out, const Request& request, const Response& response, bool keep_alive) {
    out.version(11);
    out.result(static_cast<unsigned>(response.status));
    for (const auto& h : response.headers.all()) out.insert(h.name, h.value);
    out.set(bhttp::field::server, "mp3converter");
    // No answer is ever to be sniffed into another type (an MP3 or a JSON body into HTML), nor leak its address.
    if (!response.headers.has("X-Content-Type-Options")) out.set("X-Content-Type-Options", "nosniff");
    if (!response.headers.has("Referrer-Policy")) out.set("Referrer-Policy", "no-referrer");
    out.set("X-Request-Id", request.request_id);
    out.keep_alive(keep_alive);
}

// A response whose body is written piece by piece (buffer_body), after its header.
struct PieceWriter {
    PieceWriter(Connection& conn, std::chrono::milliseconds write_timeout) : conn(conn), timeout(write_timeout) {
        out.body().data = nullptr;
        out.body().more = true;
    }

    awaitable<boost::system::error_code> header() {
        boost::system::error_code ec;
        conn.stream.expires_after(timeout);
        co_await bhttp::async_write_header(conn.stream, serializer, asio::redirect_error(use_awaitable, ec));
        co_return ec;
    }

    // One piece; more = false ends the body.
    awaitable<boost::system::error_code> piece(const char* data, size_t size, bool more) {
        out.body().data = size > 0 ? const_cast<char*>(data) : nullptr;
        out.body().size = size;
        out.body().more = more;
        boost::system::error_code ec;
        conn.stream.expires_after(timeout);
        co_await bhttp::async_write(conn.stream, serializer, asio::redirect_error(use_awaitable, ec));
        if (ec == bhttp::error::need_buffer) ec = {};
        co_return ec;
    }

    Connection& conn;
    std::chrono::milliseconds timeout;
    bhttp::response<bhttp::buffer_body> out;
    bhttp::response_serializer<bhttp::buffer_body> serializer{out};
};

}  // namespace

awaitable<bool> Server::Impl::reply(Exchange& ex, Response response) {
    if (response.delay.count() > 0 && !is_draining) {
        if (held_replies.fetch_add(1) < kMaxHeldReplies) {
            asio::steady_timer hold(ex.conn.stream.get_executor(), response.delay);
            boost::system::error_code ignored;
            co_await hold.async_wait(asio::redirect_error(use_awaitable, ignored));
        }
        held_replies.fetch_sub(1);
    }
    bool keep_alive = ex.keep_alive && !is_draining;
    if (response.events) co_return co_await reply_events(ex, std::move(response));
    if (response.source) co_return co_await reply_source(ex, std::move(response), keep_alive);
    const Request& request = ex.request;
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
    ex.conn.stream.expires_after(options.write_timeout);
    if (request.method == "HEAD") {
        bhttp::response_serializer<bhttp::string_body> serializer(out);
        co_await bhttp::async_write_header(ex.conn.stream, serializer, asio::redirect_error(use_awaitable, ec));
    } else {
        co_await bhttp::async_write(ex.conn.stream, out, asio::redirect_error(use_awaitable, ec));
    }
    record(request, response.status, body_bytes, ex.started_at, ec);
    co_return keep_alive && !ec;
}

awaitable<void> Server::Impl::reply_and_close(Exchange& ex, Response response) {
    if (ex.request.route.empty()) ex.request.route = "unmatched";
    ex.keep_alive = false;
    co_await reply(ex, std::move(response));
    co_await linger(ex.conn);
}

// After an early answer (413, 431) the client may still be sending: read and drop a little of it so that the close
// does not reset the connection before the client has read the answer.
awaitable<void> Server::Impl::linger(Connection& conn) {
    boost::system::error_code ec;
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    conn.stream.expires_after(std::chrono::seconds(1));
    std::array<char, 16384> scratch;
    size_t total = 0;
    while (!ec && total < (4u << 20)) {
        total += co_await conn.stream.async_read_some(asio::buffer(scratch), asio::redirect_error(use_awaitable, ec));
    }
}

// A body read from a BodySource on the workers, one chunk at a time.
awaitable<bool> Server::Impl::reply_source(Exchange& ex, Response response, bool keep_alive) {
    PieceWriter writer(ex.conn, options.write_timeout);
    fill_header(writer.out, ex.request, response, keep_alive);
    if (response.source_length) {
        writer.out.content_length(*response.source_length);
    } else {
        writer.out.chunked(true);
    }
    boost::system::error_code ec = co_await writer.header();
    uint64_t sent = 0;
    if (!ec && ex.request.method != "HEAD") {
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
                log::error("response body failed", {{"request_id", ex.request.request_id}, {"error", read_error}});
                ec = asio::error::broken_pipe;
                break;
            }
            ec = co_await writer.piece(chunk.data(), n, n > 0);
            if (ec || n == 0) break;
            sent += n;
        }
        if (!ec && response.source_length && sent != *response.source_length) ec = asio::error::message_size;
    }
    record(ex.request, response.status, sent, ex.started_at, ec);
    co_return keep_alive && !ec;
}

void StreamWaker::wake(const std::shared_ptr<StreamWaker>& waker) {
    asio::post(waker->executor, [waker] {
        waker->pending = true;
        waker->timer.cancel();
    });
}

// Server-Sent Events: poll the stream on this strand, send what it has, until it ends or the server drains.
awaitable<bool> Server::Impl::reply_events(Exchange& ex, Response response) {
    PieceWriter writer(ex.conn, options.write_timeout);
    fill_header(writer.out, ex.request, response, false);
    writer.out.chunked(true);
    boost::system::error_code ec = co_await writer.header();
    uint64_t sent = 0;
    auto waker = std::make_shared<StreamWaker>(ex.conn.stream.get_executor());
    {
        std::lock_guard lock(streams_mutex);
        streams.emplace(waker.get(), waker);
    }
    // The stream holds only a weak reference: waking a stream that ended does nothing.
    response.events->on_wake([weak = std::weak_ptr<StreamWaker>(waker)] {
        if (auto w = weak.lock()) StreamWaker::wake(w);
    });
    while (!ec && !is_draining && ex.request.method != "HEAD") {
        waker->pending = false;
        auto text = response.events->poll();
        if (!text) break;
        if (!text->empty()) {
            ec = co_await writer.piece(text->data(), text->size(), true);
            sent += text->size();
            continue;  // asked again at once, until it has nothing more (or ends)
        }
        if (waker->pending) continue;
        waker->timer.expires_after(response.poll_interval);
        co_await waker->timer.async_wait(asio::redirect_error(use_awaitable, ec));
        if (ec == asio::error::operation_aborted) ec = {};  // woken
    }
    {
        std::lock_guard lock(streams_mutex);
        streams.erase(waker.get());
    }
    if (!ec) ec = co_await writer.piece(nullptr, 0, false);
    record(ex.request, response.status, sent, ex.started_at, ec);
    co_return false;
}

void Server::Impl::record(const Request& request, int status, size_t body_bytes, Clock::time_point started_at,
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

}  // namespace mp3c::http
