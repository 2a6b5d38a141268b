// mp3conv: the command-line client of mp3converter. See src/cli.cpp (kUsageText) for the commands and exit statuses.
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
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
#include "mp3c/strings.hpp"
#include "session.hpp"
#include "watch.hpp"

#ifndef MP3CONV_VERSION
#error "MP3CONV_VERSION is defined by tools/mp3conv/CMakeLists.txt (the project's version)"
#endif

namespace {

using namespace mp3c::client;
using nlohmann::json;

bool terminal() { return ::isatty(STDERR_FILENO) == 1; }

// The width of the terminal the progress is drawn on (80 when it cannot be told).
size_t terminal_columns() {
    winsize size{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
    return 80;
}

// Raised by Ctrl-C in convert, retry and watch: the transfer under way ends (Api) and the command says what goes on
// at the server. The handler is reset on delivery, so a second Ctrl-C ends mp3conv at once.
std::atomic<bool> interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void stop_on_ctrl_c() {
    struct sigaction action {};
    action.sa_handler = [](int) { interrupted.store(true); };
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
}

// Sleeps, but not past a Ctrl-C.
void pause_for(std::chrono::milliseconds time) {
    auto until = std::chrono::steady_clock::now() + time;
    while (!interrupted.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
            std::chrono::milliseconds(100),
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now())));
    }
}

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

// What an error answer says, on one line: its JSON message, a short plain text, else its status (an HTML page from a
// proxy is not for a terminal).
std::string message_of(const Reply& r) {
    auto j = json::parse(r.body, nullptr, false);
    std::string text = "HTTP " + std::to_string(r.status);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) {
        text = j["message"].get<std::string>();
    } else if (!r.body.empty() && r.body.size() < 300 && r.body[0] != '<') {
        text = r.body;
    }
    for (auto& ch : text) {
        if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
}

// The exit status and a message for a reply that is not what was wanted.
int fail(const Api& api, const Reply& r, const std::string& what) {
    if (r.interrupted) {
        std::fprintf(stderr, "mp3conv: %s: stopped\n", what.c_str());
        return kInterrupted;
    }
    if (r.file_error) {
        std::fprintf(stderr, "mp3conv: %s: %s\n", what.c_str(), r.error.c_str());
        return kFailed;
    }
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
    if (r.status == 502 || r.status == 503 || r.status == 504) {  // 502, 504: a proxy before a gateway that is down
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
        // Echo off before the prompt: switching it off flushes what was typed before (TCSAFLUSH), and after the
        // prompt that would throw away a password typed or pasted at once (the e2e test's pseudo-terminal did).
        termios saved{};
        tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        std::fprintf(stderr, "Password for %s: ", email.c_str());
        std::fflush(stderr);
        std::getline(std::cin, password);
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);  // keeps what is typed after the password
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

// Whether anything answers at the server's address (GET /healthz, a short timeout): kOk, or kUnreachable said in
// one line. Any answer under 500 will do (a server without /healthz is still there); a 5xx is a proxy whose gateway
// is down.
int check_reachable(const Api& api, const std::string& what) {
    Reply r = api.health();
    if (r.status == 0) {
        std::fprintf(stderr, "mp3conv: %s: cannot reach the server at %s: %s\n", what.c_str(), api.server().c_str(),
                     r.error.c_str());
        return kUnreachable;
    }
    if (r.status >= 500) {
        std::fprintf(stderr, "mp3conv: %s: the server at %s is unavailable (HTTP %ld); try again shortly\n",
                     what.c_str(), api.server().c_str(), r.status);
        return kUnreachable;
    }
    return kOk;
}

int login(const Command& c, const std::string& server) {
    const std::string& email = c.args[0];
    Api api(server, "");
    if (int unreachable = check_reachable(api, "login"); unreachable != kOk) return unreachable;  // before the password
    std::string password = read_password(email);
    if (password.empty()) {
        std::fprintf(stderr, "mp3conv: no password given\n");
        return kUsage;
    }
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
            char rest[256];
            std::snprintf(rest, sizeof rest, "%-10s %s %s", stage.c_str(), progress_bar(fraction).c_str(),
                          extra.c_str());
            std::fprintf(stderr, "\r\033[K%s", fit_progress_line(label_, rest, terminal_columns()).c_str());
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
    // done, failed, cancelled, expired, error, interrupted; download --all: downloaded, skipped, error
    std::string status;
    std::string mp3;
    std::string error;
    int exit = kOk;
    bool retry_later = false;  // the failure may pass (no answer, a busy or unavailable server): watch tries again
};

// Whether a reply's failure may pass if the request is made again later.
bool transient(const Reply& r) { return !r.file_error && (r.status == 0 || r.status == 429 || r.status >= 500); }

// Follows a job's event stream until it ends in a final state. A stream the gateway ends (its lifetime, a restart)
// is resumed at once from the last event; a refused one (429: too many open streams) after its Retry-After; 30
// failures in a row give up. Ctrl-C ends it with the status "interrupted".
json follow(const Api& api, const std::string& id, Meter& meter) {
    const json stopped = {{"status", "interrupted"}};
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
        if (r.interrupted || interrupted.load()) return stopped;
        if (r.status == 200 && heard) continue;  // ended by the gateway after its lifetime: resume
        ++failures;
        if (r.status == 429) {
            int wait = std::clamp(std::atoi(r.header("retry-after").c_str()), 1, 60);
            pause_for(std::chrono::seconds(wait));
            continue;
        }
        if (r.status != 0 && r.status != 200) {
            last = json{{"status", "error"}, {"http_status", r.status}, {"error", message_of(r)}};
            return last;
        }
        pause_for(std::chrono::seconds(2));  // the connection broke (a gateway restart)
    }
    if (interrupted.load()) return stopped;
    return json{{"status", "error"}, {"error", "lost the job's event stream"}};
}

