#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
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
