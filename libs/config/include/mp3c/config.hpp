#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mp3c::config {

// Thrown by Env::check(); the message names every variable that was wrong and why, one per line.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

using Lookup = std::function<std::optional<std::string>(const std::string& name)>;
Lookup process_environment();

// "1500ms", "30s", "15m", "24h", "7d", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "1048576", "512KiB", "64MiB", "2GiB" (also k/M/G and kB/MB/GB, decimal).
std::optional<uint64_t> parse_bytes(std::string_view text);
// 1/0, true/false, yes/no, on/off (any case).
std::optional<bool> parse_bool(std::string_view text);

// One configuration variable. Every setting is declared once, in libs/config/settings.json: the build turns that file
// into these declarations (mp3c/settings.hpp, one namespace per group: mp3c::gateway::settings::kMaxUploadBytes) and
// docs/configuration.md's tables are generated from the same file (checked by configuration_doc_test), so the code,
// its defaults and the documentation cannot drift apart. Services read them through Env.
enum class Kind { text, secret, integer, number, port, boolean, duration, bytes };

struct Setting {
    std::string_view name;
    Kind kind = Kind::text;
    // The default, written as a user would set the variable ("2GiB", "24h", "8", "on"); empty for text and secrets
    // means empty. A default the code decides (one per service, or computed from other variables) is passed to the
    // accessor instead, and shown_default says in words what it is.
    std::string_view fallback;
    std::string_view help;  // sentences for the documentation
    double min = 0;         // integer and number: the range [min, max]; duration: the minimum in ms; bytes: the
    double max = 0;         //   range when max > 0
    bool required = false;  // no default: a service does not start without it
    std::string_view shown_default = {};
};

// The settings of one group (a library's or a service's), for tests that look at all of them.
struct SettingGroup {
    std::string_view name;
    std::span<const Setting> settings;
};

// The documentation of a setting's default and range, as docs/configuration.md shows them.
std::string describe_default(const Setting& setting);
std::string describe_range(const Setting& setting);

// Typed access to configuration variables. Each accessor returns the value (or the fallback) and records a problem
// when the variable is missing or malformed, so that check() can report all of them at once at start-up. An empty
// variable counts as unset.
class Env {
  public:
    explicit Env(Lookup lookup = process_environment());

    std::string string(const std::string& name, std::optional<std::string> fallback = std::nullopt);
    int64_t integer(const std::string& name, std::optional<int64_t> fallback, int64_t min, int64_t max);
    double number(const std::string& name, std::optional<double> fallback, double min, double max);  // "0.5", "2"
    uint16_t port(const std::string& name, std::optional<uint16_t> fallback);
    bool boolean(const std::string& name, bool fallback);
    std::chrono::milliseconds duration(const std::string& name, std::optional<std::chrono::milliseconds> fallback,
                                       std::chrono::milliseconds min = std::chrono::milliseconds(0));
    uint64_t bytes(const std::string& name, std::optional<uint64_t> fallback);
    // A secret from NAME or from the file named by NAME_FILE (as Kubernetes mounts secrets); one trailing newline of
    // the file is dropped. Setting both is an error. With no fallback the secret is required.
    std::string secret(const std::string& name, std::optional<std::string> fallback = std::nullopt,
                       size_t min_length = 0);

    // The same through a declaration: its name, its default (or the caller's, for one the code decides) and its range.
    // A declared default that does not parse is a programming error: std::logic_error.
    std::string text(const Setting& setting, std::optional<std::string> fallback = std::nullopt);
    int64_t integer(const Setting& setting, std::optional<int64_t> fallback = std::nullopt);
    double number(const Setting& setting);
    uint16_t port(const Setting& setting, std::optional<uint16_t> fallback = std::nullopt);
    bool boolean(const Setting& setting);
    std::chrono::milliseconds duration(const Setting& setting,
                                       std::optional<std::chrono::milliseconds> fallback = std::nullopt);
    uint64_t bytes(const Setting& setting, std::optional<uint64_t> fallback = std::nullopt);
    std::string secret(const Setting& setting, size_t min_length = 0);

    // Records a problem found by the caller's own validation of a variable.
    void problem(const std::string& name, const std::string& what);

    const std::vector<std::string>& problems() const { return problems_; }
    // Throws Error listing every problem recorded so far.
    void check() const;

  private:
    std::optional<std::string> get(const std::string& name) const;
    // A whole or decimal number within [min, max] (integer and number).
    template <class T>
    T ranged(const std::string& name, std::optional<T> fallback, T min, T max);

    Lookup lookup_;
    std::vector<std::string> problems_;
};

}  // namespace mp3c::config
