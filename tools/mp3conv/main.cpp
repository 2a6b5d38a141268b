// mp3conv: the command-line client of mp3converter. See src/cli.cpp (kUsage) for the commands and exit statuses.
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"
#include "cli.hpp"
#include "mp3c/settings.hpp"
#include "session.hpp"

namespace {

using namespace mp3c::client;
using nlohmann::json;

bool terminal() { return ::isatty(STDERR_FILENO) == 1; }

// The string `key` of a JSON object; "" when it is missing, null or not a string.
std::string text_of(const json& j, const std::string& key) {
    if (!j.is_object()) return "";
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The `error` code of an error answer ({"error", "message"}); "" when there is none.
std::string error_code(const Reply& r) { return text_of(json::parse(r.body, nullptr, false), "error"); }

bool is_final(const std::string& status) {
    return status == "done" || status == "failed" || status == "cancelled" || status == "expired";
}

std::string message_of(const Reply& r) {
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"];
    if (!r.body.empty() && r.body.size() < 300) return r.body;
    return "HTTP " + std::to_string(r.status);
}

// The exit status and a message for a reply that is not what was wanted.
int fail(const Api& api, const Reply& r, const std::string& what) {
    if (r.status == 0) {
        std::fprintf(stderr, "mp3conv: %s: cannot reach the server at %s: %s\n", what.c_str(), api.server().c_str(),
                     r.error.c_str());
        return kUnreachable;
    }
    std::string message = message_of(r);
    // The gateway answers 401 without a token and 403 ("not_authorized") for one that is expired or invalid.
    auto j = json::parse(r.body, nullptr, false);
    bool token_refused = r.status == 403 && j.is_object() && j.value("error", "") == "not_authorized";
    if (r.status == 401 || token_refused) {
        std::fprintf(stderr, "mp3conv: %s: not logged in, or the session expired: run `mp3conv login EMAIL`\n",
                     what.c_str());
        return kUnauthorized;
    }
    if (r.status == 503) {
        std::fprintf(stderr, "mp3conv: %s: the service is unavailable for now (%s); try again shortly\n", what.c_str(),
                     message.c_str());
        return kUnreachable;
    }
    if (r.status == 429) {
        std::string after = r.header("retry-after");
        std::fprintf(stderr, "mp3conv: %s: the server is busy (%s)%s\n", what.c_str(), message.c_str(),
                     after.empty() ? "" : ("; try again in " + after + " s").c_str());
        return kRefused;
    }
    if (r.status == 404) {
        std::fprintf(stderr, "mp3conv: %s: not found\n", what.c_str());
        return kFailed;
    }
    std::fprintf(stderr, "mp3conv: %s: refused: %s\n", what.c_str(), message.c_str());
    return kRefused;
}

std::string read_password(const std::string& email) {
    std::string password;
    if (::isatty(STDIN_FILENO) == 1) {
        std::fprintf(stderr, "Password for %s: ", email.c_str());
        termios saved{};
        tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        std::getline(std::cin, password);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        std::fprintf(stderr, "\n");
    } else {
        std::getline(std::cin, password);
    }
    while (!password.empty() && (password.back() == '\r' || password.back() == '\n')) password.pop_back();
    return password;
}

// Ends the token at the server, then forgets it here (also when the server cannot be told: the token then ends by
// itself when it expires).
int logout(const Api& api, const std::string& server) {
    Reply r = api.logout();
    forget_session(server);
    if (r.status == 204 || r.status == 401 || r.status == 403) return kOk;  // ended now, or already
    std::fprintf(stderr,
                 "mp3conv: forgotten here, but the server could not end the session (%s); it ends when it "
                 "expires\n",
                 r.error.empty() ? ("HTTP " + std::to_string(r.status)).c_str() : r.error.c_str());
    return kUnreachable;
}

int login(const Command& c, const std::string& server) {
    const std::string& email = c.args[0];
    std::string password = read_password(email);
    if (password.empty()) {
        std::fprintf(stderr, "mp3conv: no password given\n");
        return kUsage;
    }
    Api api(server, "");
    Reply r = api.login(email, password);
    if (r.status != 200) {
        if (r.status == 401) {
            std::fprintf(stderr, "mp3conv: login: wrong e-mail or password\n");
            return kUnauthorized;
        }
        return fail(api, r, "login");
    }
    auto j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("token")) {
        std::fprintf(stderr, "mp3conv: login: the server's answer holds no token\n");
        return kFailed;
    }
    save_session(server, {email, j["token"], j.value("expires_at", "")});
    if (c.json) {
        std::cout << json{{"email", email}, {"server", server}, {"expires_at", j.value("expires_at", "")}}.dump()
                  << "\n";
    } else {
        std::fprintf(stderr, "logged in to %s as %s (until %s)\n", server.c_str(), email.c_str(),
                     j.value("expires_at", "?").c_str());
    }
    return kOk;
}

// Draws one line of progress on a terminal; on other outputs, prints a plain line now and then.
class Meter {
  public:
    explicit Meter(std::string label) : label_(std::move(label)) {}
    void show(const std::string& stage, double fraction, const std::string& extra = "") {
        if (terminal()) {
            std::fprintf(stderr, "\r\033[K%s  %-10s %s %s", label_.c_str(), stage.c_str(),
                         progress_bar(fraction).c_str(), extra.c_str());
            std::fflush(stderr);
            drawn_ = true;
            return;
        }
        int step = static_cast<int>(fraction * 4);  // plain lines at 0, 25, 50, 75 %
        if (stage != stage_ || step > step_) {
            std::fprintf(stderr, "%s: %s %d%%\n", label_.c_str(), stage.c_str(), static_cast<int>(fraction * 100));
            stage_ = stage;
            step_ = step;
        }
    }
    void done(const std::string& line) {
        if (drawn_) std::fprintf(stderr, "\r\033[K");
        std::fprintf(stderr, "%s: %s\n", label_.c_str(), line.c_str());
        drawn_ = false;
    }

