#include "api.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <memory>

#include "mp3c/curl_handles.hpp"
#include "mp3c/outbound.hpp"

namespace mp3c::client {

namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxAnswerBytes = 64 << 20;  // a JSON answer; MP3s are streamed to a file
constexpr size_t kMaxErrorBytes = 1 << 20;    // an error answer instead of a downloaded file

struct FileClose {
    void operator()(FILE* f) const { std::fclose(f); }
};

struct ProgressContext {
    const Progress* progress = nullptr;
    bool upload = false;
    const std::atomic<bool>* interrupted = nullptr;
};

bool raised(const std::atomic<bool>* flag) { return flag != nullptr && flag->load(); }

// libcurl calls these about once a second even when no byte moves, so a raised flag ends any transfer soon.
int on_interrupt_check(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return raised(static_cast<const std::atomic<bool>*>(user)) ? 1 : 0;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    auto* p = static_cast<ProgressContext*>(user);
    if (raised(p->interrupted)) return 1;
    if (p->progress == nullptr || !*p->progress) return 0;
    const Progress& progress = *p->progress;
    bool go_on = p->upload ? progress(static_cast<uint64_t>(ulnow), static_cast<uint64_t>(ultotal))
                           : progress(static_cast<uint64_t>(dlnow), static_cast<uint64_t>(dltotal));
    return go_on ? 0 : 1;
}

// A transfer to the server with what every call shares: the client's name, a connect timeout, proxies from the
// environment (a user's machine may need one), the answer's headers into the reply (names in lower case), and the
// end of the transfer when the interrupt flag is raised.
std::unique_ptr<outbound::Transfer> start(const std::string& url, Reply& reply, std::chrono::milliseconds timeout,
                                          const std::atomic<bool>* interrupted,
                                          std::chrono::milliseconds connect_timeout = 10s) {
    outbound::Options options;
    options.connect_timeout = connect_timeout;
    options.timeout = timeout;
    options.user_agent = "mp3conv/1";
    options.environment_proxy = true;
    auto transfer = std::make_unique<outbound::Transfer>(url, options);
    transfer->on_header([&reply](std::string_view name, std::string_view value) {
        std::string lower(name);
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        reply.headers[lower] = std::string(value);
    });
    if (interrupted != nullptr) {
        CURL* c = transfer->handle();
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_interrupt_check);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(interrupted));
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    return transfer;
}

// Progress callbacks (which also watch the interrupt flag), and for long transfers no overall timeout but a stall
// of a minute ends them.
void watch(outbound::Transfer& transfer, ProgressContext& context) {
    CURL* c = transfer.handle();
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &context);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
}

Reply& finish(outbound::Transfer& transfer, Reply& reply, const std::atomic<bool>* interrupted) {
    auto result = transfer.perform();
    if (result) {
        reply.status = result.value();
    } else {
        reply.status = result.error().code;
        reply.interrupted = raised(interrupted);
        reply.error = reply.interrupted ? "stopped" : transport_problem(transfer.curl_code());
    }
    return reply;
}

}  // namespace

std::string transport_problem(int curl_code) {
    switch (static_cast<CURLcode>(curl_code)) {
        case CURLE_COULDNT_CONNECT:
            return "cannot connect";
        case CURLE_COULDNT_RESOLVE_HOST:
            return "name not found";
        case CURLE_COULDNT_RESOLVE_PROXY:
            return "the proxy's name not found";
        case CURLE_OPERATION_TIMEDOUT:
            return "timed out";
        case CURLE_PEER_FAILED_VERIFICATION:
            return "TLS problem: the server's certificate is not trusted";
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_USE_SSL_FAILED:
            return "TLS problem";
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            return "not an http:// or https:// URL";
        case CURLE_GOT_NOTHING:
            return "the server closed the connection without answering";
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_PARTIAL_FILE:
            return "the connection broke";
        case CURLE_WRITE_ERROR:
            return "the answer could not be taken in (too large?)";
        case CURLE_TOO_MANY_REDIRECTS:
            return "too many redirects";
        case CURLE_OUT_OF_MEMORY:
            return "out of memory";
        case CURLE_ABORTED_BY_CALLBACK:
            return "stopped";
        default:
            return "the transfer failed (libcurl code " + std::to_string(curl_code) + ")";
    }
}

