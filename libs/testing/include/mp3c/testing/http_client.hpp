#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

// A deliberately small HTTP/1.1 client on plain sockets, so tests can send anything (malformed requests, partial
// bodies, huge headers) and see exactly what comes back.
namespace mp3c::testing {

struct HttpResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;

    std::string header(const std::string& lower_name) const;
    nlohmann::json json() const;
};

class HttpConnection {
  public:
    // local_address: the client's own address, for tests of per-client behaviour (127.0.0.2, 127.0.0.3: every
    // 127.0.0.0/8 address is this machine's).
    HttpConnection(const std::string& host, uint16_t port,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(30000),
                   const std::string& local_address = {});
    ~HttpConnection();
    HttpConnection(const HttpConnection&) = delete;
    HttpConnection& operator=(const HttpConnection&) = delete;

    // Sends bytes as they are; false when the peer has closed.
    bool send_raw(std::string_view bytes);
    // Reads one response (Content-Length or chunked or until close); nullopt when the connection closed first. The
    // answer to a HEAD request has no body whatever its Content-Length says: pass head_request.
    std::optional<HttpResponse> read_response(bool head_request = false);
    // Reads an interim "100 Continue" status line and its blank line; false if something else came.
    bool read_continue();
    // True when the server closed the connection (reads EOF or a reset) before the timeout.
    bool wait_closed();

    HttpResponse request(const std::string& method, const std::string& target,
                         const std::map<std::string, std::string>& headers = {}, const std::string& body = {});

  private:
    bool fill();
    int fd_ = -1;
    std::string buffer_;
};

// One request on a fresh connection.
HttpResponse http_request(uint16_t port, const std::string& method, const std::string& target,
                          const std::map<std::string, std::string>& headers = {}, const std::string& body = {});

std::string basic_auth(const std::string& user, const std::string& password);

}  // namespace mp3c::testing