// Where an MP3 goes: `path`, or without --force a free name when something is there already, said on the meter.
std::string destination(const std::string& path, bool force, Meter& meter) {
    Placement place = place_download(path, std::nullopt, force, real_size_on_disk());
    if (place.path != path) {
        meter.done(path + " is there already: saving as " + place.path + " (--force replaces it)");
    }
    return place.path;
}

// A split job's parts (chapters=split) into the folder named after its MP3: "talk.mp3" -> "talk/01 - Intro.mp3".
// A part already there with its size is skipped (so download --all can run again). Returns kOk, or the exit status of
// the first part that could not be saved (the others are still tried).
int download_parts(const Api& api, const json& job, const std::string& mp3, bool force) {
    const json parts = job.value("parts", json::array());
    if (!parts.is_array() || parts.empty()) return kOk;
    std::filesystem::path folder = std::filesystem::path(mp3).replace_extension();
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) {
        std::fprintf(stderr, "mp3conv: cannot make the folder %s for the parts: %s\n", folder.c_str(),
                     ec.message().c_str());
        return kFailed;
    }
    // The server names a part "<the MP3's name> - NN - title.mp3"; in its own folder "NN - title.mp3" says enough.
    std::string prefix = std::filesystem::path(mp3).stem().string() + " - ";
    int exit = kOk;
    for (const json& part : parts) {
        std::string name = text_of(part, "filename");
        if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
        name = std::filesystem::path(name).filename().string();  // never a path of the server's choosing
        if (name.empty() || name == "." || name == "..")
            name = "part " + std::to_string(part.value("index", 0)) + ".mp3";
        Meter meter(name);
        std::string wanted = (folder / name).string();
        Placement place = place_download(wanted, part.value("size", uint64_t{0}), force, real_size_on_disk());
        if (place.already_there) {
            meter.done("skipped: " + wanted + " is already there with the same size");
            continue;
        }
        if (place.path != wanted) meter.done(wanted + " is there already: saving as " + place.path);
        const std::string& path = place.path;
        Reply r = api.download(text_of(part, "download_url"), path, download_progress(meter));
        if (r.status != 200 || !r.error.empty()) {
            meter.done("download failed");
            if (exit == kOk) exit = download_failure(api, r, "download " + name);
            continue;
        }
        meter.done("saved " + path);
    }
    return exit;
}

