// Streaming routes: the handler sees the header and returns a consumer, which then gets the body chunk by chunk as it
// arrives; memory stays at two chunks whatever the body's size (Drogon's shape: header, bytes, end).
#include "server_impl.hpp"
//
#include <array>
#include <boost/asio/redirect_error.hpp>
#include <variant>

#include "mp3c/log.hpp"

namespace mp3c::http {

namespace {

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

}  // namespace

awaitable<bool> Server::Impl::handle_streaming(Exchange& ex, HeaderParser& header_parser, const Route& route,
                                               bool send_continue) {
    Request& request = ex.request;
    std::variant<Response, std::unique_ptr<BodyConsumer>> decision;
    std::exception_ptr failure;
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
        co_await reply_and_close(ex, std::move(*refused));  // the body is never read
        co_return false;
    }
    std::unique_ptr<BodyConsumer> consumer = std::move(std::get<std::unique_ptr<BodyConsumer>>(decision));
    auto release = [&] { consumer.reset(); };  // may delete a partial file: a worker's job
    // The handler judged the announced length itself (its own limits, its own words); the route's limit still bounds
    // what is read. The parser checks a declared length only while reading the header, which is done: check it here.
    if (auto length = header_parser.content_length(); length && *length > route.options.max_body_bytes) {
        co_await on_workers(release);
        co_await reply_and_close(ex, body_too_large(route.options.max_body_bytes));
        co_return false;
    }
    if (send_continue && !co_await write_continue(ex.conn)) {
        co_await on_workers(release);
        co_return false;
    }

    in_flight.add(1);
    Pumped pumped = co_await pump_body(ex, header_parser, route, *consumer);
    if (pumped.complete && !pumped.response) {
        auto end = [&] { return consumer->on_end(); };
        try {
            pumped.response = co_await on_workers(end);
        } catch (...) {
            pumped.response = router.handle_exception(std::current_exception(), request);
        }
    }
    in_flight.add(-1);
    co_await on_workers(release);

    if (pumped.error) {
        if (pumped.error == bhttp::error::body_limit) {
            co_await reply_and_close(ex, body_too_large(route.options.max_body_bytes));
        } else {
            log::info("request body not completed", {{"request_id", request.request_id},
                                                     {"route", request.route},
                                                     {"bytes_in", request.body_bytes},
                                                     {"error", pumped.error.message()}});
        }
        co_return false;  // timeout or the client went away: nothing more to say on this connection
    }
    if (!pumped.complete) {  // answered early: the rest of the body is not wanted
        co_await reply_and_close(ex, std::move(*pumped.response));
        co_return false;
    }
    co_return co_await reply(ex, std::move(*pumped.response));
}

// Reads the body into two buffers in turn: while a worker hands one chunk to the consumer (hashing, writing), the
// next is read from the socket, so the network and the disk work in parallel. Stops at the end of the body, at the
// consumer's early answer, or at a read error.
awaitable<Server::Impl::Pumped> Server::Impl::pump_body(Exchange& ex, HeaderParser& header_parser, const Route& route,
                                                        BodyConsumer& consumer) {
    // With a Content-Length the body is read straight from the socket into the chunks (one copy, as much per call as
    // the socket holds); a chunked body goes through Beast's parser.
    auto content_length = header_parser.content_length();
    const bool sized = content_length.has_value() && !header_parser.chunked();
    uint64_t left = sized ? *content_length : 0;
    bhttp::request_parser<bhttp::buffer_body> parser(std::move(header_parser));
    parser.body_limit(route.options.max_body_bytes);
    std::array<std::vector<char>, 2> chunks = {std::vector<char>(kStreamChunk), std::vector<char>(kStreamChunk)};
    int current = 0;
    std::shared_ptr<ChunkTask> pending;
    Pumped result;
    auto& stream = ex.conn.stream;
    auto settle = [&](std::shared_ptr<ChunkTask> task) -> awaitable<void> {
        while (!task->done) {
            boost::system::error_code ignored;
            co_await task->signal.async_wait(asio::redirect_error(use_awaitable, ignored));
        }
        if (task->error) {
            result.response = router.handle_exception(task->error, ex.request);
        } else if (task->response) {
            result.response = std::move(task->response);
        }
    };
    auto body_done = [&] { return sized ? left == 0 : parser.is_done(); };
    boost::system::error_code& ec = result.error;
    while (!body_done() && !result.response) {
        auto& chunk = chunks[current];
        size_t n = 0;
        if (sized) {
            size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), left));
            if (ex.buffer.size() > 0) {  // body bytes that came in with the header
                n = asio::buffer_copy(asio::buffer(chunk.data(), want), ex.buffer.data());
                ex.buffer.consume(n);
            }
            while (n < want) {
                stream.expires_after(options.body_timeout);  // an inactivity limit, not a total one
                n += co_await stream.async_read_some(asio::buffer(chunk.data() + n, want - n),
                                                     asio::redirect_error(use_awaitable, ec));
                if (ec) break;
            }
            left -= n;
        } else {
            parser.get().body().data = chunk.data();
            parser.get().body().size = chunk.size();
            stream.expires_after(options.body_timeout);  // an inactivity limit: each chunk must come in time
            co_await bhttp::async_read(stream, ex.buffer, parser, asio::redirect_error(use_awaitable, ec));
            if (ec == bhttp::error::need_buffer) ec = {};
            n = chunk.size() - parser.get().body().size;
        }
        if (pending) {
            co_await settle(std::move(pending));  // the previous chunk must be taken before the next goes
            pending.reset();
            if (result.response) break;
        }
        if (ec) break;
        if (n == 0) continue;
        ex.request.body_bytes += n;
        pending = std::make_shared<ChunkTask>(stream.get_executor());
        asio::post(workers, [task = pending, consumer = &consumer, data = std::string_view(chunk.data(), n)] {
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
    result.complete = !ec && body_done();
    co_return result;
}

}  // namespace mp3c::http
