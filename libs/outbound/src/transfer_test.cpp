// The outbound transfer against a tiny HTTP server on 127.0.0.1 (a thread of the test), and the address guard.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "mp3c/outbound.hpp"
#include "mp3c/testing/loopback.hpp"

namespace mp3c::outbound {
namespace {

using namespace std::chrono_literals;

// Accepts connections on 127.0.0.1 and answers each with `response` once its request headers have arrived.
class CannedServer {
  public:
    explicit CannedServer(std::string response) : response_(std::move(response)), thread_([this] { serve(); }) {}
    ~CannedServer() {
        stopping_ = true;
        thread_.join();
    }
    std::string url(const std::string& path) const { return socket_.url(path); }
    int connections() const { return connections_.load(); }
    std::string last_request() const {
        std::lock_guard lock(mutex_);
        return request_;
    }

  private:
    void serve() {
        while (!stopping_) {
            pollfd p{socket_.fd(), POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int client = ::accept4(socket_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) continue;
            ++connections_;
            std::string request;
            char buffer[4096];
            while (request.find("\r\n\r\n") == std::string::npos) {
                ssize_t n = ::read(client, buffer, sizeof buffer);
                if (n <= 0) break;
                request.append(buffer, static_cast<size_t>(n));
            }
            {
                std::lock_guard lock(mutex_);
                request_ = request;
            }
            (void)!::write(client, response_.data(), response_.size());
            ::close(client);
        }
    }

    std::string response_;
    testing::LoopbackSocket socket_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<int> connections_{0};
    mutable std::mutex mutex_;
    std::string request_;
    std::thread thread_;
};

const std::string kAnswer =
    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nRetry-After: 7\r\nContent-Length: 11\r\n"
    "Connection: close\r\n\r\n{\"ok\":true}";

Options loopback_allowed() {
    Options o;
    o.connect_timeout = 2s;
    o.timeout = 5s;
    return o;
}

TEST(Outbound, PostsWithItsHeadersAndCollectsTheAnswer) {
    CannedServer server(kAnswer);
    Transfer t(server.url("/login"), loopback_allowed());
    t.header("Accept: application/json");
    t.header("X-Request-Id: abc");
    std::string body = "{\"a\":1}";
    t.post(body);
    std::string answer;
    t.collect_body(answer, 1000);
    std::map<std::string, std::string> headers;
    t.on_header([&](std::string_view name, std::string_view value) { headers[std::string(name)] = value; });
    auto result = t.perform();
    ASSERT_TRUE(result) << result.error().detail;
    EXPECT_EQ(result.value(), 201);
    EXPECT_EQ(answer, "{\"ok\":true}");
    EXPECT_EQ(headers["Retry-After"], "7");
    EXPECT_EQ(headers["Content-Type"], "application/json");
    std::string request = server.last_request();
    EXPECT_EQ(request.rfind("POST /login HTTP/1.1", 0), 0u) << request;
    EXPECT_NE(request.find("X-Request-Id: abc\r\n"), std::string::npos) << request;
    EXPECT_NE(request.find("User-Agent: mp3converter\r\n"), std::string::npos) << request;
}

TEST(Outbound, AnAnswerOverItsLimitIsAPermanentFailure) {
    CannedServer server(kAnswer);
    Transfer t(server.url("/"), loopback_allowed());
    std::string answer;
    t.collect_body(answer, 5);
    auto result = t.perform();
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().outcome, Outcome::permanent);
    EXPECT_NE(result.error().detail.find("larger than 5 bytes"), std::string::npos) << result.error().detail;
}

TEST(Outbound, NobodyListeningIsTransientAndAnUnusableUrlPermanent) {
    uint16_t closed = 0;
    {
        CannedServer gone(kAnswer);
        closed = static_cast<uint16_t>(std::stoi(gone.url("").substr(17)));
    }
    auto refused = Transfer("http://127.0.0.1:" + std::to_string(closed) + "/", loopback_allowed()).perform();
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().outcome, Outcome::transient) << refused.error().detail;
    auto ftp = Transfer("ftp://127.0.0.1/file", loopback_allowed()).perform();
    ASSERT_FALSE(ftp);
    EXPECT_EQ(ftp.error().outcome, Outcome::permanent) << "a protocol not allowed: " << ftp.error().detail;
    auto file = Transfer("file:///etc/passwd", loopback_allowed()).perform();
    ASSERT_FALSE(file);
    EXPECT_EQ(file.error().outcome, Outcome::permanent) << file.error().detail;
}

TEST(Outbound, TheGuardRefusesAnAddressInsideTheNetworkBeforeConnecting) {
    CannedServer server(kAnswer);
    Options guarded = loopback_allowed();
    guarded.refuse_private_addresses = true;
    Transfer t(server.url("/hook"), guarded);
    auto result = t.perform();
    ASSERT_FALSE(result);
    EXPECT_TRUE(t.address_refused());
    EXPECT_EQ(t.refused_address(), "127.0.0.1");
    EXPECT_EQ(result.error().outcome, Outcome::permanent);
    Transfer by_name("http://localhost:" + server.url("").substr(17) + "/hook", guarded);
    EXPECT_FALSE(by_name.perform());
    EXPECT_TRUE(by_name.address_refused()) << "a name that resolves inside is refused too";
    EXPECT_EQ(server.connections(), 0) << "refused before any connection";

    // The control: without the guard the same call goes through.
    EXPECT_TRUE(Transfer(server.url("/hook"), loopback_allowed()).perform());
    EXPECT_EQ(server.connections(), 1);
}

bool public_address(const std::string& text) {
    sockaddr_storage storage{};
    if (text.find(':') != std::string::npos) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
        a->sin6_family = AF_INET6;
        EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &a->sin6_addr), 1) << text;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&storage);
        a->sin_family = AF_INET;
        EXPECT_EQ(inet_pton(AF_INET, text.c_str(), &a->sin_addr), 1) << text;
    }
    return is_public_address(reinterpret_cast<sockaddr*>(&storage));
}

TEST(Outbound, InternalAddressesAreNotPublic) {
    for (const char* internal : {"127.0.0.1",
                                 "127.255.0.9",
                                 "10.1.2.3",
                                 "172.16.0.1",
                                 "172.31.255.255",
                                 "192.168.1.10",
                                 "169.254.169.254",
                                 "100.64.0.1",
                                 "0.0.0.0",
                                 "224.0.0.1",
                                 "255.255.255.255",
                                 "192.0.2.1",
                                 "::1",
                                 "::",
                                 "fe80::1",
                                 "fd00::5",
                                 "fc12::1",
                                 "ff02::1",
                                 "::ffff:127.0.0.1",
                                 "::ffff:10.0.0.1",
                                 "::ffff:169.254.169.254",
                                 "64:ff9b::a00:1",
                                 "2001:db8::1"}) {
        EXPECT_FALSE(public_address(internal)) << internal;
    }
    for (const char* external : {"93.184.216.34", "8.8.8.8", "172.32.0.1", "192.169.0.1", "100.128.0.1",
                                 "2606:2800:220:1::1", "::ffff:93.184.216.34"}) {
        EXPECT_TRUE(public_address(external)) << external;
    }
}

}  // namespace
}  // namespace mp3c::outbound
