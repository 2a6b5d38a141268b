#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <latch>
#include <thread>

#include "mp3c/http.hpp"
#include "mp3c/log.hpp"
#include "mp3c/testing/http_client.hpp"

namespace mp3c::http {
namespace {

using namespace std::chrono_literals;
using testing::http_request;
using testing::HttpConnection;

class ServerTest;

// Counts the body it is fed; refuses bodies over 1 MiB with an early 413; records how it ended.
class CountingConsumer : public BodyConsumer {
  public:
    explicit CountingConsumer(ServerTest* test) : test_(test) {}
    ~CountingConsumer() override;
    std::optional<Response> on_data(std::string_view chunk) override {
        bytes_ += chunk.size();
        for (unsigned char c : chunk) sum_ = sum_ * 31 + c;
        if (limited_ && bytes_ > (1u << 20)) return Response::error(413, "too_big", "over 1 MiB");
        return std::nullopt;
    }
    Response on_end() override {
        ended_ = true;
        return Response::json(200, {{"bytes", bytes_}, {"sum", sum_}});
    }
    bool limited_ = false;

  private:
    ServerTest* test_;
    uint64_t bytes_ = 0;
    uint64_t sum_ = 0;
    bool ended_ = false;
};

class PatternSource : public BodySource {
  public:
    explicit PatternSource(size_t size) : left_(size) {}
    size_t read(char* buffer, size_t size) override {
        size_t n = std::min(size, left_);
        for (size_t i = 0; i < n; ++i) buffer[i] = static_cast<char>('a' + (position_++ % 26));
        left_ -= n;
        return n;
    }

  private:
    size_t left_;
    size_t position_ = 0;
};

class CountdownEvents : public EventStream {
  public:
    explicit CountdownEvents(int count) : left_(count) {}
    std::optional<std::string> poll() override {
        if (left_ == 0) return std::nullopt;
        return "data: " + std::to_string(left_--) + "\n\n";
    }

  private:
    int left_;
};

// Sends "data: 1", then whatever push() hands it, woken rather than polled (its poll interval is an hour).
class PushedEvents : public EventStream {
  public:
    std::optional<std::string> poll() override {
        std::lock_guard lock(mutex_);
        if (!started_) {
            started_ = true;
            cv_.notify_all();
            return std::string("data: 1\n\n");
        }
        if (!next_.empty()) return std::exchange(next_, "");
        if (ended_) return std::nullopt;
        return std::string();
    }
    void on_wake(std::function<void()> wake) override {
        std::lock_guard lock(mutex_);
        wake_ = std::move(wake);
        cv_.notify_all();
    }
    // Waits until the server has handed the wake function over and taken the first event (a drain that came before
    // would rightly end the stream without it).
    bool push(std::string text, bool end) {
        std::function<void()> wake;
        {
            std::unique_lock lock(mutex_);
            if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return wake_ && started_; })) return false;
            next_ += text;
            ended_ = ended_ || end;
            wake = wake_;
        }
        wake();
        return true;
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::function<void()> wake_;
    std::string next_;
    bool started_ = false;
    bool ended_ = false;
};

std::string pattern(size_t size) {
    std::string s(size, '\0');
    for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i % 26));
    return s;
}

uint64_t checksum(std::string_view data) {
    uint64_t sum = 0;
    for (unsigned char c : data) sum = sum * 31 + c;
    return sum;
}

class ServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        log::set_sink([this](std::string_view line) {
            std::lock_guard lock(log_mutex_);
            log_lines_.emplace_back(line);
        });
        router_.add("GET", "/hello/{name}", [](Request& r) {
            return Response::json(200, {{"hello", r.path_param("name")}, {"q", r.query_param("q").value_or("")}});
        });
        router_.add("POST", "/echo", [](Request& r) { return Response::text(200, r.body); }, {.max_body_bytes = 1024});
        router_.add("GET", "/throw", [](Request&) -> Response { throw std::runtime_error("handler failed"); });
        router_.add_streaming("POST", "/upload",
                              [this](Request& r) -> std::variant<Response, std::unique_ptr<BodyConsumer>> {
                                  if (r.headers.get("X-Refuse"))
                                      return Response::error(403, "refused", "refused at the header");
                                  auto consumer = std::make_unique<CountingConsumer>(this);
                                  consumer->limited_ = r.headers.has("X-Limit");
                                  return consumer;
                              },
                              {.max_body_bytes = 64 << 20});
        router_.add("GET", "/download", [](Request& r) {
            Response response;
            size_t size = std::stoul(r.query_param("size").value_or("0"));
            response.source = std::make_shared<PatternSource>(size);
            response.source_length = size;
            response.headers.set("Content-Type", "application/octet-stream");
            return response;
        });
        router_.add("GET", "/events", [](Request&) {
            Response response;
            response.headers.set("Content-Type", "text/event-stream");
            response.events = std::make_shared<CountdownEvents>(3);
            response.poll_interval = std::chrono::milliseconds(10);
            return response;
        });
        router_.add("GET", "/block", [this](Request&) {
            block_entered_.count_down();
            release_block_.get_future().wait();
            return Response::text(200, "unblocked");
        });
    }
    void TearDown() override {
        server_.reset();
        log::set_sink(nullptr);
    }

    uint16_t start(ServerOptions options = {}) {
        options.service_name = "test";
        options.port = 0;
        options.bind_address = "127.0.0.1";
        server_ = std::make_unique<Server>(options, router_, registry_, [this]() -> Check {
            if (!ready_) return std::string("dependency down");
            return Ok{};
        });
        return server_->start();
    }

    std::vector<std::string> logs() {
        std::lock_guard lock(log_mutex_);
        return log_lines_;
    }

    Router router_;
    std::shared_ptr<metrics::Registry> registry_ = std::make_shared<metrics::Registry>();
    std::unique_ptr<Server> server_;
    std::atomic<bool> ready_{true};
    std::latch block_entered_{1};
    std::promise<void> release_block_;
    std::mutex log_mutex_;
    std::vector<std::string> log_lines_;

  public:
    std::mutex consumers_mutex_;
    std::condition_variable consumers_cv_;
    int consumers_destroyed_ = 0;
    int consumers_ended_ = 0;
    bool wait_consumers_destroyed(int n) {
        std::unique_lock lock(consumers_mutex_);
        return consumers_cv_.wait_for(lock, std::chrono::seconds(30), [&] { return consumers_destroyed_ >= n; });
    }
};

CountingConsumer::~CountingConsumer() {
    std::lock_guard lock(test_->consumers_mutex_);
    ++test_->consumers_destroyed_;
    if (ended_) ++test_->consumers_ended_;
    test_->consumers_cv_.notify_all();
}

TEST_F(ServerTest, RoutesWithPathAndQueryParameters) {
    auto port = start();
    auto r = http_request(port, "GET", "/hello/w%C3%B6rld?q=a+b");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.json()["hello"], "wörld");
    EXPECT_EQ(r.json()["q"], "a b");
    EXPECT_EQ(r.header("x-request-id").size(), 16u);
}

TEST_F(ServerTest, UnknownRouteAndWrongMethodGiveJsonErrors) {
    auto port = start();
    auto missing = http_request(port, "GET", "/nope");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.json()["error"], "not_found");
    auto wrong = http_request(port, "GET", "/echo");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_EQ(wrong.json()["error"], "method_not_allowed");
    EXPECT_EQ(wrong.header("allow"), "POST");
}

TEST_F(ServerTest, NoContentAnswersNeverCarryABody) {
    router_.add("POST", "/nothing", [](Request&) { return Response::json(204, {{"ignored", true}}); });
    auto port = start();
    HttpConnection c("127.0.0.1", port);
    auto r = c.request("POST", "/nothing", {}, "x");
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.header("content-type"), "");
    EXPECT_EQ(c.request("POST", "/echo", {}, "still open").body, "still open") << "the connection stays usable";
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    auto port = start();
    HttpConnection c("127.0.0.1", port);
    for (int i = 0; i < 3; ++i) {
        auto r = c.request("POST", "/echo", {}, "body " + std::to_string(i));
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.body, "body " + std::to_string(i));
    }
}

