#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli.hpp"

// The gateway's HTTP API through libcurl.
namespace mp3c::client {

struct Reply {
    long status = 0;           // 0: no answer (error says why)
    std::string error;         // a transport failure in words, or (file_error) a local file that cannot be used
    bool file_error = false;   // upload, fetch_file, download: the failure is here (cannot read, write, rename)
    bool interrupted = false;  // ended because the interrupt flag was raised (Ctrl-C)
    std::string body;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? "" : it->second;
    }
};

// Called with bytes done and bytes in total (0 when unknown); return false to stop.
using Progress = std::function<bool(uint64_t done, uint64_t total)>;

// A failed transfer's libcurl code in a few words for users ("cannot connect", "name not found", "timed out",
// "TLS problem: ..."), never libcurl's own text.
std::string transport_problem(int curl_code);

class Api {
  public:
    // `interrupted`: when it becomes true (a SIGINT handler), every transfer ends within a second, its reply marked.
    Api(std::string server, std::string token, const std::atomic<bool>* interrupted = nullptr);
    const std::string& server() const { return server_; }

    // GET /healthz, without a token, with a short timeout: whether anything answers at the server's address.
    Reply health() const;
    Reply login(const std::string& email, const std::string& password) const;
    Reply logout() const;  // ends this session's token at the server
    Reply get(const std::string& path) const;
    Reply remove(const std::string& path) const;
    // POST path with a JSON body (none when empty).
    Reply post(const std::string& path, const std::string& json_body) const;
    Reply patch(const std::string& path, const std::string& json_body) const;
    Reply upload(const std::string& file, const std::map<std::string, std::string>& fields,
                 const Progress& progress) const;
    // Streams GET path as server-sent events until the stream ends or on_event returns false.
    // last_event_id: resumes a stream after the event the client already has (Last-Event-ID).
    Reply events(const std::string& path, const std::function<bool(const SseEvent&)>& on_event,
                 const std::string& last_event_id = {}) const;
    // GET path into `destination` (written as destination.part, renamed when complete).
    Reply download(const std::string& path, const std::string& destination, const Progress& progress) const;
    // GET path streamed into the file `temporary`, fsynced; the caller renames it into place (its name may come from
    // the answer's Content-Disposition). Only a 200 answer whose Content-Type starts with `content_type` is written;
    // an error answer is kept in the reply's body. The file is removed unless the reply is a 200 without an error.
    Reply fetch_file(const std::string& path, const std::string& content_type, const std::string& temporary,
                     const Progress& progress) const;

  private:
    // A small JSON answer, with the token; a POST sends `body`.
    Reply call(const char* method, const std::string& path, const std::string& body = {}) const;

    std::string server_;
    std::string token_;
    const std::atomic<bool>* interrupted_;
};

}  // namespace mp3c::client
