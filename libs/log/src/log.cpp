#include "mp3c/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "mp3c/enum_names.hpp"
#include "mp3c/settings.hpp"

namespace mp3c::log {
namespace {

struct State {
    std::mutex mutex;
    std::string service = "mp3converter";
    std::function<void(std::string_view)> sink;
};

State& state() {
    static State s;
    return s;
}

std::atomic<int> g_min_level{static_cast<int>(Level::info)};

constexpr std::array<std::string_view, 4> kLevelNames = {"debug", "info", "warn", "error"};
static_assert(names_all(kLevelNames, Level::error));

const char* level_name(Level level) { return name_of(level, kLevelNames, "info").data(); }

std::string now_rfc3339() {
    auto now = std::chrono::system_clock::now();
    auto seconds = std::chrono::system_clock::to_time_t(now);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
    return buffer;
}

void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // nowhere left to report a failing log stream
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
}

}  // namespace

std::optional<Level> parse_level(std::string_view text) {
    if (text == "debug") return Level::debug;
    if (text == "info") return Level::info;
    if (text == "warn" || text == "warning") return Level::warn;
    if (text == "error") return Level::error;
    return std::nullopt;
}

Level level_from_env(config::Env& env) {
    auto text = env.text(settings::kLogLevel);
    if (auto parsed = parse_level(text)) return *parsed;
    env.problem("LOG_LEVEL", "'" + text + "' is not one of debug, info, warn, error");
    return Level::info;
}

void init(std::string service, Level min_level) {
    std::lock_guard lock(state().mutex);
    state().service = std::move(service);
    g_min_level = static_cast<int>(min_level);
}

void set_sink(std::function<void(std::string_view)> sink) {
    std::lock_guard lock(state().mutex);
    state().sink = std::move(sink);
}

bool enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed); }

std::string format_line(Level level, std::string_view service, std::string_view message, const nlohmann::json* fields) {
    nlohmann::ordered_json line;
    line["time"] = now_rfc3339();
    line["level"] = level_name(level);
    line["service"] = service;
    line["message"] = message;
    if (fields != nullptr && fields->is_object()) {
        for (const auto& [key, value] : fields->items()) {
            if (key == "time" || key == "level" || key == "service" || key == "message") {
                line["field_" + key] = value;  // never let a field overwrite the envelope
            } else {
                line[key] = value;
            }
        }
    }
    // Invalid UTF-8 (a client's bytes, say) is replaced rather than thrown on: logging never fails a request.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write(Level level, std::string_view message) { write(level, message, nlohmann::json()); }

void write(Level level, std::string_view message, const nlohmann::json& fields) {
    if (!enabled(level)) return;
    std::string service;
    {
        std::lock_guard lock(state().mutex);
        service = state().service;
    }
    std::string line = format_line(level, service, message, &fields);
    std::lock_guard lock(state().mutex);
    if (state().sink) {
        state().sink(line);
    } else {
        line.push_back('\n');
        write_all(STDERR_FILENO, line);
    }
}

}  // namespace mp3c::log
