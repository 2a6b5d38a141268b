// Restarts the harness's RabbitMQ and MariaDB under a running gateway: ctest runs this binary alone.
#include <set>

#include "gateway_fixture.hpp"

namespace mp3c::gateway::test {
namespace {

class GatewayOutageTest : public GatewayTest {
  protected:
    void TearDown() override {
        testing::harness_ctl("start", "rabbitmq");
        testing::harness_ctl("start", "mariadb");
    }
};

TEST_F(GatewayOutageTest, BrokerDownKeepsTheUploadWaitingAndPublishesItOnceItIsBack) {
    // Without the queue-depth check the upload is stored and recorded; its job waits in the table for the broker.
    start([](GatewayConfig& c) { c.max_queued_jobs = 0; });
    auto tok = token(1, "a@example.com");
    ASSERT_EQ(upload(tok, pattern(1000)).status, 202);
    ASSERT_EQ(drain_at_least(topology_.video_queue, 1).size(), 1u);

    testing::harness_ctl("stop", "rabbitmq");
    auto kept = upload(tok, pattern(200000));
    ASSERT_EQ(kept.status, 202) << kept.body;
    std::string waiting_id = kept.json()["job_id"];
    EXPECT_EQ(stored_files("videos"), 2u);
    EXPECT_EQ(temporary_files("videos"), 0u);
    EXPECT_EQ(job_rows(), 2u);
    EXPECT_EQ(get("/jobs/" + waiting_id, tok).json()["status"], "queued");
    EXPECT_EQ(testing::http_request(port_, "GET", "/readyz").status, 503);

    // With the depth check, an upload is refused before its body is read (the broker cannot be asked).
    start([](GatewayConfig& c) { c.max_queued_jobs = 100; });  // also a gateway restart while a job waits
    auto early = upload(tok, pattern(200000));
    EXPECT_EQ(early.status, 503);
    EXPECT_EQ(early.json()["error"], "queue_unavailable");
    EXPECT_EQ(early.header("retry-after"), "10");
    EXPECT_EQ(stored_files("videos"), 2u);

    testing::harness_ctl("start", "rabbitmq");
    EXPECT_TRUE(eventually([&] { return upload(tok, pattern(1000)).status == 202; }, 60s));
    auto messages = drain_at_least(topology_.video_queue, 2);
    std::set<std::string> ids;
    for (const auto& m : messages) ids.insert(m["job_id"].get<std::string>());
    EXPECT_EQ(messages.size(), 2u) << "the job that waited out the outage and the last; each once";
    EXPECT_EQ(ids.size(), 2u);
    EXPECT_TRUE(ids.contains(waiting_id));
}

TEST_F(GatewayOutageTest, GatewayRecoversFromRabbitMqAndMariaDbRestarts) {
    start();
    auto tok = token(1, "a@example.com");
    std::string job_id = upload(tok, pattern(1000)).json()["job_id"];

    testing::harness_ctl("restart", "rabbitmq");
    EXPECT_TRUE(eventually([&] { return upload(tok, pattern(1000)).status == 202; }, 60s));
    // The status consumer reconnected by itself.
    EXPECT_TRUE(eventually(
        [&] {
            publish_event({{"job_id", job_id}, {"status", "processing"}, {"progress", 10}});
            return get("/jobs/" + job_id, tok).json()["status"] == "processing";
        },
        60s));

    testing::harness_ctl("stop", "mariadb");
    auto list = get("/jobs", tok);
    EXPECT_EQ(list.status, 503);
    EXPECT_EQ(list.json()["error"], "database_unavailable");
    EXPECT_EQ(testing::http_request(port_, "GET", "/readyz").status, 503);
    auto refused = upload(tok, pattern(50000));
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_EQ(temporary_files("videos"), 0u);

    testing::harness_ctl("start", "mariadb");
    EXPECT_TRUE(eventually([&] { return get("/jobs", tok).status == 200; }, 60s));
    EXPECT_TRUE(eventually([&] { return upload(tok, pattern(1000)).status == 202; }, 60s));
    EXPECT_EQ(testing::http_request(port_, "GET", "/readyz").status, 200);
    EXPECT_EQ(get("/jobs", tok).json()["jobs"].size(), 3u);
}

}  // namespace
}  // namespace mp3c::gateway::test
