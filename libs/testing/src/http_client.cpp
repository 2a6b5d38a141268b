#include "mp3c/testing/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "mp3c/crypto.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::testing {

std::string HttpResponse::header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
}

nlohmann::json HttpResponse::json() const {
    auto parsed = nlohmann::json::parse(body, nullptr, false);
    if (parsed.is_discarded()) throw std::runtime_error("response body is not JSON: " + body.substr(0, 200));
    return parsed;
}

HttpConnection::HttpConnection(const std::string& host, uint16_t port, std::chrono::milliseconds timeout,
                               const std::string& local_address) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!local_address.empty()) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        if (::inet_pton(AF_INET, local_address.c_str(), &local.sin_addr) != 1 ||
            ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
            int err = errno;
            ::close(fd_);
            throw std::runtime_error("bind to " + local_address + ": " + std::strerror(err));
        }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) throw std::runtime_error("bad host " + host);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(err));
    }
}

HttpConnection::~HttpConnection() {
    if (fd_ >= 0) ::close(fd_);
}

bool HttpConnection::send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

bool HttpConnection::fill() {
    char chunk[65536];
    for (;;) {
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        buffer_.append(chunk, static_cast<size_t>(n));
        return true;
    }
}

bool HttpConnection::wait_closed() {
    for (;;) {
        char chunk[4096];
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n == 0) return true;
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == ECONNRESET;  // EAGAIN: the timeout passed with the connection still open
        }
    }
}

bool HttpConnection::read_continue() {
    while (buffer_.find("\r\n\r\n") == std::string::npos)
        if (!fill()) return false;
    auto end = buffer_.find("\r\n\r\n");
    bool is_continue = buffer_.compare(0, 12, "HTTP/1.1 100") == 0;
    if (is_continue) buffer_.erase(0, end + 4);
    return is_continue;
}

std::optional<HttpResponse> HttpConnection::read_response(bool head_request) {
    for (;;) {
        size_t end;
        while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) return std::nullopt;
        std::string head = buffer_.substr(0, end);
        buffer_.erase(0, end + 4);
        HttpResponse response;
        auto lines = split(head, '\n');
        auto status_line = trim(lines[0]);
        if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") {
            throw std::runtime_error("bad status line: " + std::string(status_line));
        }
        response.status = std::stoi(std::string(status_line.substr(9, 3)));
        for (size_t i = 1; i < lines.size(); ++i) {
            auto line = trim(lines[i]);
            auto colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            response.headers[to_lower_ascii(line.substr(0, colon))] = std::string(trim(line.substr(colon + 1)));
        }
        if (response.status >= 100 && response.status < 200) continue;  // interim answers carry no body
        if (head_request) return response;

        if (iequals(response.header("transfer-encoding"), "chunked")) {
            for (;;) {
                size_t line_end;
                while ((line_end = buffer_.find("\r\n")) == std::string::npos)
                    if (!fill()) return std::nullopt;
                size_t size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
                buffer_.erase(0, line_end + 2);
                while (buffer_.size() < size + 2)
                    if (!fill()) return std::nullopt;
                response.body += buffer_.substr(0, size);
                buffer_.erase(0, size + 2);
                if (size == 0) break;
            }
        } else if (!response.header("content-length").empty()) {
            size_t length = std::stoul(response.header("content-length"));
            while (buffer_.size() < length)
                if (!fill()) return std::nullopt;
            response.body = buffer_.substr(0, length);
            buffer_.erase(0, length);
        } else if (response.status != 204 && response.status != 304) {
            while (fill()) {
            }
            response.body = std::move(buffer_);
            buffer_.clear();
        }
        return response;
    }
}

HttpResponse HttpConnection::request(const std::string& method, const std::string& target,
                                     const std::map<std::string, std::string>& headers, const std::string& body) {
    std::string raw = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    bool has_length = false;
    for (const auto& [name, value] : headers) {
        raw += name + ": " + value + "\r\n";
        has_length = has_length || iequals(name, "content-length");
    }
    if (!has_length && (!body.empty() || method == "POST" || method == "PUT")) {
        raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    raw += "\r\n" + body;
    if (!send_raw(raw)) throw std::runtime_error("connection closed while sending " + method + " " + target);
    auto response = read_response();
    if (!response) throw std::runtime_error("connection closed before a response to " + method + " " + target);
    return *response;
}

HttpResponse http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::map<std::string, std::string>& headers, const std::string& body) {
    HttpConnection connection("127.0.0.1", port);
    return connection.request(method, target, headers, body);
}

std::string basic_auth(const std::string& user, const std::string& password) {
    return "Basic " + crypto::base64_encode(user + ":" + password);
}

}  // namespace mp3c::testing
