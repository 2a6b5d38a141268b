#include "mp3c/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace mp3c::metrics {

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
    std::sort(bounds_.begin(), bounds_.end());
    buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
    for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double value) {
    size_t index = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    buckets_[index].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.upper_bounds = bounds_;
    uint64_t running = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
        running += buckets_[i].load(std::memory_order_relaxed);
        s.cumulative_counts.push_back(running);
    }
    s.count = running;
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

std::vector<double> default_latency_buckets() {
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

namespace {

void check_name(const std::string& name) {
    bool ok = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
    for (char c : name) {
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':');
    }
    if (!ok) throw std::invalid_argument("invalid metric name: " + name);
}

template <class Map, class... Args>
auto& get_or_create(Map& map, const std::string& name, Args&&... args) {
    check_name(name);
    auto it = map.find(name);
    if (it == map.end()) {
        it = map.emplace(name,
                         std::make_unique<typename Map::mapped_type::element_type>(name, std::forward<Args>(args)...))
                 .first;
    }
    return *it->second;
}

std::string label_block(const std::vector<std::string>& names, const LabelValues& values,
                        const std::string& extra_name = {}, const std::string& extra_value = {}) {
    std::string out;
    for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
        out += out.empty() ? "{" : ",";
        out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
    }
    if (!extra_name.empty()) {
        out += out.empty() ? "{" : ",";
        out += extra_name + "=\"" + escape_label_value(extra_value) + "\"";
    }
    if (!out.empty()) out += "}";
    return out;
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
    out += "# HELP " + name + " " + escape_help(help) + "\n";
    out += "# TYPE " + name + " " + type + "\n";
}

}  // namespace

Family<Counter>& Registry::counter(const std::string& name, const std::string& help, std::vector<std::string> labels) {
    std::lock_guard lock(mutex_);
    return get_or_create(counters_, name, help, std::move(labels),
                         std::function<std::unique_ptr<Counter>()>([] { return std::make_unique<Counter>(); }));
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help, std::vector<std::string> labels) {
    std::lock_guard lock(mutex_);
    return get_or_create(gauges_, name, help, std::move(labels),
                         std::function<std::unique_ptr<Gauge>()>([] { return std::make_unique<Gauge>(); }));
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels, std::vector<double> upper_bounds) {
    std::lock_guard lock(mutex_);
    return get_or_create(histograms_, name, help, std::move(labels),
                         std::function<std::unique_ptr<Histogram>()>(
                             [upper_bounds] { return std::make_unique<Histogram>(upper_bounds); }));
}

void Registry::callback_gauge(const std::string& name, const std::string& help, std::function<double()> read) {
    check_name(name);
    std::lock_guard lock(mutex_);
    callbacks_[name] = {help, std::move(read)};
}

std::string Registry::render() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& [name, family] : counters_) {
        header(out, name, family->help(), "counter");
        family->for_each([&](const LabelValues& values, const Counter& c) {
            out += name + label_block(family->label_names(), values) + " " + format_value(c.value()) + "\n";
        });
    }
    for (const auto& [name, family] : gauges_) {
        header(out, name, family->help(), "gauge");
        family->for_each([&](const LabelValues& values, const Gauge& g) {
            out += name + label_block(family->label_names(), values) + " " + format_value(g.value()) + "\n";
        });
    }
    for (const auto& [name, entry] : callbacks_) {
        header(out, name, entry.first, "gauge");
        out += name + " " + format_value(entry.second()) + "\n";
    }
    for (const auto& [name, family] : histograms_) {
        header(out, name, family->help(), "histogram");
        family->for_each([&](const LabelValues& values, const Histogram& h) {
            auto s = h.snapshot();
            const auto& names = family->label_names();
            for (size_t i = 0; i < s.upper_bounds.size(); ++i) {
                out += name + "_bucket" + label_block(names, values, "le", format_value(s.upper_bounds[i])) + " " +
                       std::to_string(s.cumulative_counts[i]) + "\n";
            }
            out += name + "_bucket" + label_block(names, values, "le", "+Inf") + " " + std::to_string(s.count) + "\n";
            out += name + "_sum" + label_block(names, values) + " " + format_value(s.sum) + "\n";
            out += name + "_count" + label_block(names, values) + " " + std::to_string(s.count) + "\n";
        });
    }
    return out;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string escape_help(std::string_view help) {
    std::string out;
    for (char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    // Prefer the shortest representation that reads back exactly.
    for (int precision = 1; precision <= 17; ++precision) {
        char candidate[64];
        std::snprintf(candidate, sizeof candidate, "%.*g", precision, value);
        if (std::strtod(candidate, nullptr) == value) return candidate;
    }
    return buffer;
}

}  // namespace mp3c::metrics