TEST_F(ServerTest, IncomingRequestIdIsKeptAndLogged) {
    auto port = start();
    HttpConnection c("127.0.0.1", port);
    auto r = c.request("GET", "/hello/x", {{"X-Request-Id", "trace-abc-123"}});
    EXPECT_EQ(r.header("x-request-id"), "trace-abc-123");
    // The access log line is written after the response; the connection's next answer comes after it.
    c.request("GET", "/hello/y");
    bool logged = false;
    for (const auto& line : logs()) {
        auto j = nlohmann::json::parse(line);
        if (j["message"] == "request" && j["request_id"] == "trace-abc-123") {
            logged = true;
            EXPECT_EQ(j["route"], "/hello/{name}");
            EXPECT_EQ(j["status"], 200);
            EXPECT_EQ(j["method"], "GET");
        }
    }
    EXPECT_TRUE(logged);
    // An unsafe id is replaced rather than echoed.
    auto unsafe = http_request(port, "GET", "/hello/x", {{"X-Request-Id", "bad id\"with quotes"}});
    EXPECT_EQ(unsafe.header("x-request-id").size(), 16u);
}

TEST_F(ServerTest, OversizedHeaderGets431) {
    ServerOptions options;
    options.max_header_bytes = 8 * 1024;
    auto port = start(options);
    auto r = http_request(port, "GET", "/hello/x", {{"Authorization", "Basic " + std::string(100 * 1024, 'A')}});
    EXPECT_EQ(r.status, 431);
    EXPECT_EQ(r.json()["error"], "header_too_large");
}

TEST_F(ServerTest, OversizedBodyGets413ByContentLengthAndWhenChunked) {
    auto port = start();
    auto r = http_request(port, "POST", "/echo", {}, std::string(2048, 'x'));
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.json()["error"], "body_too_large");

    HttpConnection c("127.0.0.1", port);
    std::string chunk(1500, 'y');
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
    c.send_raw("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(size_line) + chunk +
               "\r\n0\r\n\r\n");
    auto chunked = c.read_response();
    ASSERT_TRUE(chunked);
    EXPECT_EQ(chunked->status, 413);
}

TEST_F(ServerTest, MalformedRequestGets400) {
    auto port = start();
    HttpConnection c("127.0.0.1", port);
    c.send_raw("THIS IS NOT HTTP\r\n\r\n");
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(r->json()["error"], "bad_request");
}

TEST_F(ServerTest, HandlerExceptionGives500AndServerKeepsServing) {
    auto port = start();
    auto r = http_request(port, "GET", "/throw");
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.json()["error"], "internal_error");
    EXPECT_EQ(r.body.find("handler failed"), std::string::npos);  // internals stay in the log
    EXPECT_EQ(http_request(port, "GET", "/hello/again").status, 200);
}

TEST_F(ServerTest, HeaderTimeoutClosesASlowClient) {
    ServerOptions options;
    options.header_timeout = 200ms;
    auto port = start(options);
    HttpConnection slow("127.0.0.1", port, 10s);
    slow.send_raw("GET /hello/x HTTP/1.1\r\nHost: x\r\n");  // never finishes the header
    EXPECT_TRUE(slow.wait_closed());
}

TEST_F(ServerTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
    ServerOptions options;
    options.idle_timeout = 200ms;
    auto port = start(options);
    HttpConnection c("127.0.0.1", port, 10s);
    EXPECT_EQ(c.request("GET", "/hello/x").status, 200);
    EXPECT_TRUE(c.wait_closed());
}

TEST_F(ServerTest, BlockingHandlerDoesNotHoldUpOtherRequests) {
    auto port = start();
    auto blocked = std::async(std::launch::async, [port] { return http_request(port, "GET", "/block"); });
    block_entered_.wait();
    // While one handler blocks, a slow client holds a connection open and others are still served.
    HttpConnection slow("127.0.0.1", port);
    slow.send_raw("GET /hello/slow HTTP/1.1\r\n");
    for (int i = 0; i < 5; ++i) EXPECT_EQ(http_request(port, "GET", "/hello/x").status, 200);
    release_block_.set_value();
    EXPECT_EQ(blocked.get().body, "unblocked");
}

TEST_F(ServerTest, HealthzAnswersWhileEveryWorkerIsBusy) {
    ServerOptions options;
    options.worker_threads = 1;
    auto port = start(options);
    auto blocked = std::async(std::launch::async, [port] { return http_request(port, "GET", "/block"); });
    block_entered_.wait();  // the only worker is held
    EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
    release_block_.set_value();
    EXPECT_EQ(blocked.get().body, "unblocked");
}