// Follows the job o.job_id to its end and downloads its MP3 to `mp3` (or a free name beside it): what convert does
// after an upload, retry after its request, and watch for each file.
void follow_and_download(const Api& api, Outcome& o, Meter& meter, const std::string& mp3, bool force) {
    json final_state = follow(api, o.job_id, meter);
    o.status = final_state.value("status", "error");
    if (o.status == "interrupted") {
        meter.done("stopped waiting: the conversion goes on; follow it with: mp3conv status " + o.job_id);
        o.exit = kInterrupted;
        return;
    }
    if (o.status != "done") {
        o.error = text_of(final_state, "error");
        o.exit = kFailed;
        long http_status = final_state.value("http_status", 0L);
        if (o.status == "error" && (http_status == 401 || http_status == 403)) {
            o.error = "not logged in, or the session expired: run `mp3conv login EMAIL`";
            o.exit = kUnauthorized;
        }
        meter.done(o.status + (o.error.empty() ? "" : ": " + o.error));
        // The stream was lost (no answer), or the server was unavailable: the job may still end well.
        o.retry_later = o.status == "error" && (http_status == 0 || http_status == 429 || http_status >= 500);
        return;
    }
    o.mp3 = destination(mp3, force, meter);
    Reply d = api.download("/jobs/" + o.job_id + "/mp3", o.mp3, download_progress(meter));
    if (d.interrupted) {
        meter.done("stopped: the MP3 is ready; download it with: mp3conv download " + o.job_id);
        o.status = "interrupted";
        o.exit = kInterrupted;
        o.mp3.clear();
        return;
    }
    if (d.status != 200 || !d.error.empty()) {
        meter.done("download failed");
        o.status = "error";
        o.error = d.error.empty() ? message_of(d) : d.error;
        o.exit = download_failure(api, d, "download " + o.job_id);
        o.retry_later = transient(d);
        o.mp3.clear();
        return;
    }
    meter.done("done -> " + o.mp3 + " (" + human_bytes(final_state.value("mp3_size", 0ull)) + ")");
    if (int parts = download_parts(api, final_state, o.mp3, force); parts != kOk) o.exit = parts;
}

// Uploads one file: the outcome carries the job id when the server accepted it (said on the meter).
Outcome upload_one(const Api& api, const std::string& file, const std::map<std::string, std::string>& fields,
                   Meter& meter) {
    Outcome o{.file = file};
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
        o.status = "error";
        o.error = "not a readable file";
        o.exit = kFailed;
        std::fprintf(stderr, "mp3conv: %s: not a readable file\n", file.c_str());
        return o;
    }
    auto started = std::chrono::steady_clock::now();
    Reply r = api.upload(file, fields, [&](uint64_t done, uint64_t total) {
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::string rate = seconds > 0.2 ? human_bytes(static_cast<uint64_t>(done / seconds)) + "/s" : "";
        meter.show("uploading", total > 0 ? static_cast<double>(done) / total : 0, rate);
        return true;
    });
    if (r.interrupted) {
        meter.done("upload stopped: the file was not converted");
        o.status = "interrupted";
        o.exit = kInterrupted;
        return o;
    }
    if (r.status != 202) {
        meter.done("upload failed");
        o.status = "error";
        o.exit = fail(api, r, "upload " + file);
        o.error = r.error.empty() ? message_of(r) : r.error;
        o.retry_later = transient(r);
        return o;
    }
    o.job_id = text_of(json::parse(r.body, nullptr, false), "job_id");
    if (o.job_id.empty()) {
        meter.done("upload failed");
        std::fprintf(stderr, "mp3conv: upload %s: the server's answer holds no job id\n", file.c_str());
        o.status = "error";
        o.error = "no job id in the answer";
        o.exit = kFailed;
        return o;
    }
    meter.done("uploaded, job " + o.job_id);
    return o;
}

