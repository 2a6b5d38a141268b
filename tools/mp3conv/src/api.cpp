#include "api.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>

#include "mp3c/curl_handles.hpp"

namespace mp3c::client {

namespace {

struct FileClose {
    void operator()(FILE* f) const { std::fclose(f); }
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* reply = static_cast<Reply*>(user);
    std::string line(data, size * count);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
        reply->headers[name] = value;
    }
    return size * count;
}

size_t to_string(char* data, size_t size, size_t count, void* user) {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    auto* p = static_cast<std::pair<const Progress*, bool>*>(user);
    const Progress& progress = *p->first;
    if (!progress) return 0;
    bool upload = p->second;
    bool go_on = upload ? progress(static_cast<uint64_t>(ulnow), static_cast<uint64_t>(ultotal))
                        : progress(static_cast<uint64_t>(dlnow), static_cast<uint64_t>(dltotal));
    return go_on ? 0 : 1;
}

curl::EasyPtr handle() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    return curl::EasyPtr(curl_easy_init());
}

void common(CURL* c, const std::string& url, Reply& reply, curl_slist* headers) {
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mp3conv/1");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
}

Reply perform(CURL* c, Reply& reply) {
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
    if (rc != CURLE_OK) {
        reply.error = error[0] != '\0' ? error : curl_easy_strerror(rc);
        if (rc != CURLE_ABORTED_BY_CALLBACK && rc != CURLE_WRITE_ERROR)
            reply.status = reply.status > 0 ? reply.status : 0;
    }
    return reply;
}

}  // namespace

Api::Api(std::string server, std::string token) : server_(std::move(server)), token_(std::move(token)) {
    while (!server_.empty() && server_.back() == '/') server_.pop_back();
}

Reply Api::login(const std::string& email, const std::string& password) const {
    auto curl = handle();
    Reply reply;
    curl::SlistPtr headers(curl_slist_append(nullptr, "Accept: application/json"));
    common(curl.get(), server_ + "/login", reply, headers.get());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(curl.get(), CURLOPT_USERNAME, email.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PASSWORD, password.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &to_string);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 60L);
    return perform(curl.get(), reply);
}

Reply Api::get(const std::string& path) const {
    auto curl = handle();
    Reply reply;
    curl::SlistPtr headers(curl_slist_append(nullptr, ("Authorization: Bearer " + token_).c_str()));
    common(curl.get(), server_ + path, reply, headers.get());
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &to_string);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 60L);
    return perform(curl.get(), reply);
}

Reply Api::remove(const std::string& path) const {
    auto curl = handle();
    Reply reply;
    curl::SlistPtr headers(curl_slist_append(nullptr, ("Authorization: Bearer " + token_).c_str()));
    common(curl.get(), server_ + path, reply, headers.get());
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &to_string);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 60L);
    return perform(curl.get(), reply);
}

Reply Api::upload(const std::string& file, const std::map<std::string, std::string>& fields,
                  const Progress& progress) const {
    auto curl = handle();
    Reply reply;
    curl::SlistPtr headers(curl_slist_append(nullptr, ("Authorization: Bearer " + token_).c_str()));
    common(curl.get(), server_ + "/upload", reply, headers.get());
    curl::MimePtr mime(curl_mime_init(curl.get()));
    for (const auto& [name, value] : fields) {
        curl_mimepart* part = curl_mime_addpart(mime.get());
        curl_mime_name(part, name.c_str());
        curl_mime_data(part, value.c_str(), CURL_ZERO_TERMINATED);
    }
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, "file");
    if (curl_mime_filedata(part, file.c_str()) != CURLE_OK) {
        reply.error = "cannot read " + file;
        return reply;
    }
    curl_mime_type(part, "application/octet-stream");
    curl_easy_setopt(curl.get(), CURLOPT_MIMEPOST, mime.get());
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &to_string);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
    std::pair<const Progress*, bool> context{&progress, true};
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, &on_progress);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &context);
    curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
    // No overall timeout (a large file on a slow line takes long); give up when the transfer stalls for a minute.
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);
    return perform(curl.get(), reply);
}

Reply Api::events(const std::string& path, const std::function<bool(const SseEvent&)>& on_event) const {
    auto curl = handle();
    Reply reply;
    curl_slist* raw = curl_slist_append(nullptr, ("Authorization: Bearer " + token_).c_str());
    raw = curl_slist_append(raw, "Accept: text/event-stream");
    curl::SlistPtr headers(raw);
    common(curl.get(), server_ + path, reply, headers.get());
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
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &stream);
    return perform(curl.get(), reply);
}

Reply Api::download(const std::string& path, const std::string& destination, const Progress& progress) const {
    auto curl = handle();
    Reply reply;
    curl::SlistPtr headers(curl_slist_append(nullptr, ("Authorization: Bearer " + token_).c_str()));
    common(curl.get(), server_ + path, reply, headers.get());
    std::string temporary = destination + ".part";
    std::unique_ptr<FILE, FileClose> out(std::fopen(temporary.c_str(), "wb"));
    if (!out) {
        reply.error = "cannot write " + temporary;
        return reply;
    }
    struct Sink {
        FILE* file;
        Reply* reply;
        bool failed = false;
    } sink{out.get(), &reply};
    auto write = +[](char* data, size_t size, size_t count, void* user) -> size_t {
        auto* s = static_cast<Sink*>(user);
        if (s->reply->header("content-type").rfind("audio/", 0) != 0) {  // an error answer, not the MP3
            s->reply->body.append(data, size * count);
            return size * count;
        }
        if (std::fwrite(data, 1, size * count, s->file) != size * count) {
            s->failed = true;
            return 0;
        }
        return size * count;
    };
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
    std::pair<const Progress*, bool> context{&progress, false};
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, &on_progress);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &context);
    curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);
    perform(curl.get(), reply);
    bool flushed = std::fflush(out.get()) == 0 && ::fsync(fileno(out.get())) == 0;
    out.reset();
    if (sink.failed || !flushed) reply.error = "cannot write " + temporary;
    if (!reply.error.empty() || reply.status != 200) {
        std::remove(temporary.c_str());
    } else if (std::rename(temporary.c_str(), destination.c_str()) != 0) {
        std::remove(temporary.c_str());
        reply.error = "cannot rename " + temporary + " to " + destination;
    }
    return reply;
}

}  // namespace mp3c::client
