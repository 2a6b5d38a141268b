#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

// Prometheus metrics: counters, gauges and histograms in labelled families, rendered in the text exposition format.
namespace mp3c::metrics {

using LabelValues = std::vector<std::string>;

class Counter {
  public:
    void inc(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
    double value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0.0};
};

class Gauge {
  public:
    void set(double v) { value_.store(v, std::memory_order_relaxed); }
    void add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
    double value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0.0};
};

class Histogram {
  public:
    explicit Histogram(std::vector<double> upper_bounds);
    void observe(double value);

    struct Snapshot {
        std::vector<double> upper_bounds;
        std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
        double sum = 0;
        uint64_t count = 0;
    };
    Snapshot snapshot() const;

  private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // one per bound, then +Inf
    std::atomic<double> sum_{0.0};
};

// Latency buckets in seconds, 1 ms to 60 s.
std::vector<double> default_latency_buckets();

template <class Metric>
class Family {
  public:
    Family(std::string name, std::string help, std::vector<std::string> label_names,
           std::function<std::unique_ptr<Metric>()> make)
        : name_(std::move(name)),
          help_(std::move(help)),
          label_names_(std::move(label_names)),
          make_(std::move(make)) {}

    // The metric for these label values (created on first use); references stay valid for the family's lifetime.
    Metric& with(const LabelValues& values);

    const std::string& name() const { return name_; }
    const std::string& help() const { return help_; }
    const std::vector<std::string>& label_names() const { return label_names_; }
    template <class F>
    void for_each(F&& f) const {
        std::lock_guard lock(mutex_);
        for (const auto& [values, metric] : metrics_) f(values, *metric);
    }

  private:
    std::string name_, help_;
    std::vector<std::string> label_names_;
    std::function<std::unique_ptr<Metric>()> make_;
    mutable std::mutex mutex_;
    std::map<LabelValues, std::unique_ptr<Metric>> metrics_;
};

class Registry {
  public:
    Family<Counter>& counter(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
    Family<Gauge>& gauge(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
    Family<Histogram>& histogram(const std::string& name, const std::string& help, std::vector<std::string> labels,
                                 std::vector<double> upper_bounds = default_latency_buckets());
    // A gauge whose value is computed at each scrape (pool sizes, queue depths).
    void callback_gauge(const std::string& name, const std::string& help, std::function<double()> read);

    // The text exposition format (version 0.0.4).
    std::string render() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Family<Counter>>> counters_;
    std::map<std::string, std::unique_ptr<Family<Gauge>>> gauges_;
    std::map<std::string, std::unique_ptr<Family<Histogram>>> histograms_;
    std::map<std::string, std::pair<std::string, std::function<double()>>> callbacks_;
};

// Escapes a label value: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);
// Escapes HELP text: backslash and newline.
std::string escape_help(std::string_view help);
std::string format_value(double value);

template <class Metric>
Metric& Family<Metric>::with(const LabelValues& values) {
    std::lock_guard lock(mutex_);
    auto it = metrics_.find(values);
    if (it == metrics_.end()) it = metrics_.emplace(values, make_()).first;
    return *it->second;
}

}  // namespace mp3c::metrics