  private:
    std::string label_;
    std::string stage_;
    int step_ = -1;
    bool drawn_ = false;
};

// Shows a download's progress on the meter.
Progress download_progress(Meter& meter) {
    return [&meter](uint64_t done, uint64_t total) {
        meter.show("download", total > 0 ? static_cast<double>(done) / total : 0);
        return true;
    };
}

// The exit status and a message for a download that did not end with the file: a file that could not be written
// here, an MP3 the server no longer keeps, or what fail() says.
int download_failure(const Api& api, const Reply& r, const std::string& what) {
    if (r.file_error || (r.status == 200 && !r.error.empty())) {
        std::fprintf(stderr, "mp3conv: %s: %s\n", what.c_str(), r.error.c_str());
        return kFailed;
    }
    if (r.status == 410 && error_code(r) == "expired") {
        std::fprintf(stderr, "mp3conv: %s: the MP3 has expired: the server deleted it after its retention time\n",
                     what.c_str());
        return kFailed;
    }
    return fail(api, r, what);
}

struct Outcome {
    std::string file;
    std::string job_id;
    std::string status;  // done, failed, cancelled, expired, error; download --all: downloaded, skipped, error
    std::string mp3;
    std::string error;
    int exit = kOk;
};

// Follows a job's event stream until it ends in a final state. A stream the gateway ends (its lifetime, a restart)
// is resumed at once from the last event; a refused one (429: too many open streams) after its Retry-After; 30
// failures in a row give up.
json follow(const Api& api, const std::string& id, Meter& meter) {
    json last;
    std::string last_event_id;
    for (int failures = 0; failures < 30;) {
        bool heard = false;
        const std::string resume = last_event_id;
        Reply r = api.events(
            "/jobs/" + id + "/events",
            [&](const SseEvent& e) {
                heard = true;
                if (e.id) last_event_id = *e.id;
                if (e.event != "status") return true;
                auto j = json::parse(e.data, nullptr, false);
                if (!j.is_object()) return true;
                last = j;
                std::string status = j.value("status", "");
                meter.show(status == "queued" ? "queued" : "converting", j.value("progress", 0) / 100.0);
                return !is_final(status);
            },
            resume);
        std::string status = last.is_object() ? last.value("status", "") : "";
        if (is_final(status)) return last;
        if (r.status == 200 && heard) continue;  // ended by the gateway after its lifetime: resume
        ++failures;
        if (r.status == 429) {
            int wait = std::clamp(std::atoi(r.header("retry-after").c_str()), 1, 60);
            std::this_thread::sleep_for(std::chrono::seconds(wait));
            continue;
        }
        if (r.status != 0 && r.status != 200) {
            last = json{{"status", "error"}, {"http_status", r.status}, {"error", message_of(r)}};
            return last;
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));  // the connection broke (a gateway restart)
    }
    return json{{"status", "error"}, {"error", "lost the job's event stream"}};
}

