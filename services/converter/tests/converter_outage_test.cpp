// RabbitMQ restarts under a converter in the middle of a job: ctest runs this binary alone (it restarts the shared
// broker).
#include "converter_system_fixture.hpp"
#include "mp3c/testing/servers.hpp"

namespace mp3c::gateway::test {
namespace {

class ConverterOutageTest : public ConverterSystemTest {
  protected:
    ~ConverterOutageTest() override { testing::harness_ctl("start", "rabbitmq"); }
};

TEST_F(ConverterOutageTest, JobRunningWhileTheBrokerRestartsIsStillDelivered) {
    auto tok = token(1, "a@example.com");
    std::string running = submit(tok, media(600));
    std::string waiting = submit(tok, media(2));
    size_t c = start_converter();
    ASSERT_TRUE(eventually([&] { return job(tok, running).value("progress", 0) >= 4; }, 60s));
    testing::harness_ctl("restart", "rabbitmq");  // the queues and messages are durable: both jobs survive

    // The conversion goes on and its MP3 is stored; announcing it (or acking) fails with the old connection, so the
    // job comes back and, its MP3 being stored under the job id, is announced rather than converted again.
    ASSERT_TRUE(eventually([&] { return job(tok, running)["status"] == "done"; }, 120s)) << job(tok, running).dump();
    ASSERT_TRUE(eventually([&] { return job(tok, waiting)["status"] == "done"; }, 120s)) << job(tok, waiting).dump();
    EXPECT_EQ(count(c, "\"converting\""), 2u) << "each job converted once" << converters_[c]->output();
    auto announced = drain(topology_.mp3_queue);
    std::set<std::string> jobs;
    for (const auto& m : announced) jobs.insert(m["job_id"].get<std::string>());
    EXPECT_EQ(jobs, (std::set<std::string>{running, waiting})) << "at least once each";
    EXPECT_LE(announced.size(), 3u) << "at most the interrupted one twice";
    EXPECT_EQ(stored_files("mp3s"), 2u);
    EXPECT_TRUE(scratch_empty());
}

}  // namespace
}  // namespace mp3c::gateway::test