TEST_F(ServerTest, HealthReadinessAndMetrics) {
    auto port = start();
    EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
    EXPECT_EQ(http_request(port, "GET", "/readyz").status, 200);
    ready_ = false;
    auto not_ready = http_request(port, "GET", "/readyz");
    EXPECT_EQ(not_ready.status, 503);
    EXPECT_EQ(not_ready.json()["message"], "dependency down");
    // One connection: a request's metrics are recorded after its answer is sent, before the next is read.
    HttpConnection c("127.0.0.1", port);
    c.request("GET", "/hello/x");
    c.request("GET", "/nope");
    auto metrics = c.request("GET", "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.header("content-type").find("text/plain; version=0.0.4"), std::string::npos);
    EXPECT_NE(metrics.body.find("http_requests_total{route=\"/hello/{name}\",method=\"GET\",status=\"200\"} 1"),
              std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find("http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"),
              std::string::npos);
    EXPECT_NE(metrics.body.find("http_request_duration_seconds_count{route=\"/hello/{name}\",method=\"GET\"} 1"),
              std::string::npos);
}

TEST_F(ServerTest, HeadIsAnsweredWithoutBody) {
    auto port = start();
    HttpConnection c("127.0.0.1", port);
    // Pipelined: if the HEAD answer carried a body, the GET's status line would not come next.
    c.send_raw("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/after HTTP/1.1\r\nHost: x\r\n\r\n");
    auto head = c.read_response(/*head_request=*/true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->header("content-length"), "15");  // that of the GET answer {"status":"ok"}
    auto get = c.read_response();
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200);
    EXPECT_EQ(get->json()["hello"], "after");
}

TEST_F(ServerTest, ShutdownLetsInFlightRequestFinishThenStops) {
    ServerOptions options;
    options.shutdown_grace = 30s;
    auto port = start(options);
    HttpConnection idle("127.0.0.1", port);
    EXPECT_EQ(idle.request("GET", "/hello/x").status, 200);  // now idle on keep-alive
    auto in_flight = std::async(std::launch::async, [port] { return http_request(port, "GET", "/block"); });
    block_entered_.wait();
    server_->shutdown();
    EXPECT_TRUE(idle.wait_closed());  // idle connections are closed at once
    release_block_.set_value();
    auto r = in_flight.get();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "unblocked");
    EXPECT_EQ(r.header("connection"), "close");
    server_->wait();
    EXPECT_THROW(HttpConnection("127.0.0.1", port), std::runtime_error);  // listener closed
}

TEST_F(ServerTest, ReadinessIs503WhileDraining) {
    ServerOptions options;
    options.drain_delay = 30s;  // the listener stays open: a load balancer still asks
    auto port = start(options);
    server_->shutdown();
    int status = 0;
    for (int i = 0; i < 200 && status != 503; ++i) status = http_request(port, "GET", "/readyz").status;
    EXPECT_EQ(status, 503);
    EXPECT_TRUE(server_->draining());
}

TEST_F(ServerTest, BindingAPortInUseFailsClearly) {
    auto port = start();
    ServerOptions options;
    options.port = port;
    options.bind_address = "127.0.0.1";
    Server second(options, Router{}, nullptr);
    try {
        second.start();
        FAIL() << "expected the bind to fail";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos);
    }
}

TEST_F(ServerTest, StreamingUploadSeesTheWholeBodyInChunks) {
    auto port = start();
    std::string body = pattern(5 << 20);
    auto r = http_request(port, "POST", "/upload", {}, body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["bytes"], body.size());
    EXPECT_EQ(r.json()["sum"], checksum(body));
    ASSERT_TRUE(wait_consumers_destroyed(1));
    EXPECT_EQ(consumers_ended_, 1);
}