// Follows the job o.job_id to its end and downloads its MP3 to `mp3`: what convert does after an upload, and retry
// after its request.
void follow_and_download(const Api& api, Outcome& o, Meter& meter, const std::string& mp3) {
    json final_state = follow(api, o.job_id, meter);
    o.status = final_state.value("status", "error");
    if (o.status != "done") {
        o.error = text_of(final_state, "error");
        meter.done(o.status + (o.error.empty() ? "" : ": " + o.error));
        o.exit = kFailed;
        return;
    }
    o.mp3 = mp3;
    Reply d = api.download("/jobs/" + o.job_id + "/mp3", o.mp3, download_progress(meter));
    if (d.status != 200 || !d.error.empty()) {
        meter.done("download failed");
        o.status = "error";
        o.error = d.error.empty() ? message_of(d) : d.error;
        o.exit = download_failure(api, d, "download " + o.job_id);
        o.mp3.clear();
        return;
    }
    meter.done("done -> " + o.mp3 + " (" + human_bytes(final_state.value("mp3_size", 0ull)) + ")");
}

Outcome convert_one(const Api& api, const std::string& file, const Command& c) {
    Outcome o{.file = file};
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
        o.status = "error";
        o.error = "not a readable file";
        o.exit = kFailed;
        std::fprintf(stderr, "mp3conv: %s: not a readable file\n", file.c_str());
        return o;
    }
    std::string label = std::filesystem::path(file).filename().string();
    Meter meter(label);
    auto started = std::chrono::steady_clock::now();
    Reply r = api.upload(file, c.fields, [&](uint64_t done, uint64_t total) {
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::string rate = seconds > 0.2 ? human_bytes(static_cast<uint64_t>(done / seconds)) + "/s" : "";
        meter.show("uploading", total > 0 ? static_cast<double>(done) / total : 0, rate);
        return true;
    });
    if (r.status != 202) {
        meter.done("upload failed");
        o.status = "error";
        o.exit = fail(api, r, "upload " + file);
        o.error = r.status == 0 ? r.error : message_of(r);
        return o;
    }
    o.job_id = json::parse(r.body).value("job_id", "");
    follow_and_download(api, o, meter, output_path(file, c.output_dir));
    return o;
}

json record(const Outcome& o) {
    auto or_null = [](const std::string& text) { return text.empty() ? json(nullptr) : json(text); };
    return {{"file", o.file},
            {"job_id", or_null(o.job_id)},
            {"status", o.status},
            {"mp3", or_null(o.mp3)},
            {"error", or_null(o.error)}};
}

// The -o folder, made (with its parents) when it does not exist yet.
bool is_output_dir(const std::string& dir) {
    if (dir.empty() || std::filesystem::is_directory(dir)) return true;
    std::error_code error;
    if (!std::filesystem::exists(dir, error) && std::filesystem::create_directories(dir, error)) {
        std::fprintf(stderr, "mp3conv: created %s\n", dir.c_str());
        return true;
    }
    std::fprintf(stderr, "mp3conv: %s is not a directory%s\n", dir.c_str(),
                 error ? (" (" + error.message() + ")").c_str() : "");
    return false;
}

int convert(const Command& c, const Api& api) {
    if (!is_output_dir(c.output_dir)) return kUsage;
    int exit = kOk;
    json results = json::array();
    for (const auto& file : c.args) {
        Outcome o = convert_one(api, file, c);
        results.push_back(record(o));
        exit = std::max(exit, o.exit);
        if (o.exit == kUnauthorized || o.exit == kUnreachable) break;  // the next files would fail alike
    }
    if (c.json) std::cout << results.dump() << "\n";
    return exit;
}

