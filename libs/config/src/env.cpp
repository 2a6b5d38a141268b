#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <type_traits>

#include "mp3c/config.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::config {

Lookup process_environment() {
    return [](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
    };
}

namespace {

std::optional<uint64_t> parse_unsigned(std::string_view text) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

// Splits "15m" into (15, "m").
std::pair<std::string_view, std::string_view> number_and_unit(std::string_view text) {
    size_t i = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return {text.substr(0, i), trim(text.substr(i))};
}

std::optional<uint64_t> checked_multiply(uint64_t a, uint64_t b) {
    uint64_t out;
    if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
    return out;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    auto [digits, unit] = number_and_unit(trim(text));
    auto number = parse_unsigned(digits);
    if (!number) return std::nullopt;
    uint64_t factor;
    if (unit.empty() || unit == "s") {
        factor = 1000;
    } else if (unit == "ms") {
        factor = 1;
    } else if (unit == "m") {
        factor = 60 * 1000;
    } else if (unit == "h") {
        factor = 3600 * 1000;
    } else if (unit == "d") {
        factor = 24 * 3600 * 1000;
    } else {
        return std::nullopt;
    }
    auto ms = checked_multiply(*number, factor);
    if (!ms || *ms > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return std::chrono::milliseconds(static_cast<int64_t>(*ms));
}

std::optional<uint64_t> parse_bytes(std::string_view text) {
    auto [digits, unit] = number_and_unit(trim(text));
    auto number = parse_unsigned(digits);
    if (!number) return std::nullopt;
    struct Unit {
        std::string_view name;
        uint64_t factor;
    };
    static constexpr Unit kUnits[] = {{"", 1},
                                      {"B", 1},
                                      {"k", 1000},
                                      {"kB", 1000},
                                      {"KiB", 1ull << 10},
                                      {"M", 1000000},
                                      {"MB", 1000000},
                                      {"MiB", 1ull << 20},
                                      {"G", 1000000000},
                                      {"GB", 1000000000},
                                      {"GiB", 1ull << 30},
                                      {"TiB", 1ull << 40}};
    for (const auto& u : kUnits) {
        if (u.name == unit) return checked_multiply(*number, u.factor);
    }
    return std::nullopt;
}

std::optional<bool> parse_bool(std::string_view text) {
    text = trim(text);
    for (auto yes : {"1", "true", "yes", "on"})
        if (iequals(text, yes)) return true;
    for (auto no : {"0", "false", "no", "off"})
        if (iequals(text, no)) return false;
    return std::nullopt;
}

Env::Env(Lookup lookup) : lookup_(std::move(lookup)) {}

std::optional<std::string> Env::get(const std::string& name) const {
    auto value = lookup_(name);
    if (value && value->empty()) return std::nullopt;
    return value;
}

namespace {
constexpr const char* kPlaceholderProblem =
    "holds a placeholder from the example ('change-me'): set a secret of your own (openssl rand -hex 32)";

bool contains_placeholder(std::string_view value) {
    return to_lower_ascii(value).find("change-me") != std::string::npos;
}
}  // namespace

void Env::problem(const std::string& name, const std::string& what) { problems_.push_back(name + ": " + what); }

std::string Env::string(const std::string& name, std::optional<std::string> fallback) {
    if (auto value = get(name)) {
        // A text can carry a credential too (STORAGE_URL's password).
        if (contains_placeholder(*value)) problem(name, kPlaceholderProblem);
        return *value;
    }
    if (!fallback) problem(name, "is required but not set");
    return fallback.value_or("");
}

template <class T>
T Env::ranged(const std::string& name, std::optional<T> fallback, T min, T max) {
    auto value = get(name);
    if (!value) {
        if (!fallback) problem(name, "is required but not set");
        return fallback.value_or(min);
    }
    T parsed{};
    std::string_view text = trim(*value);
    std::from_chars_result read{};
    if constexpr (std::is_integral_v<T>) {
        read = std::from_chars(text.data(), text.data() + text.size(), parsed);
    } else {
        read = std::from_chars(text.data(), text.data() + text.size(), parsed, std::chars_format::fixed);
    }
    if (read.ec != std::errc() || read.ptr != text.data() + text.size() || text.empty()) {
        problem(name, "'" + *value + (std::is_integral_v<T> ? "' is not a whole number" : "' is not a number"));
    } else if (!(parsed >= min && parsed <= max)) {
        std::ostringstream range;
        range << "'" << *value << "' is out of range (" << min << " to " << max << ")";
        problem(name, range.str());
    } else {
        return parsed;
    }
    return fallback.value_or(min);
}

int64_t Env::integer(const std::string& name, std::optional<int64_t> fallback, int64_t min, int64_t max) {
    return ranged<int64_t>(name, fallback, min, max);
}

double Env::number(const std::string& name, std::optional<double> fallback, double min, double max) {
    return ranged<double>(name, fallback, min, max);
}

uint16_t Env::port(const std::string& name, std::optional<uint16_t> fallback) {
    return static_cast<uint16_t>(integer(name, fallback, 0, 65535));
}

bool Env::boolean(const std::string& name, bool fallback) {
    auto value = get(name);
    if (!value) return fallback;
    if (auto parsed = parse_bool(*value)) return *parsed;
    problem(name, "'" + *value + "' is not a boolean (use true/false, 1/0, yes/no, on/off)");
    return fallback;
}

std::chrono::milliseconds Env::duration(const std::string& name, std::optional<std::chrono::milliseconds> fallback,
                                        std::chrono::milliseconds min) {
    auto value = get(name);
    if (!value) {
        if (!fallback) problem(name, "is required but not set");
        return fallback.value_or(min);
    }
    auto parsed = parse_duration(*value);
    if (!parsed) {
        problem(name,
                "'" + *value + "' is not a duration (examples: 500ms, 30s, 15m, 24h, 7d; a bare number is seconds)");
    } else if (*parsed < min) {
        problem(name, "'" + *value + "' is shorter than the minimum of " + std::to_string(min.count()) + " ms");
    } else {
        return *parsed;
    }
    return fallback.value_or(min);
}

uint64_t Env::bytes(const std::string& name, std::optional<uint64_t> fallback) {
    auto value = get(name);
    if (!value) {
        if (!fallback) problem(name, "is required but not set");
        return fallback.value_or(0);
    }
    if (auto parsed = parse_bytes(*value)) return *parsed;
    problem(name, "'" + *value + "' is not a size (examples: 1048576, 512KiB, 64MiB, 2GiB)");
    return fallback.value_or(0);
}

std::string Env::secret(const std::string& name, std::optional<std::string> fallback, size_t min_length) {
    const std::string file_name = name + "_FILE";
    auto direct = get(name);
    auto path = get(file_name);
    std::optional<std::string> value;
    if (direct && path) {
        problem(name, "set either " + name + " or " + file_name + ", not both");
        return "";
    }
    if (direct) value = direct;
    if (path) {
        std::ifstream in(*path, std::ios::binary);
        if (!in) {
            problem(file_name, "cannot read '" + *path + "': " + std::strerror(errno));
            return "";
        }
        std::ostringstream content;
        content << in.rdbuf();
        std::string text = content.str();
        if (text.size() >= 2 && text.compare(text.size() - 2, 2, "\r\n") == 0) {
            text.resize(text.size() - 2);
        } else if (!text.empty() && text.back() == '\n') {
            text.pop_back();
        }
        value = std::move(text);
    }
    if (!value) {
        if (!fallback) problem(name, "is required but not set (set " + name + " or " + file_name + ")");
        return fallback.value_or("");
    }
    // The example secrets (deploy/kubernetes/base/secrets.env.example) are public: a deployment that kept one (or a
    // URL built from one) would let anyone sign tokens or log in to its brokers.
    if (contains_placeholder(*value)) {
        problem(path ? file_name : name, kPlaceholderProblem);
        return *value;
    }
    if (value->size() < min_length) {
        problem(path ? file_name : name,
                "the secret is too short: at least " + std::to_string(min_length) + " characters are required");
    }
    return *value;
}

void Env::check() const {
    if (problems_.empty()) return;
    std::string message = "invalid configuration:";
    for (const auto& p : problems_) message += "\n  " + p;
    throw Error(message);
}

namespace {

[[noreturn]] void bad_declaration(const Setting& s, std::string_view what) {
    throw std::logic_error("the declared default of " + std::string(s.name) + " " + std::string(what) + ": '" +
                           std::string(s.fallback) + "'");
}

// The declared default, parsed as the variable would be; nullopt when there is none (required, or the caller's).
template <class T, class Parse>
std::optional<T> declared(const Setting& s, Parse parse) {
    if (s.required || s.fallback.empty()) return std::nullopt;
    auto value = parse(s.fallback);
    if (!value) bad_declaration(s, "does not parse");
    return static_cast<T>(*value);
}

std::optional<int64_t> whole(std::string_view text) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

std::optional<double> decimal(std::string_view text) {
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::fixed);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

std::string format_number(double v) {
    std::ostringstream out;
    if (v == static_cast<double>(static_cast<int64_t>(v))) {
        // 1000000 → "1 000 000", as the documentation writes large numbers
        std::string digits = std::to_string(static_cast<int64_t>(v));
        std::string grouped;
        for (size_t i = 0; i < digits.size(); ++i) {
            if (i > 0 && (digits.size() - i) % 3 == 0 && digits.size() > 5) grouped += ' ';
            grouped += digits[i];
        }
        return grouped;
    }
    out << v;
    return out.str();
}

std::string format_duration(int64_t ms) {
    if (ms % 1000 != 0) return std::to_string(ms) + " ms";
    return std::to_string(ms / 1000) + " s";
}

std::string format_bytes(uint64_t bytes) {
    if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
    if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
    if (bytes >= (1ull << 10) && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
    return std::to_string(bytes) + " bytes";
}

}  // namespace

std::string describe_default(const Setting& s) {
    if (!s.shown_default.empty()) return std::string(s.shown_default);
    if (s.required) return "required";
    if (s.fallback.empty()) return "empty";
    return "`" + std::string(s.fallback) + "`";
}

std::string describe_range(const Setting& s) {
    switch (s.kind) {
        case Kind::integer:
        case Kind::number:
            return format_number(s.min) + " to " + format_number(s.max) + ".";
        case Kind::duration:
            return s.min > 0 ? "At least " + format_duration(static_cast<int64_t>(s.min)) + "." : "";
        case Kind::bytes:
            return s.max > 0 ? format_bytes(static_cast<uint64_t>(s.min)) + " to " +
                                   format_bytes(static_cast<uint64_t>(s.max)) + "."
                             : "";
        default:
            return "";
    }
}

std::string Env::text(const Setting& s, std::optional<std::string> fallback) {
    if (!fallback && !s.required) fallback = std::string(s.fallback);
    return string(std::string(s.name), fallback);
}

int64_t Env::integer(const Setting& s, std::optional<int64_t> fallback) {
    if (!fallback) fallback = declared<int64_t>(s, whole);
    return integer(std::string(s.name), fallback, static_cast<int64_t>(s.min), static_cast<int64_t>(s.max));
}

double Env::number(const Setting& s) { return number(std::string(s.name), declared<double>(s, decimal), s.min, s.max); }

uint16_t Env::port(const Setting& s, std::optional<uint16_t> fallback) {
    if (!fallback) fallback = declared<uint16_t>(s, whole);
    return port(std::string(s.name), fallback);
}

bool Env::boolean(const Setting& s) {
    auto fallback = declared<bool>(s, parse_bool);
    if (!fallback) bad_declaration(s, "is missing: a boolean needs one");
    return boolean(std::string(s.name), *fallback);
}

std::chrono::milliseconds Env::duration(const Setting& s, std::optional<std::chrono::milliseconds> fallback) {
    if (!fallback) fallback = declared<std::chrono::milliseconds>(s, parse_duration);
    return duration(std::string(s.name), fallback, std::chrono::milliseconds(static_cast<int64_t>(s.min)));
}

uint64_t Env::bytes(const Setting& s, std::optional<uint64_t> fallback) {
    if (!fallback) fallback = declared<uint64_t>(s, parse_bytes);
    uint64_t value = bytes(std::string(s.name), fallback);
    if (s.max > 0 && (value < static_cast<uint64_t>(s.min) || value > static_cast<uint64_t>(s.max))) {
        problem(std::string(s.name), "must be between " + format_bytes(static_cast<uint64_t>(s.min)) + " and " +
                                         format_bytes(static_cast<uint64_t>(s.max)));
    }
    return value;
}

std::string Env::secret(const Setting& s, size_t min_length) {
    std::optional<std::string> fallback;
    if (!s.required) fallback = std::string(s.fallback);
    return secret(std::string(s.name), fallback, min_length);
}

}  // namespace mp3c::config