TEST_F(ServerTest, StreamingUploadWithExpectContinueAndChunkedEncoding) {
    auto port = start();
    HttpConnection c("127.0.0.1", port);
    c.send_raw("POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    ASSERT_TRUE(c.read_continue());
    c.send_raw("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->json()["bytes"], 11);
    EXPECT_EQ(r->json()["sum"], checksum("hello world"));
}

TEST_F(ServerTest, StreamingRouteCanRefuseFromTheHeaderAlone) {
    auto port = start();
    auto r = http_request(port, "POST", "/upload", {{"X-Refuse", "1"}}, std::string(1000, 'x'));
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.json()["error"], "refused");
    EXPECT_EQ(consumers_destroyed_, 0) << "no consumer was made";
}

TEST_F(ServerTest, StreamingBodyOverTheRouteLimitIs413AndTheConsumerIsDropped) {
    auto port = start();
    // Declared too large: refused before the body is read; the consumer the handler made never sees an end.
    HttpConnection c("127.0.0.1", port);
    c.send_raw("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(65 << 20) + "\r\n\r\n");
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->json()["error"], "body_too_large");
    ASSERT_TRUE(wait_consumers_destroyed(1));
    EXPECT_EQ(consumers_ended_, 0);
}

TEST_F(ServerTest, ConsumerCanAnswerEarlyAndTheRestOfTheBodyIsNotRead) {
    auto port = start();
    auto r = http_request(port, "POST", "/upload", {{"X-Limit", "1"}}, std::string(5 << 20, 'z'));
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.json()["error"], "too_big");
    EXPECT_EQ(r.header("connection"), "close");
    ASSERT_TRUE(wait_consumers_destroyed(1));
    EXPECT_EQ(consumers_ended_, 0);
}