Outcome convert_one(const Api& api, const std::string& file, const Command& c) {
    Meter meter(std::filesystem::path(file).filename().string());
    Outcome o = upload_one(api, file, c.fields, meter);
    if (o.job_id.empty()) return o;
    follow_and_download(api, o, meter, output_path(file, c.output_dir), c.force);
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
        // The next files would fail alike; after Ctrl-C the user wants to stop.
        if (o.exit == kUnauthorized || o.exit == kUnreachable || o.exit == kInterrupted) break;
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

// The caller's jobs (`query`: "status=done&", or "" for all), newest first, read page by page, each once (a job
// finishing meanwhile shifts the pages); or the answer that refused a page.
mp3c::Result<std::vector<json>, Reply> list_jobs(const Api& api, const std::string& query) {
    std::vector<json> jobs;
    std::set<std::string> seen;
    for (uint64_t offset = 0;;) {
        Reply r = api.get("/jobs?" + query + "limit=100&offset=" + std::to_string(offset));
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

// The full id of the job a command names: as given, or the one job of the caller's whose id starts with it (as git
// does); else the exit status, said: 2 for a prefix of several jobs (listed), 1 for none.
mp3c::Result<std::string, Exit> resolve_job(const Api& api, const std::string& id, const std::string& what) {
    if (is_full_job_id(id)) return id;
    auto listed = list_jobs(api, "");
    if (!listed) return static_cast<Exit>(fail(api, listed.error(), what));
    std::vector<std::string> ids;
    for (const auto& job : listed.value()) ids.push_back(text_of(job, "job_id"));
    auto found = resolve_job_prefix(id, ids);
    if (found) return found.value();
    const auto& candidates = found.error().candidates;
    if (candidates.empty()) {
        std::fprintf(stderr, "mp3conv: %s: none of your jobs has an id starting with %s\n", what.c_str(), id.c_str());
        return kFailed;
    }
    std::fprintf(stderr, "mp3conv: %s: %zu of your jobs have an id starting with %s; give more of it:\n", what.c_str(),
                 candidates.size(), id.c_str());
    for (const auto& job : listed.value()) {
        std::string job_id = text_of(job, "job_id");
        if (std::find(candidates.begin(), candidates.end(), job_id) == candidates.end()) continue;
        std::fprintf(stderr, "  %s  %-10s %s\n", job_id.c_str(), text_of(job, "status").c_str(),
                     text_of(job, "filename").c_str());
    }
    return kUsage;
}

int status(const Command& c, const Api& api) {
    auto resolved = resolve_job(api, c.args[0], "status " + c.args[0]);
    if (!resolved) return resolved.error();
    const std::string& id = resolved.value();
    Reply r = api.get("/jobs/" + id);
    if (r.status != 200) return fail(api, r, "status " + id);
    auto j = json::parse(r.body);
    if (c.json) {
        std::cout << j.dump() << "\n";
        return kOk;
    }
    std::printf("job       %s\nfile      %s\nstatus    %s (%d%%)\n", j.value("job_id", "").c_str(),
                j.value("filename", "").c_str(), j.value("status", "").c_str(), j.value("progress", 0));
    if (j["error"].is_string()) std::printf("error     %s\n", j["error"].get<std::string>().c_str());
    if (j["mp3_size"].is_number()) std::printf("mp3       %s\n", human_bytes(j["mp3_size"].get<uint64_t>()).c_str());
    if (j["duration_seconds"].is_number()) {
        std::printf("duration  %s\n", mp3c::clock_duration(j["duration_seconds"].get<double>()).c_str());
    }
    if (j.contains("parts") && j["parts"].is_array() && !j["parts"].empty()) {
        std::printf("parts     %zu, one per chapter (mp3conv download saves them too)\n", j["parts"].size());
        for (const json& part : j["parts"]) {
            std::printf("  %3d  %-9s %s\n", part.value("index", 0),
                        mp3c::clock_duration(part.value("duration_seconds", 0.0)).c_str(),
                        text_of(part, "title").c_str());
        }
    }
    std::string expires = text_of(j, "expires_at");
    if (!expires.empty()) std::printf("expires   %s UTC\n", utc_minutes(expires).c_str());
    if (j.value("retryable", json(false)) == json(true)) std::printf("retry     mp3conv retry %s\n", id.c_str());
    return j.value("status", "") == "failed" ? kFailed : kOk;
}

int download_one(const Command& c, const Api& api) {
    auto resolved = resolve_job(api, c.args[0], "download " + c.args[0]);
    if (!resolved) return resolved.error();
    const std::string& id = resolved.value();
    if (!is_output_dir(c.output_dir)) return kUsage;
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
    std::string wanted = mp3_path(c.output_dir, text_of(j, "filename"));
    Meter meter(std::filesystem::path(wanted).filename().string());
    std::string path = destination(wanted, c.force, meter);
    Reply r = api.download("/jobs/" + id + "/mp3", path, download_progress(meter));
    if (r.status != 200 || !r.error.empty()) {
        meter.done("download failed");
        return download_failure(api, r, "download");
    }
    meter.done("saved " + path);
    int parts = download_parts(api, j, path, c.force);
    if (c.json) std::cout << json{{"job_id", id}, {"mp3", path}}.dump() << "\n";
    return parts;
}

// One MP3 of download --all: skipped when it is there already (a file of its size where it would go).
Outcome save_done_job(const Api& api, const json& job, const Placement& place, const std::string& planned) {
    Outcome o{.file = text_of(job, "filename"), .job_id = text_of(job, "job_id"), .mp3 = place.path};
    Meter meter(std::filesystem::path(place.path).filename().string());
    if (place.already_there) {
        o.status = "skipped";
        meter.done("skipped: " + place.path + " is already there with the same size");
        if (int parts = download_parts(api, job, place.path, false); parts != kOk) o.exit = parts;
        return o;
    }
    if (place.path != planned) {
        meter.done(planned + " is there already: saving as " + place.path + " (--force replaces it)");
    }
    Reply r = api.download("/jobs/" + o.job_id + "/mp3", place.path, download_progress(meter));
    if (r.status == 200 && r.error.empty()) {
        o.status = "downloaded";
        meter.done("saved " + place.path);
        if (int parts = download_parts(api, job, place.path, false); parts != kOk) o.exit = parts;
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
// shared by several jobs get the same " (2)" on every run, as in the server's zip.
int download_all(const Command& c, const Api& api) {
    if (!is_output_dir(c.output_dir)) return kUsage;
    auto listed = list_jobs(api, "status=done&");
    if (!listed) return fail(api, listed.error(), "download --all");
    std::vector<json> jobs(listed.value().rbegin(), listed.value().rend());
    if (jobs.empty() && !c.json) std::fprintf(stderr, "no finished jobs to download\n");
    const SizeOnDisk on_disk = real_size_on_disk();
    const SizeOnDisk nothing = [](const std::string&) { return std::optional<uint64_t>(); };
    std::set<std::string> taken;  // the names given to earlier jobs of this run
    int exit = kOk;
    json results = json::array();
    for (const auto& job : jobs) {
        std::string wanted = mp3_path(c.output_dir, text_of(job, "filename"));
        std::optional<uint64_t> size;
        if (job.value("mp3_size", json()).is_number_unsigned()) size = job["mp3_size"].get<uint64_t>();
        // Where it goes in an empty folder (a shared name numbered), and where it goes here.
        std::string planned = place_download(wanted, std::nullopt, false, nothing, taken).path;
        Placement place = place_download(wanted, size, c.force, on_disk, taken);
        taken.insert(place.path);
        Outcome o = save_done_job(api, job, place, planned);
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
    auto resolved = resolve_job(api, c.args[0], "retry " + c.args[0]);
    if (!resolved) return resolved.error();
    const std::string& id = resolved.value();
    if (!is_output_dir(c.output_dir)) return kUsage;
    Reply r = api.post("/jobs/" + id + "/retry", retry_body(c.fields));
    if (r.status != 202) return retry_refused(api, r, id);
    std::string filename = text_of(json::parse(r.body, nullptr, false), "filename");
    Outcome o{.file = filename, .job_id = id};
    Meter meter(filename.empty() ? id : std::filesystem::path(filename).filename().string());
    follow_and_download(api, o, meter, mp3_path(c.output_dir, filename), c.force);
    if (c.json) std::cout << record(o).dump() << "\n";
    return o.exit;
}

int remove_job(const Command& c, const Api& api) {
    auto resolved = resolve_job(api, c.args[0], "delete " + c.args[0]);
    if (!resolved) return resolved.error();
    const std::string& id = resolved.value();
    Reply r = api.remove("/jobs/" + id);
    if (r.status != 200 && r.status != 204) return fail(api, r, "delete " + id);
    if (c.json) {
        std::cout << (r.body.empty() ? json{{"job_id", id}, {"deleted", true}}.dump() : r.body) << "\n";
    } else {
        std::fprintf(stderr, "deleted %s\n", id.c_str());
    }
    return kOk;
}

int whoami(const Command& c, const Api& api, const Session& session) {
    Reply r = api.get("/account");
    if (r.status != 200) return fail(api, r, "whoami");
    auto j = json::parse(r.body, nullptr, false);
    if (c.json) {
        std::cout << j.dump() << "\n";
        return kOk;
    }
    std::printf("server       %s\n%s", api.server().c_str(), account_text(j).c_str());
    if (!session.expires_at.empty())
        std::printf("session      until %s UTC\n", utc_minutes(session.expires_at).c_str());
    return kOk;
}

// mails: the choice of job e-mails, shown or changed.
int mails(const Command& c, const Api& api) {
    Reply r = c.args.empty() ? api.get("/account/preferences")
                             : api.patch("/account/preferences", json{{"job_mails", c.args[0]}}.dump());
    if (r.status != 200) return fail(api, r, "mails");
    auto j = json::parse(r.body, nullptr, false);
    if (c.json) {
        std::cout << j.dump() << "\n";
        return kOk;
    }
    const std::string choice = j.is_object() ? j.value("job_mails", "") : "";
    const char* words = choice == "each"      ? "one e-mail per finished or failed file"
                        : choice == "summary" ? "one summary e-mail per batch of uploads"
                        : choice == "off"     ? "no e-mails about your files"
                                              : "unknown";
    std::printf("%s%s (%s)\n", c.args.empty() ? "" : "now: ", words, choice.c_str());
    return kOk;
}

// watch: a look at the directory every kWatchInterval; after a failure that may pass (no answer, a busy server),
// kWatchBackoff before trying again.
constexpr std::chrono::seconds kWatchInterval{2};
constexpr std::chrono::seconds kWatchBackoff{30};

// What watch works with: the command, the directory, where the MP3s go, and what it did so far.
struct Watch {
    const Command& c;
    const Api& api;
    std::string dir;
    std::string out;
    WatchState state;

    void remember() const { save_watch_state(dir, state); }  // throws: a watch that forgets would convert again
};

// A recorded upload followed to its end and its MP3 downloaded into OUT; the record says what came of it. Returns
// kOk to go on, kUnreachable to try again later, or the exit status that ends the watch.
int finish_watched(Watch& w, const std::string& name) {
    WatchRecord& r = w.state[name];
    Outcome o{.file = name, .job_id = r.job_id};
    Meter meter(name);
    follow_and_download(w.api, o, meter, output_path(w.dir + "/" + name, w.out), w.c.force);
    if (o.exit == kInterrupted || o.exit == kUnauthorized) return o.exit;  // the record stays "uploaded"
    if (o.retry_later) return kUnreachable;
    r.status = o.status == "done" ? "done" : "failed";
    r.mp3 = o.mp3;
    r.error = o.status == "done" ? "" : (o.error.empty() ? o.status : o.error);
    w.remember();
    if (w.c.json) std::cout << record(o).dump() << std::endl;
    return kOk;
}

// One new file of the watched directory: uploaded, recorded, followed and downloaded.
int watch_one(Watch& w, const WatchedFile& f) {
    Meter meter(f.name);
    Outcome o = upload_one(w.api, w.dir + "/" + f.name, w.c.fields, meter);
    if (o.exit == kInterrupted || o.exit == kUnauthorized) return o.exit;
    if (o.retry_later) return kUnreachable;  // not recorded: taken again at a later look
    if (o.job_id.empty()) {  // refused for good (too large, not allowed), or not readable: not tried again
        w.state[f.name] = {.size = f.size, .mtime_ns = f.mtime_ns, .status = "refused", .error = o.error};
        w.remember();
        if (w.c.json) std::cout << record(o).dump() << std::endl;
        return kOk;
    }
    w.state[f.name] = {.size = f.size, .mtime_ns = f.mtime_ns, .job_id = o.job_id, .status = "uploaded"};
    w.remember();
    return finish_watched(w, f.name);
}

// watch DIR: converts each file that comes into DIR, once, until Ctrl-C. Ends with 0 when stopped between files,
// 130 when a file was under way (a restart follows its job again), or what ends it otherwise (4: not logged in).
int watch(const Command& c, const Api& api) {
    const std::string dir = c.args[0];
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        std::fprintf(stderr, "mp3conv: watch: %s is not a directory\n", dir.c_str());
        return kUsage;
    }
    const std::string out = c.output_dir.empty() ? dir : c.output_dir;
    if (!is_output_dir(out)) return kUsage;
    auto loaded = load_watch_state(dir);
    if (!loaded) {
        std::fprintf(stderr, "mp3conv: watch: %s; move it away to start over (files there then are left alone)\n",
                     loaded.error().c_str());
        return kFailed;
    }
    Watch w{.c = c, .api = api, .dir = dir, .out = out, .state = loaded.value().value_or(WatchState{})};
    std::vector<WatchedFile> before = list_directory(dir);
    if (!loaded.value()) {  // the first start: what is there already is not new
        size_t left = 0;
        for (const auto& f : before) {
            if (watch_skips(f.name)) continue;
            w.state[f.name] = {.size = f.size, .mtime_ns = f.mtime_ns, .status = "existing"};
            ++left;
        }
        w.remember();
        if (left > 0) {
            std::fprintf(stderr, "mp3conv: watch: %zu file%s already in %s left alone (mp3conv convert takes them)\n",
                         left, left == 1 ? "" : "s", dir.c_str());
        }
    }
    std::fprintf(stderr, "watching %s for new files (MP3s into %s); Ctrl-C stops\n", dir.c_str(), out.c_str());
    bool wait_longer = false;
    for (;;) {
        pause_for(wait_longer ? kWatchBackoff : kWatchInterval);
        if (interrupted.load()) break;
        wait_longer = false;
        int exit = kOk;
        // First the uploads not followed to their end (a restart, a lost connection), then the new files.
        std::vector<std::string> pending;
        for (const auto& [name, r] : w.state) {
            if (r.status == "uploaded") pending.push_back(name);
        }
        for (const auto& name : pending) {
            if ((exit = finish_watched(w, name)) != kOk) break;
        }
        if (exit == kOk) {
            std::vector<WatchedFile> now = list_directory(dir);
            for (const auto& f : files_to_convert(before, now, w.state)) {
                if ((exit = watch_one(w, f)) != kOk) break;
            }
            before = std::move(now);
        }
        if (exit == kInterrupted) {
            std::fprintf(stderr, "stopped; a restart of watch picks up where it left off\n");
            return kInterrupted;
        }
        if (exit == kUnreachable) {
            std::fprintf(stderr, "mp3conv: watch: trying again in %lld s\n",
                         static_cast<long long>(kWatchBackoff.count()));
            wait_longer = true;
        } else if (exit != kOk) {
            return exit;
        }
    }
    std::fprintf(stderr, "stopped watching %s\n", dir.c_str());
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    auto parsed = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
    if (!parsed) {
        std::fputs(usage_error_text(parsed.error()).c_str(), stderr);
        return kUsage;
    }
    Command c = parsed.value();
    if (c.name == "help") {
        std::fputs(kUsageText, stdout);
        return kOk;
    }
    if (c.name == "version") {
        std::printf("mp3conv %s\n", MP3CONV_VERSION);
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
            // No session for this server: a mistyped or stopped server says so, not "log in".
            if (int unreachable = check_reachable(Api(server, ""), c.name); unreachable != kOk) return unreachable;
            std::fprintf(stderr, "mp3conv: not logged in to %s: run `mp3conv login EMAIL` first\n", server.c_str());
            return kUnauthorized;
        }
        // The long commands say what goes on at the server when stopped; the others end at once, as usual.
        if (c.name == "convert" || c.name == "retry" || c.name == "watch") stop_on_ctrl_c();
        Api api(server, session->token, &interrupted);
        if (c.name == "logout") return logout(api, server);
        if (c.name == "whoami") return whoami(c, api, *session);
        if (c.name == "mails") return mails(c, api);
        if (c.name == "convert") return convert(c, api);
        if (c.name == "watch") return watch(c, api);
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