Api::Api(std::string server, std::string token, const std::atomic<bool>* interrupted)
    : server_(std::move(server)), token_(std::move(token)), interrupted_(interrupted) {
    while (!server_.empty() && server_.back() == '/') server_.pop_back();
}

Reply Api::health() const {
    Reply reply;
    auto t = start(server_ + "/healthz", reply, 5s, interrupted_, 3s);
    t->collect_body(reply.body, kMaxErrorBytes);
    return finish(*t, reply, interrupted_);
}

Reply Api::login(const std::string& email, const std::string& password) const {
    Reply reply;
    auto t = start(server_ + "/login", reply, 60s, interrupted_);
    t->header("Accept: application/json");
    CURL* c = t->handle();
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(c, CURLOPT_USERNAME, email.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
    t->post("");
    t->collect_body(reply.body, kMaxAnswerBytes);
    return finish(*t, reply, interrupted_);
}

Reply Api::logout() const {
    Reply reply;
    auto t = start(server_ + "/logout", reply, 60s, interrupted_);
    t->header("Authorization: Bearer " + token_);
    t->post("");
    t->collect_body(reply.body, kMaxAnswerBytes);
    return finish(*t, reply, interrupted_);
}

Reply Api::get(const std::string& path) const { return call("GET", path); }

Reply Api::remove(const std::string& path) const { return call("DELETE", path); }

Reply Api::post(const std::string& path, const std::string& json_body) const { return call("POST", path, json_body); }

Reply Api::patch(const std::string& path, const std::string& json_body) const { return call("PATCH", path, json_body); }

Reply Api::call(const char* method, const std::string& path, const std::string& body) const {
    Reply reply;
    auto t = start(server_ + path, reply, 60s, interrupted_);
    t->header("Authorization: Bearer " + token_);
    if (std::string_view(method) == "POST" || std::string_view(method) == "PATCH") {
        if (!body.empty()) t->header("Content-Type: application/json");
        t->post(body);
    }
    if (std::string_view(method) != "GET" && std::string_view(method) != "POST") {
        curl_easy_setopt(t->handle(), CURLOPT_CUSTOMREQUEST, method);
    }
    t->collect_body(reply.body, kMaxAnswerBytes);
    return finish(*t, reply, interrupted_);
}

Reply Api::upload(const std::string& file, const std::map<std::string, std::string>& fields,
                  const Progress& progress) const {
    Reply reply;
    auto t = start(server_ + "/upload", reply, 0ms,
                   interrupted_);  // no overall timeout: a large file on a slow line takes long
    t->header("Authorization: Bearer " + token_);
    curl::MimePtr mime(curl_mime_init(t->handle()));
    for (const auto& [name, value] : fields) {
        curl_mimepart* part = curl_mime_addpart(mime.get());
        curl_mime_name(part, name.c_str());
        curl_mime_data(part, value.c_str(), CURL_ZERO_TERMINATED);
    }
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, "file");
    if (curl_mime_filedata(part, file.c_str()) != CURLE_OK) {
        reply.error = "cannot read " + file;
        reply.file_error = true;
        return reply;
    }
    curl_mime_type(part, "application/octet-stream");
    curl_easy_setopt(t->handle(), CURLOPT_MIMEPOST, mime.get());
    t->collect_body(reply.body, kMaxAnswerBytes);
    ProgressContext context{&progress, true, interrupted_};
    watch(*t, context);
    return finish(*t, reply, interrupted_);
}