TEST_F(ServerTest, ClientDisconnectingMidUploadDropsTheConsumerWithoutEnding) {
    auto port = start();
    {
        HttpConnection c("127.0.0.1", port);
        c.send_raw("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + std::string(300000, 'x'));
    }  // closed with most of the body unsent
    ASSERT_TRUE(wait_consumers_destroyed(1));
    EXPECT_EQ(consumers_ended_, 0) << "the consumer must see an abort, not an end";
    EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
}

TEST_F(ServerTest, DownloadStreamsFromABodySource) {
    auto port = start();
    auto r = http_request(port, "GET", "/download?size=3000000");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-length"), "3000000");
    EXPECT_EQ(r.body, pattern(3000000));
    HttpConnection c("127.0.0.1", port);
    c.send_raw("HEAD /download?size=100 HTTP/1.1\r\nHost: x\r\n\r\nGET /download?size=5 HTTP/1.1\r\nHost: x\r\n\r\n");
    auto head = c.read_response(true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->header("content-length"), "100");
    auto get = c.read_response();
    ASSERT_TRUE(get);
    EXPECT_EQ(get->body, "abcde");
}

TEST_F(ServerTest, EventStreamSendsEventsUntilItEnds) {
    auto port = start();
    auto r = http_request(port, "GET", "/events");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-type"), "text/event-stream");
    EXPECT_EQ(r.header("transfer-encoding"), "chunked");
    EXPECT_EQ(r.body, "data: 3\n\ndata: 2\n\ndata: 1\n\n");
}

TEST_F(ServerTest, AdminPortServesMetricsAndThePublicPortNever) {
    ServerOptions options;
    options.admin_port = 0;
    auto port = start(options);
    auto admin = server_->admin_port();
    ASSERT_NE(admin, 0);
    ASSERT_NE(admin, port);
    EXPECT_EQ(http_request(port, "GET", "/metrics").status, 404);
    EXPECT_EQ(http_request(admin, "GET", "/metrics").status, 200);
    // Probes on both; the reason a dependency is down only for operators.
    EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
    EXPECT_EQ(http_request(admin, "GET", "/healthz").status, 200);
    ready_ = false;
    auto outside = http_request(port, "GET", "/readyz");
    EXPECT_EQ(outside.status, 503);
    EXPECT_EQ(outside.body.find("dependency down"), std::string::npos) << outside.body;
    EXPECT_EQ(http_request(admin, "GET", "/readyz").json()["message"], "dependency down");
    // The application's routes are not on the admin port.
    EXPECT_EQ(http_request(port, "GET", "/hello/x").status, 200);
    EXPECT_EQ(http_request(admin, "GET", "/hello/x").status, 404);
}

TEST_F(ServerTest, EveryAnswerForbidsSniffingAndReferrers) {
    auto port = start();
    for (const char* target : {"/hello/x", "/nope", "/download?size=10", "/metrics"}) {
        auto r = http_request(port, "GET", target);
        EXPECT_EQ(r.header("x-content-type-options"), "nosniff") << target;
        EXPECT_EQ(r.header("referrer-policy"), "no-referrer") << target;
    }
}

// A forwarding server in front of this test's server (the upstream, whose /hold keeps its calls until released).
class ForwardTest : public ServerTest {
  protected:
    uint16_t start_front(size_t max_in_flight, std::function<std::optional<Response>(Request&)> before = nullptr) {
        router_.add("GET", "/hold", [this](Request&) {
            {
                std::lock_guard lock(held_mutex_);
                ++held_;
            }
            held_cv_.notify_all();
            released_.wait();
            return Response::text(200, "released");
        });
        router_.add("POST", "/mirror", [](Request& r) {
            return Response::json(200, {{"body", r.body},
                                        {"content_type", r.headers.get("Content-Type").value_or("")},
                                        {"forwarded_for", r.headers.get("X-Forwarded-For").value_or("")},
                                        {"request_id", r.headers.get("X-Request-Id").value_or("")},
                                        {"secret", r.headers.get("X-Secret").value_or("")}});
        });
        upstream_port_ = start();
        upstream_ =
            Upstream::from_url("backend", "http://127.0.0.1:" + std::to_string(upstream_port_), 5s, max_in_flight);
        Router front;
        front.forward("GET", "/slow", {.upstream = upstream_, .path = "/hold"});
        front.forward("POST", "/echo",
                      {.upstream = upstream_,
                       .path = "/mirror",
                       .before = std::move(before),
                       .after = [](const Request& received, Response answer) {
                           answer.headers.set("X-Seen", received.path);
                           return answer;
                       }});
        front.add("GET", "/local", [](Request&) { return Response::text(200, "local"); });
        ServerOptions options;
        options.service_name = "front";
        options.bind_address = "127.0.0.1";
        options.worker_threads = 1;
        front_ = std::make_unique<Server>(options, front, std::make_shared<metrics::Registry>());
        return front_->start();
    }
    void TearDown() override {
        release_.set_value();
        front_.reset();
        ServerTest::TearDown();
    }
    bool wait_held(int n) {
        std::unique_lock lock(held_mutex_);
        return held_cv_.wait_for(lock, 10s, [&] { return held_ >= n; });
    }

    uint16_t upstream_port_ = 0;
    std::shared_ptr<Upstream> upstream_;
    std::unique_ptr<Server> front_;
    std::promise<void> release_;
    std::shared_future<void> released_ = release_.get_future().share();
    std::mutex held_mutex_;
    std::condition_variable held_cv_;
    int held_ = 0;
};

TEST_F(ForwardTest, SlowUpstreamCallsHoldNoWorkerAndAreBounded) {
    auto port = start_front(2);
    auto first = std::async(std::launch::async, [port] { return http_request(port, "GET", "/slow"); });
    auto second = std::async(std::launch::async, [port] { return http_request(port, "GET", "/slow"); });
    ASSERT_TRUE(wait_held(2));  // the upstream holds both calls; the front's only worker is free
    for (int i = 0; i < 5; ++i) EXPECT_EQ(http_request(port, "GET", "/local").body, "local");
    auto third = http_request(port, "GET", "/slow");  // over the limit: refused at once, not queued
    EXPECT_EQ(third.status, 503);
    EXPECT_EQ(third.json()["error"], "backend_busy");
    EXPECT_EQ(third.header("retry-after"), "1");
    release_.set_value();
    release_ = std::promise<void>();  // TearDown's
    EXPECT_EQ(first.get().body, "released");
    EXPECT_EQ(second.get().body, "released");
}

TEST_F(ForwardTest, BodyHeadersAndHooksPassThrough) {
    auto port = start_front(4, [](Request& outgoing) -> std::optional<Response> {
        if (outgoing.headers.has("X-Refuse")) return Response::error(429, "too_many", "refused before sending");
        outgoing.headers.set("Content-Type", "application/x-rewritten");
        return std::nullopt;
    });
    auto r = http_request(port, "POST", "/echo", {{"X-Request-Id", "req-42"}, {"X-Secret", "not passed"}}, "{\"a\":1}");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-seen"), "/echo");
    auto seen = r.json();
    EXPECT_EQ(seen["body"], "{\"a\":1}");
    EXPECT_EQ(seen["content_type"], "application/x-rewritten");
    EXPECT_EQ(seen["forwarded_for"], "127.0.0.1");
    EXPECT_EQ(seen["request_id"], "req-42");
    EXPECT_EQ(seen["secret"], "");  // only the listed headers go on
    auto refused = http_request(port, "POST", "/echo", {{"X-Refuse", "1"}}, "{}");
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(refused.header("x-seen"), "/echo");
}

TEST_F(ForwardTest, UnreachableUpstreamIs503) {
    auto port = start_front(4);
    server_.reset();  // the upstream is gone
    auto r = http_request(port, "GET", "/slow");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.json()["error"], "backend_unavailable");
    EXPECT_EQ(r.header("retry-after"), "5");
}

