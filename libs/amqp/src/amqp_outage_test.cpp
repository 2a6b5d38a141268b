// Stops and restarts the harness's RabbitMQ: ctest runs this binary alone (RUN_SERIAL).
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "mp3c/amqp.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/testing/eventually.hpp"
#include "mp3c/testing/servers.hpp"

namespace mp3c::amqp {
namespace {

using namespace std::chrono_literals;

using testing::eventually;

class AmqpOutageTest : public ::testing::Test {
  protected:
    void SetUp() override {
        options_.url = std::getenv("MP3C_TEST_AMQP_URL");
        options_.heartbeat = 5s;
        options_.connection_name = "amqp_outage_test";
    }
    void TearDown() override { testing::harness_ctl("start", "rabbitmq"); }
    Options options_;
    Topology topology_ = Topology::with_prefix("outage" + crypto::random_hex(3) + ".");
};

TEST_F(AmqpOutageTest, PublisherFailsFastWhileTheBrokerIsDownAndRecoversAfter) {
    Publisher publisher(options_, topology_);
    ASSERT_NO_THROW(publisher.publish(topology_.status_exchange, "job.progress", {.body = "{}"}));
    ASSERT_TRUE(publisher.check());

    testing::harness_ctl("stop", "rabbitmq");
    auto started = std::chrono::steady_clock::now();
    EXPECT_THROW(publisher.publish(topology_.status_exchange, "job.progress", {.body = "{}"}), Error);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 15s) << "no hang while the broker is down";
    EXPECT_FALSE(publisher.check());
    EXPECT_FALSE(publisher.queue_depth(topology_.video_queue).has_value());

    testing::harness_ctl("start", "rabbitmq");
    EXPECT_TRUE(eventually([&] {
        try {
            publisher.publish(topology_.status_exchange, "job.progress", {.body = "{}"});
            return true;
        } catch (const Error&) {
            return false;
        }
    }));
}

TEST_F(AmqpOutageTest, ConsumerReconnectsAfterABrokerRestart) {
    std::string queue = "outage." + crypto::random_hex(4);
    std::mutex mutex;
    std::vector<std::string> bodies;
    Consumer consumer(
        options_,
        [&](Connection& c) {
            c.declare_queue(queue, true, false, false);
            return queue;
        },
        1,
        [&](const Delivery& d) {
            std::lock_guard lock(mutex);
            bodies.push_back(d.body);
            return Consumer::Outcome::ack;
        });
    consumer.start();
    ASSERT_TRUE(eventually([&] { return consumer.connected(); }));
    testing::harness_ctl("restart", "rabbitmq");
    Publisher publisher(options_);
    EXPECT_TRUE(eventually([&] {
        try {
            publisher.publish("", queue, {.body = "after restart"});
            return true;
        } catch (const Error&) {
            return false;
        }
    }));
    EXPECT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return !bodies.empty();
    }));
    std::lock_guard lock(mutex);
    EXPECT_EQ(bodies, std::vector<std::string>{"after restart"});
}

}  // namespace
}  // namespace mp3c::amqp
