#include "mp3c/cpu_budget.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace mp3c {
namespace {

TEST(CpuBudget, ReadsCgroupV2Quotas) {
    EXPECT_EQ(cores_of_quota("max 100000"), std::nullopt);
    EXPECT_EQ(cores_of_quota("200000 100000"), 2);
    EXPECT_EQ(cores_of_quota("150000 100000"), 2);  // 1.5 cores: both may be used part of the time
    EXPECT_EQ(cores_of_quota("50000 100000"), 1);
    EXPECT_EQ(cores_of_quota("garbage"), std::nullopt);
    EXPECT_EQ(cores_of_quota("12x 100000"), std::nullopt);
}

TEST(CpuBudget, ReadsCgroupV1Quotas) {
    EXPECT_EQ(cores_of_quota(-1, 100000), std::nullopt);
    EXPECT_EQ(cores_of_quota(300000, 100000), 3);
}

class CgroupDirectory : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/cpu-budget-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        root_ = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(root_); }
    std::filesystem::path root_;
};

TEST_F(CgroupDirectory, AQuotaBelowTheCpusLimitsTheCores) {
    std::ofstream(root_ / "cpu.max") << "100000 100000\n";
    EXPECT_EQ(available_cores(root_), 1);
}

TEST_F(CgroupDirectory, NoQuotaLeavesTheCpusTheProcessMayRunOn) {
    std::ofstream(root_ / "cpu.max") << "max 100000\n";
    cpu_set_t set;
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    EXPECT_EQ(available_cores(root_), CPU_COUNT(&set));
    std::filesystem::remove(root_ / "cpu.max");
    std::filesystem::create_directories(root_ / "cpu");
    std::ofstream(root_ / "cpu" / "cpu.cfs_quota_us") << "-1\n";
    std::ofstream(root_ / "cpu" / "cpu.cfs_period_us") << "100000\n";
    EXPECT_EQ(available_cores(root_), CPU_COUNT(&set));
    std::ofstream(root_ / "cpu" / "cpu.cfs_quota_us") << "100000\n";
    EXPECT_EQ(available_cores(root_), 1);
}

}  // namespace
}  // namespace mp3c