JobRow job_row(const json& job) {
    JobRow row{.job_id = text_of(job, "job_id"),
               .status = text_of(job, "status"),
               .progress = job.value("progress", 0),
               .created_at = text_of(job, "created_at"),
               .filename = text_of(job, "filename")};
    if (std::string expires = text_of(job, "expires_at"); !expires.empty()) row.expires_at = expires;
    return row;
}

// The width of the table: 80 columns, or a wider terminal's.
int table_columns() {
    winsize size{};
    if (::isatty(STDOUT_FILENO) == 1 && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 80) {
        return size.ws_col;
    }
    return 80;
}

int jobs(const Command& c, const Api& api) {
    Reply r = api.get("/jobs?limit=100");
    if (r.status != 200) return fail(api, r, "jobs");
    auto j = json::parse(r.body);
    if (c.json) {
        std::cout << j["jobs"].dump() << "\n";
        return kOk;
    }
    int columns = table_columns();
    std::printf("%s\n", job_table_header().c_str());
    for (const auto& job : j["jobs"]) std::printf("%s\n", job_table_line(job_row(job), columns).c_str());
    return kOk;
}

int status(const Command& c, const Api& api) {
    Reply r = api.get("/jobs/" + c.args[0]);
    if (r.status != 200) return fail(api, r, "status " + c.args[0]);
    auto j = json::parse(r.body);
    if (c.json) {
        std::cout << j.dump() << "\n";
        return kOk;
    }
    std::printf("job       %s\nfile      %s\nstatus    %s (%d%%)\n", j.value("job_id", "").c_str(),
                j.value("filename", "").c_str(), j.value("status", "").c_str(), j.value("progress", 0));
    if (j["error"].is_string()) std::printf("error     %s\n", j["error"].get<std::string>().c_str());
    if (j["mp3_size"].is_number()) std::printf("mp3       %s\n", human_bytes(j["mp3_size"].get<uint64_t>()).c_str());
    std::string expires = text_of(j, "expires_at");
    if (!expires.empty()) std::printf("expires   %s UTC\n", utc_minutes(expires).c_str());
    if (j.value("retryable", json(false)) == json(true)) std::printf("retry     mp3conv retry %s\n", c.args[0].c_str());
    return j.value("status", "") == "failed" ? kFailed : kOk;
}

int download_one(const Command& c, const Api& api) {
    const std::string& id = c.args[0];
    Reply info = api.get("/jobs/" + id);
    if (info.status != 200) return fail(api, info, "download " + id);
    auto j = json::parse(info.body);
    std::string status = text_of(j, "status");
    if (status == "expired") {
        std::fprintf(stderr,
                     "mp3conv: download: the job's MP3 has expired: the server deleted it after its "
                     "retention time\n");
        return kFailed;
    }
    if (status != "done") {
        std::fprintf(stderr, "mp3conv: download: the job is %s, not done\n", status.c_str());
        return kFailed;
    }
    std::string path = mp3_path(c.output_dir, text_of(j, "filename"));
    Meter meter(std::filesystem::path(path).filename().string());
    Reply r = api.download("/jobs/" + id + "/mp3", path, download_progress(meter));
    if (r.status != 200 || !r.error.empty()) {
        meter.done("download failed");
        return download_failure(api, r, "download");
    }
    meter.done("saved " + path);
    if (c.json) std::cout << json{{"job_id", id}, {"mp3", path}}.dump() << "\n";
    return kOk;
}

// The caller's done jobs, newest first, read page by page, each once (a job finishing meanwhile shifts the pages);
// or the answer that refused a page.
mp3c::Result<std::vector<json>, Reply> done_jobs(const Api& api) {
    std::vector<json> jobs;
    std::set<std::string> seen;
    for (uint64_t offset = 0;;) {
        Reply r = api.get("/jobs?status=done&limit=100&offset=" + std::to_string(offset));
        if (r.status != 200) return r;
        auto page = json::parse(r.body);
        for (const auto& job : page["jobs"]) {
            if (seen.insert(text_of(job, "job_id")).second) jobs.push_back(job);
        }
        const json& next = page["next_offset"];
        if (!next.is_number_unsigned() || next.get<uint64_t>() <= offset) return jobs;
        offset = next.get<uint64_t>();
    }
}