TEST(UpstreamUrl, ParsesHostPortAndBase) {
    auto up = Upstream::from_url("auth", "http://auth:5000", 1s, 8);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->host, "auth");
    EXPECT_EQ(up->port, 5000);
    EXPECT_EQ(up->base_path, "");
    up = Upstream::from_url("auth", "http://[::1]:81/api/", 1s, 8);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->host, "::1");
    EXPECT_EQ(up->port, 81);
    EXPECT_EQ(up->base_path, "/api");
    EXPECT_EQ(Upstream::from_url("auth", "http://auth", 1s, 8)->port, 80);
    for (const char* bad : {"https://auth:5000", "auth:5000", "http://", "http://auth:0", "http://auth:99999",
                            "http://user@auth:5000", "http://auth:50x0"}) {
        EXPECT_FALSE(Upstream::from_url("auth", bad, 1s, 8)) << bad;
    }
}

TEST_F(ServerTest, EventStreamIsWokenByItsProducerNotPolled) {
    auto stream = std::make_shared<PushedEvents>();
    router_.add("GET", "/pushed", [stream](Request&) {
        Response response;
        response.headers.set("Content-Type", "text/event-stream");
        response.events = stream;
        response.poll_interval = std::chrono::hours(1);
        return response;
    });
    auto port = start();
    auto r = std::async(std::launch::async, [port] { return http_request(port, "GET", "/pushed"); });
    ASSERT_TRUE(stream->push("data: 2\n\n", false));
    ASSERT_TRUE(stream->push("", true));  // ends the stream; an hour's poll would time the client out
    EXPECT_EQ(r.get().body, "data: 1\n\ndata: 2\n\n");
}

TEST_F(ServerTest, DrainingEndsOpenEventStreamsAtOnce) {
    auto stream = std::make_shared<PushedEvents>();
    router_.add("GET", "/pushed", [stream](Request&) {
        Response response;
        response.events = stream;
        response.poll_interval = std::chrono::hours(1);
        return response;
    });
    ServerOptions options;
    options.shutdown_grace = std::chrono::hours(1);  // only the drain's wake-up can end the stream in time
    auto port = start(options);
    auto r = std::async(std::launch::async, [port] { return http_request(port, "GET", "/pushed"); });
    ASSERT_TRUE(stream->push("", false));  // the stream is open and the server has its wake function
    server_->shutdown();
    EXPECT_EQ(r.get().body, "data: 1\n\n");
    server_->wait();
}

TEST_F(ServerTest, AHeldAnswerHoldsOnlyItsOwnConnection) {
    router_.add("GET", "/held", [](Request&) {
        Response r = Response::error(429, "slow_down", "held");
        r.delay = std::chrono::seconds(5);
        return r;
    });
    ServerOptions options;
    options.worker_threads = 1;
    auto port = start(options);
    auto held = std::async(std::launch::async, [port] { return http_request(port, "GET", "/held"); });
    // The only worker is free and the I/O thread is not blocked: others are answered while the refusal waits.
    for (int i = 0; i < 5; ++i) EXPECT_EQ(http_request(port, "GET", "/hello/x").status, 200);
    EXPECT_NE(held.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "still held";
    EXPECT_EQ(held.get().status, 429);
}

}  // namespace
}  // namespace mp3c::http
