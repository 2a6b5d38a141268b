#include "mp3c/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace mp3c::metrics {
namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

TEST(Metrics, CounterFamiliesRenderWithLabels) {
    Registry registry;
    auto& requests = registry.counter("http_requests_total", "Requests served.", {"route", "method", "status"});
    requests.with({"/login", "POST", "200"}).inc();
    requests.with({"/login", "POST", "200"}).inc(2);
    requests.with({"/login", "POST", "401"}).inc();
    std::string text = registry.render();
    EXPECT_TRUE(contains(text, "# HELP http_requests_total Requests served.\n")) << text;
    EXPECT_TRUE(contains(text, "# TYPE http_requests_total counter\n")) << text;
    EXPECT_TRUE(contains(text, "http_requests_total{route=\"/login\",method=\"POST\",status=\"200\"} 3\n")) << text;
    EXPECT_TRUE(contains(text, "http_requests_total{route=\"/login\",method=\"POST\",status=\"401\"} 1\n")) << text;
}

TEST(Metrics, LabelValuesAreEscaped) {
    Registry registry;
    registry.counter("weird_total", "Help with \\ and\nnewline.", {"v"}).with({"a\"b\\c\nd"}).inc();
    std::string text = registry.render();
    EXPECT_TRUE(contains(text, "weird_total{v=\"a\\\"b\\\\c\\nd\"} 1\n")) << text;
    EXPECT_TRUE(contains(text, "# HELP weird_total Help with \\\\ and\\nnewline.\n")) << text;
}

TEST(Metrics, HistogramBucketsAreCumulative) {
    Registry registry;
    auto& h = registry.histogram("latency_seconds", "Latency.", {"route"}, {0.1, 1});
    h.with({"/x"}).observe(0.05);
    h.with({"/x"}).observe(0.1);  // on the bound: counts in le="0.1"
    h.with({"/x"}).observe(0.5);
    h.with({"/x"}).observe(5);
    std::string text = registry.render();
    EXPECT_TRUE(contains(text, "latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n")) << text;
    EXPECT_TRUE(contains(text, "latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n")) << text;
    EXPECT_TRUE(contains(text, "latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n")) << text;
    EXPECT_TRUE(contains(text, "latency_seconds_sum{route=\"/x\"} 5.65\n")) << text;
    EXPECT_TRUE(contains(text, "latency_seconds_count{route=\"/x\"} 4\n")) << text;
}

TEST(Metrics, GaugesAndCallbackGauges) {
    Registry registry;
    registry.gauge("in_flight", "In flight.").with({}).set(3);
    registry.callback_gauge("pool_size", "Pool size.", [] { return 7.0; });
    std::string text = registry.render();
    EXPECT_TRUE(contains(text, "in_flight 3\n")) << text;
    EXPECT_TRUE(contains(text, "# TYPE pool_size gauge\npool_size 7\n")) << text;
}

TEST(Metrics, InvalidNamesAreRejected) {
    Registry registry;
    EXPECT_THROW(registry.counter("bad-name", "x"), std::invalid_argument);
    EXPECT_THROW(registry.counter("1abc", "x"), std::invalid_argument);
}

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
    Registry registry;
    auto& family = registry.counter("c_total", "c", {"k"});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) family.with({"v"}).inc();
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(family.with({"v"}).value(), 40000);
}

TEST(Metrics, FormatValue) {
    EXPECT_EQ(format_value(1), "1");
    EXPECT_EQ(format_value(0.25), "0.25");
    EXPECT_EQ(format_value(0.1), "0.1");
    EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
}

}  // namespace
}  // namespace mp3c::metrics
