// mp3conv: the command-line client of mp3converter. See src/cli.cpp (kUsage) for the commands and exit statuses.
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "api.hpp"
#include "cli.hpp"
#include "mp3c/settings.hpp"
#include "session.hpp"

namespace {

using namespace mp3c::client;
using nlohmann::json;

bool terminal() { return ::isatty(STDERR_FILENO) == 1; }

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

struct Outcome {
    std::string file;
    std::string job_id;
    std::string status;  // done, failed, cancelled, error
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
                return !(status == "done" || status == "failed" || status == "cancelled");
            },
            resume);
        std::string status = last.is_object() ? last.value("status", "") : "";
        if (status == "done" || status == "failed" || status == "cancelled") return last;
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
    json final_state = follow(api, o.job_id, meter);
    o.status = final_state.value("status", "error");
    if (o.status != "done") {
        o.error = final_state.value("error", nlohmann::json("")).is_string() ? final_state.value("error", "") : "";
        meter.done(o.status + (o.error.empty() ? "" : ": " + o.error));
        o.exit = kFailed;
        return o;
    }
    o.mp3 = output_path(file, c.output_dir);
    Reply d = api.download("/jobs/" + o.job_id + "/mp3", o.mp3, [&](uint64_t done, uint64_t total) {
        meter.show("download", total > 0 ? static_cast<double>(done) / total : 0);
        return true;
    });
    if (d.status != 200 || !d.error.empty()) {
        meter.done("download failed");
        o.status = "error";
        o.error = d.error.empty() ? message_of(d) : d.error;
        o.exit = d.status == 0 || d.status == 200 ? kFailed : fail(api, d, "download");
        o.mp3.clear();
        return o;
    }
    meter.done("done -> " + o.mp3 + " (" + human_bytes(final_state.value("mp3_size", 0ull)) + ")");
    return o;
}

int convert(const Command& c, const Api& api) {
    if (!c.output_dir.empty() && !std::filesystem::is_directory(c.output_dir)) {
        std::fprintf(stderr, "mp3conv: %s is not a directory\n", c.output_dir.c_str());
        return kUsage;
    }
    int exit = kOk;
    json results = json::array();
    for (const auto& file : c.args) {
        Outcome o = convert_one(api, file, c);
        results.push_back({{"file", o.file},
                           {"job_id", o.job_id.empty() ? json(nullptr) : json(o.job_id)},
                           {"status", o.status},
                           {"mp3", o.mp3.empty() ? json(nullptr) : json(o.mp3)},
                           {"error", o.error.empty() ? json(nullptr) : json(o.error)}});
        exit = std::max(exit, o.exit);
        if (o.exit == kUnauthorized || o.exit == kUnreachable) break;  // the next files would fail alike
    }
    if (c.json) std::cout << results.dump() << "\n";
    return exit;
}

int jobs(const Command& c, const Api& api) {
    Reply r = api.get("/jobs?limit=100");
    if (r.status != 200) return fail(api, r, "jobs");
    auto j = json::parse(r.body);
    if (c.json) {
        std::cout << j["jobs"].dump() << "\n";
        return kOk;
    }
    std::printf("%-24s  %-10s  %4s  %-20s  %s\n", "JOB", "STATUS", "%", "CREATED", "FILE");
    for (const auto& job : j["jobs"]) {
        std::string created = job.value("created_at", "").substr(0, 19);  // 2026-11-28T09:14:02
        if (created.size() > 10) created[10] = ' ';
        std::printf("%-24s  %-10s  %4d  %-20s  %s\n", job.value("job_id", "").c_str(), job.value("status", "").c_str(),
                    job.value("progress", 0), created.c_str(), job.value("filename", "").c_str());
    }
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
    return j.value("status", "") == "failed" ? kFailed : kOk;
}

int download(const Command& c, const Api& api) {
    Reply info = api.get("/jobs/" + c.args[0]);
    if (info.status != 200) return fail(api, info, "download " + c.args[0]);
    auto j = json::parse(info.body);
    if (j.value("status", "") != "done") {
        std::fprintf(stderr, "mp3conv: download: the job is %s, not done\n", j.value("status", "").c_str());
        return kFailed;
    }
    std::string name = std::filesystem::path(j.value("filename", "job")).filename().string();
    std::string path = output_path((c.output_dir.empty() ? std::string(".") : c.output_dir) + "/" + name, "");
    Meter meter(name);
    Reply r = api.download("/jobs/" + c.args[0] + "/mp3", path, [&](uint64_t done, uint64_t total) {
        meter.show("download", total > 0 ? static_cast<double>(done) / total : 0);
        return true;
    });
    if (r.status != 200 || !r.error.empty()) {
        if (!r.error.empty() && r.status == 200) {
            std::fprintf(stderr, "mp3conv: download: %s\n", r.error.c_str());
            return kFailed;
        }
        return fail(api, r, "download");
    }
    meter.done("saved " + path);
    if (c.json) std::cout << json{{"job_id", c.args[0]}, {"mp3", path}}.dump() << "\n";
    return kOk;
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
        if (c.name == "delete") return remove_job(c, api);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mp3conv: %s\n", e.what());
        return kFailed;
    }
    return kUsage;
}