// One MP3 of download --all, to `path`; skipped when a file there has the size of the job's MP3.
Outcome save_done_job(const Api& api, const json& job, const std::string& path) {
    Outcome o{.file = text_of(job, "filename"), .job_id = text_of(job, "job_id"), .mp3 = path};
    Meter meter(std::filesystem::path(path).filename().string());
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(path, ec);
    if (!ec && job.value("mp3_size", json()).is_number_unsigned() && size == job["mp3_size"].get<uint64_t>()) {
        o.status = "skipped";
        meter.done("skipped: " + path + " is already there with the same size");
        return o;
    }
    Reply r = api.download("/jobs/" + o.job_id + "/mp3", path, download_progress(meter));
    if (r.status == 200 && r.error.empty()) {
        o.status = "downloaded";
        meter.done("saved " + path);
        return o;
    }
    meter.done("download failed");
    o.status = "error";
    o.error = r.error.empty() ? message_of(r) : r.error;
    o.exit = download_failure(api, r, "download " + o.job_id);
    o.mp3.clear();
    return o;
}

// download --all: every done job's MP3 into -o DIR (default "."), one after another, oldest first so that names
// shared by several jobs get the same " (2)" on every run.
int download_all(const Command& c, const Api& api) {
    if (!is_output_dir(c.output_dir)) return kUsage;
    auto listed = done_jobs(api);
    if (!listed) return fail(api, listed.error(), "download --all");
    std::vector<json> jobs(listed.value().rbegin(), listed.value().rend());
    std::vector<std::string> names;
    for (const auto& job : jobs) names.push_back(text_of(job, "filename"));
    std::vector<std::string> paths = download_paths(c.output_dir, names);
    if (jobs.empty() && !c.json) std::fprintf(stderr, "no finished jobs to download\n");
    int exit = kOk;
    json results = json::array();
    for (size_t i = 0; i < jobs.size(); ++i) {
        Outcome o = save_done_job(api, jobs[i], paths[i]);
        results.push_back(record(o));
        exit = std::max(exit, o.exit);
        if (o.exit == kUnauthorized || o.exit == kUnreachable) break;  // the next downloads would fail alike
    }
    if (c.json) std::cout << results.dump() << "\n";
    return exit;
}

// Why download --zip made no zip: no done jobs (404 nothing_to_zip), an MP3 gone meanwhile (another 404), or as
// other downloads say it.
int zip_failure(const Api& api, const Reply& r) {
    if (r.status == 404 && !r.file_error) {
        bool none = error_code(r) == "nothing_to_zip";
        std::fprintf(stderr, "mp3conv: download --zip: %s\n",
                     none ? "you have no finished jobs, so there is nothing to zip" : message_of(r).c_str());
        return kFailed;
    }
    return download_failure(api, r, "download --zip");
}

// download --zip: streamed into a temporary file beside where it goes, renamed when complete to -o FILE, or to the
// name the server gives it (in -o DIR, or here).
int download_zip(const Command& c, const Api& api) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool named = !c.output_dir.empty() && !fs::is_directory(c.output_dir, ec);
    const std::string dir = c.output_dir.empty() ? "." : c.output_dir;
    const std::string temporary =
        named ? c.output_dir + ".part" : dir + "/mp3converter-" + std::to_string(::getpid()) + ".zip.part";
    Meter meter(named ? fs::path(c.output_dir).filename().string() : "zip");
    Reply r = api.fetch_file("/jobs.zip?status=done", "application/zip", temporary, download_progress(meter));
    if (r.status != 200 || !r.error.empty()) {
        meter.done("download failed");
        return zip_failure(api, r);
    }
    std::string name = attachment_filename(r.header("content-disposition")).value_or("mp3converter.zip");
    std::string destination = named ? c.output_dir : dir + "/" + name;
    if (std::rename(temporary.c_str(), destination.c_str()) != 0) {
        std::remove(temporary.c_str());
        meter.done("download failed");
        std::fprintf(stderr, "mp3conv: download --zip: cannot rename %s to %s\n", temporary.c_str(),
                     destination.c_str());
        return kFailed;
    }
    meter.done("saved " + destination);
    if (c.json) std::cout << json{{"zip", destination}}.dump() << "\n";
    return kOk;
}

