#include "mp3c/cpu_budget.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace mp3c {

namespace {

std::optional<long long> number(std::string_view text) {
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::optional<std::string> first_line(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    return line;
}

}  // namespace

std::optional<int> cores_of_quota(long long quota_us, long long period_us) {
    if (quota_us <= 0 || period_us <= 0) return std::nullopt;
    return static_cast<int>(std::max<long long>(1, (quota_us + period_us - 1) / period_us));
}

std::optional<int> cores_of_quota(std::string_view cpu_max) {
    auto space = cpu_max.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    auto quota = number(cpu_max.substr(0, space));  // "max" is no number: no quota
    auto period = number(cpu_max.substr(space + 1));
    if (!quota || !period) return std::nullopt;
    return cores_of_quota(*quota, *period);
}

int available_cores(const std::filesystem::path& cgroup_root) {
    int cores = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) cores = CPU_COUNT(&set);
    if (cores <= 0) cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::optional<int> quota;
    if (auto v2 = first_line(cgroup_root / "cpu.max")) {
        quota = cores_of_quota(*v2);
    } else if (auto q = first_line(cgroup_root / "cpu" / "cpu.cfs_quota_us")) {
        auto p = first_line(cgroup_root / "cpu" / "cpu.cfs_period_us");
        auto quota_us = number(*q);
        auto period_us = p ? number(*p) : std::nullopt;
        if (quota_us && period_us) quota = cores_of_quota(*quota_us, *period_us);
    }
    if (quota) cores = std::min(cores, *quota);
    return std::max(cores, 1);
}

}  // namespace mp3c
