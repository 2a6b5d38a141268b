#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "mp3c/config.hpp"

// Structured logging: one JSON object per line on stderr,
// {"time": RFC 3339 UTC, "level", "service", "message", ...fields}. A request's lines carry "request_id".
namespace mp3c::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

std::optional<Level> parse_level(std::string_view text);
// LOG_LEVEL (debug, info, warn, error; default info); a bad value is recorded as a problem of env.
Level level_from_env(config::Env& env);
void init(std::string service, Level min_level = Level::info);
// Replaces where lines go (stderr by default); for tests.
void set_sink(std::function<void(std::string_view line)> sink);
bool enabled(Level level);

void write(Level level, std::string_view message);
void write(Level level, std::string_view message, const nlohmann::json& fields);

inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }
inline void debug(std::string_view m, const nlohmann::json& f) { write(Level::debug, m, f); }
inline void info(std::string_view m, const nlohmann::json& f) { write(Level::info, m, f); }
inline void warn(std::string_view m, const nlohmann::json& f) { write(Level::warn, m, f); }
inline void error(std::string_view m, const nlohmann::json& f) { write(Level::error, m, f); }

// Formats one line (without the newline); exposed for tests.
std::string format_line(Level level, std::string_view service, std::string_view message, const nlohmann::json* fields);

}  // namespace mp3c::log