int download(const Command& c, const Api& api) {
    if (c.all) return download_all(c, api);
    if (c.zip) return download_zip(c, api);
    return download_one(c, api);
}

// The refusals of POST /jobs/{id}/retry in words; other answers as fail() says them.
int retry_refused(const Api& api, const Reply& r, const std::string& id) {
    std::string code = error_code(r);
    std::string why;
    if (r.status == 409 && code == "not_failed") {
        std::string status = text_of(json::parse(r.body, nullptr, false), "status");
        why = "the job is " + (status.empty() ? "not failed" : status) + "; only a failed job can be retried";
    } else if (r.status == 410 && code == "source_gone") {
        why =
            "the job's upload is no longer kept (the server deletes it a while after the failure); convert the "
            "file again";
    } else if (r.status == 404 && code == "job_not_found") {
        why = "no such job (deleted, or not yours)";
    } else {
        return fail(api, r, "retry " + id);
    }
    std::fprintf(stderr, "mp3conv: retry %s: %s\n", id.c_str(), why.c_str());
    return r.status == 404 ? kFailed : kRefused;
}

// retry: the failed job converted again (its options, or those given), followed and downloaded like convert does.
int retry(const Command& c, const Api& api) {
    const std::string& id = c.args[0];
    if (!is_output_dir(c.output_dir)) return kUsage;
    Reply r = api.post("/jobs/" + id + "/retry", retry_body(c.fields));
    if (r.status != 202) return retry_refused(api, r, id);
    std::string filename = text_of(json::parse(r.body, nullptr, false), "filename");
    Outcome o{.file = filename, .job_id = id};
    Meter meter(filename.empty() ? id : std::filesystem::path(filename).filename().string());
    follow_and_download(api, o, meter, mp3_path(c.output_dir, filename));
    if (c.json) std::cout << record(o).dump() << "\n";
    return o.exit;
}

int remove_job(const Command& c, const Api& api) {
    Reply r = api.remove("/jobs/" + c.args[0]);
    if (r.status != 200 && r.status != 204) return fail(api, r, "delete " + c.args[0]);
    if (c.json) {
        std::cout << (r.body.empty() ? json{{"job_id", c.args[0]}, {"deleted", true}}.dump() : r.body) << "\n";
    } else {
        std::fprintf(stderr, "deleted %s\n", c.args[0].c_str());
    }
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    auto parsed = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
    if (!parsed) {
        std::fprintf(stderr, "mp3conv: %s\n\n%s", parsed.error().c_str(), kUsageText);
        return kUsage;
    }
    Command c = parsed.value();
    if (c.name == "help") {
        std::fputs(kUsageText, stdout);
        return kOk;
    }
    std::string server = c.server;
    if (server.empty()) server = mp3c::config::Env().text(mp3c::client::settings::kServer);
    while (server.size() > 1 && server.back() == '/') server.pop_back();
    try {
        if (c.name == "login") return login(c, server);
        auto session = load_session(server);
        if (!session) {
            if (c.name == "logout") return kOk;  // nothing to end
            std::fprintf(stderr, "mp3conv: not logged in to %s: run `mp3conv login EMAIL` first\n", server.c_str());
            return kUnauthorized;
        }
        Api api(server, session->token);
        if (c.name == "logout") return logout(api, server);
        if (c.name == "convert") return convert(c, api);
        if (c.name == "jobs") return jobs(c, api);
        if (c.name == "status") return status(c, api);
        if (c.name == "download") return download(c, api);
        if (c.name == "retry") return retry(c, api);
        if (c.name == "delete") return remove_job(c, api);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mp3conv: %s\n", e.what());
        return kFailed;
    }
    return kUsage;
}