Reply Api::events(const std::string& path, const std::function<bool(const SseEvent&)>& on_event,
                  const std::string& last_event_id) const {
    Reply reply;
    auto t = start(server_ + path, reply, 0ms,
                   interrupted_);  // a stream: it lasts until the job ends (or the stream's lifetime)
    t->header("Authorization: Bearer " + token_);
    t->header("Accept: text/event-stream");
    if (!last_event_id.empty()) t->header("Last-Event-ID: " + last_event_id);
    struct Stream {
        SseParser parser;
        const std::function<bool(const SseEvent&)>* on_event;
        Reply* reply;
    } stream{{}, &on_event, &reply};
    auto write = +[](char* data, size_t size, size_t count, void* user) -> size_t {
        auto* s = static_cast<Stream*>(user);
        if (s->reply->header("content-type").rfind("text/event-stream", 0) != 0) {
            s->reply->body.append(data, size * count);  // an error answer: keep it for the message
            return size * count;
        }
        for (const auto& e : s->parser.feed(std::string_view(data, size * count))) {
            if (!(*s->on_event)(e)) return 0;  // stop: the caller has what it waited for
        }
        return size * count;
    };
    curl_easy_setopt(t->handle(), CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(t->handle(), CURLOPT_WRITEDATA, &stream);
    return finish(*t, reply, interrupted_);
}

Reply Api::download(const std::string& path, const std::string& destination, const Progress& progress) const {
    std::string temporary = destination + ".part";
    Reply reply = fetch_file(path, "audio/", temporary, progress);
    if (reply.status == 200 && reply.error.empty() && std::rename(temporary.c_str(), destination.c_str()) != 0) {
        std::remove(temporary.c_str());
        reply.error = "cannot rename " + temporary + " to " + destination;
        reply.file_error = true;
    }
    return reply;
}

Reply Api::fetch_file(const std::string& path, const std::string& content_type, const std::string& temporary,
                      const Progress& progress) const {
    Reply reply;
    auto t =
        start(server_ + path, reply, 0ms, interrupted_);  // no overall timeout; a stall of a minute ends it (watch)
    t->header("Authorization: Bearer " + token_);
    std::unique_ptr<FILE, FileClose> out(std::fopen(temporary.c_str(), "wb"));
    if (!out) {
        reply.error = "cannot write " + temporary;
        reply.file_error = true;
        return reply;
    }
    struct Sink {
        FILE* file;
        Reply* reply;
        const std::string* content_type;
        bool failed = false;
    } sink{out.get(), &reply, &content_type};
    auto write = +[](char* data, size_t size, size_t count, void* user) -> size_t {
        auto* s = static_cast<Sink*>(user);
        if (s->reply->header("content-type").rfind(*s->content_type, 0) != 0) {   // an error answer, not the file
            if (s->reply->body.size() + size * count > kMaxErrorBytes) return 0;  // not an error answer either
            s->reply->body.append(data, size * count);
            return size * count;
        }
        if (std::fwrite(data, 1, size * count, s->file) != size * count) {
            s->failed = true;
            return 0;
        }
        return size * count;
    };
    curl_easy_setopt(t->handle(), CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(t->handle(), CURLOPT_WRITEDATA, &sink);
    ProgressContext context{&progress, false, interrupted_};
    watch(*t, context);
    finish(*t, reply, interrupted_);
    bool flushed = std::fflush(out.get()) == 0 && ::fsync(fileno(out.get())) == 0;
    out.reset();
    if (sink.failed || !flushed) {
        reply.error = "cannot write " + temporary;
        reply.file_error = true;
    }
    std::string answered = reply.header("content-type");
    if (reply.status == 200 && answered.rfind(content_type, 0) != 0) {
        reply.error = "the server answered " + (answered.empty() ? "without a Content-Type" : answered) + ", not " +
                      content_type + "...";
    }
    if (!reply.error.empty() || reply.status != 200) std::remove(temporary.c_str());
    return reply;
}

}  // namespace mp3c::client
