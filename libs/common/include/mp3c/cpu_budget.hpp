#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace mp3c {

// The CPU quota of a cgroup as its control files say it: "max 100000" or "150000 100000" (v2 cpu.max), or a quota
// and a period (v1 cpu.cfs_quota_us, -1 for none, and cpu.cfs_period_us). Whole cores, rounded up; nullopt: no quota.
std::optional<int> cores_of_quota(std::string_view cpu_max);
std::optional<int> cores_of_quota(long long quota_us, long long period_us);

// How many cores this process may use: the CPUs it may run on (its affinity), and no more than its cgroup's CPU
// quota (a Kubernetes CPU limit), read under `cgroup_root` (/sys/fs/cgroup). At least 1.
int available_cores(const std::filesystem::path& cgroup_root = "/sys/fs/cgroup");

}  // namespace mp3c
