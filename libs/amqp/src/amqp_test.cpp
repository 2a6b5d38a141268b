// rabbitmq-c wrappers against the harness's real RabbitMQ.
#include "mp3c/amqp.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <mutex>
#include <thread>

#include "mp3c/crypto.hpp"
#include "mp3c/testing/eventually.hpp"
#include "mp3c/testing/loopback.hpp"

namespace mp3c::amqp {
namespace {

using namespace std::chrono_literals;
using testing::eventually;

Options test_options() {
    const char* url = std::getenv("MP3C_TEST_AMQP_URL");
    if (url == nullptr) throw std::runtime_error("MP3C_TEST_AMQP_URL not set: run under scripts/with-servers");
    Options o;
    o.url = url;
    o.connection_name = "amqp_test";
    o.heartbeat = 5s;
    return o;
}

// A private work queue with its dead-letter queue, like declare_topology's, so tests do not share queues.
std::string private_queue(Connection& c, const std::string& name) {
    c.declare_exchange(Topology{}.dead_exchange, "direct");
    c.declare_queue(name, true, false, false,
                    {.dead_letter_exchange = Topology{}.dead_exchange, .dead_letter_routing_key = name});
    c.declare_queue(names::dead_queue(name), true, false, false);
    c.bind(names::dead_queue(name), Topology{}.dead_exchange, name);
    return name;
}

// Collects deliveries from a Consumer and lets a test wait for them.
struct Inbox {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<Delivery> deliveries;

    void add(const Delivery& d) {
        std::lock_guard lock(mutex);
        deliveries.push_back(d);
        cv.notify_all();
    }
    bool wait_for(size_t count, std::chrono::milliseconds timeout = 30s) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, timeout, [&] { return deliveries.size() >= count; });
    }
    std::vector<Delivery> all() {
        std::lock_guard lock(mutex);
        return deliveries;
    }
};

class AmqpTest : public ::testing::Test {
  protected:
    std::string queue_ = "test." + crypto::random_hex(4);
    Topology topology_ = Topology::with_prefix("test" + crypto::random_hex(3) + ".");
    Options options_ = test_options();
};

TEST_F(AmqpTest, PublishedMessageIsConsumedWithItsProperties) {
    {
        Connection setup(options_);
        private_queue(setup, queue_);
    }
    Publisher publisher(options_);
    publisher.publish("", queue_, {.body = R"({"video_fid":"x"})", .message_id = "job-1", .correlation_id = "trace-9"});
    EXPECT_EQ(publisher.queue_depth(queue_), 1u);

    Inbox inbox;
    Consumer consumer(
        options_, [&](Connection&) { return queue_; }, 1,
        [&](const Delivery& d) {
            inbox.add(d);
            return Consumer::Outcome::ack;
        });
    consumer.start();
    ASSERT_TRUE(inbox.wait_for(1));
    auto d = inbox.all()[0];
    EXPECT_EQ(d.body, R"({"video_fid":"x"})");
    EXPECT_EQ(d.message_id, "job-1");
    EXPECT_EQ(d.correlation_id, "trace-9");
    EXPECT_EQ(d.routing_key, queue_);
    EXPECT_FALSE(d.redelivered);
    consumer.stop();
    EXPECT_EQ(publisher.queue_depth(queue_), 0u) << "acked, so gone";
}

// A handler that runs for several heartbeat intervals (a long conversion). Returns the bodies delivered, in order,
// up to a marker published after the long handler returned: a redelivery of the long message shows up before it.
std::vector<std::string> long_handler_deliveries(const Options& base, const std::string& queue, bool keep_alive) {
    Options options = base;
    options.heartbeat = 1s;  // the broker drops a connection that misses two
    {
        Connection setup(options);
        private_queue(setup, queue);
    }
    Publisher publisher(options);
    publisher.publish("", queue, {.body = "long"});
    Inbox inbox;
    std::promise<void> long_done;
    Consumer consumer(
        options, [&](Connection&) { return queue; }, 1,
        [&](const Delivery& d) {
            if (d.body == "long" && !d.redelivered) {
                std::this_thread::sleep_for(6s);  // the work itself: stands for a long conversion
                inbox.add(d);
                long_done.set_value();
            } else {
                inbox.add(d);
            }
            return Consumer::Outcome::ack;
        });
    if (keep_alive) consumer.keep_alive_during_handler();
    consumer.start();
    long_done.get_future().wait();
    publisher.publish("", queue, {.body = "marker"});
    EXPECT_TRUE(eventually([&] {
        auto all = inbox.all();
        return !all.empty() && all.back().body == "marker";
    }));
    consumer.stop();
    std::vector<std::string> bodies;
    for (const auto& d : inbox.all()) bodies.push_back(d.body + (d.redelivered ? " (redelivered)" : ""));
    return bodies;
}

TEST_F(AmqpTest, HandlerLongerThanTheHeartbeatKeepsItsConnectionWhenKeptAlive) {
    EXPECT_EQ(long_handler_deliveries(options_, queue_, true), (std::vector<std::string>{"long", "marker"}))
        << "acked on the first delivery: the connection survived";
}

TEST_F(AmqpTest, HandlerLongerThanTheHeartbeatLosesItsConnectionOtherwise) {
    // The control for the test above (the original's problem): without keep-alive the broker drops the connection
    // and redelivers the message.
    EXPECT_EQ(long_handler_deliveries(options_, queue_, false),
              (std::vector<std::string>{"long", "long (redelivered)", "marker"}));
}

TEST_F(AmqpTest, UnroutableMessageIsNotConfirmed) {
    Publisher publisher(options_, topology_);
    EXPECT_THROW(publisher.publish("", "no-such-queue-" + crypto::random_hex(4), {.body = "{}"}), Error);
    // The publisher stays usable.
    EXPECT_NO_THROW(publisher.publish(topology_.status_exchange, "job.progress", {.body = "{}"}));
}

TEST_F(AmqpTest, TopologyIsDeclaredIdempotently) {
    Connection a(options_);
    declare_topology(a, topology_);
    Connection b(options_);
    EXPECT_NO_THROW(declare_topology(b, topology_));
    EXPECT_NO_THROW(b.queue_depth(topology_.video_queue));
    EXPECT_NO_THROW(b.queue_depth(names::dead_queue(topology_.video_queue)));
    EXPECT_NO_THROW(b.queue_depth(names::retry_queue(topology_.video_queue, 5)));
    EXPECT_THROW(b.queue_depth("no-such-queue-" + crypto::random_hex(4)), Error);
}

TEST_F(AmqpTest, RequeuedMessageIsRedeliveredAndDeadLetteredOneEndsInTheDeadQueue) {
    {
        Connection setup(options_);
        private_queue(setup, queue_);
    }
    Publisher publisher(options_);
    publisher.publish("", queue_, {.body = "poison"});

    Inbox seen;
    Consumer consumer(
        options_, [&](Connection&) { return queue_; }, 1,
        [&](const Delivery& d) {
            seen.add(d);
            return d.redelivered ? Consumer::Outcome::dead_letter : Consumer::Outcome::requeue;
        });
    consumer.start();
    ASSERT_TRUE(seen.wait_for(2));
    consumer.stop();
    auto all = seen.all();
    EXPECT_FALSE(all[0].redelivered);
    EXPECT_TRUE(all[1].redelivered);

    Inbox dead;
    Consumer dead_consumer(
        options_, [&](Connection&) { return names::dead_queue(queue_); }, 1,
        [&](const Delivery& d) {
            dead.add(d);
            return Consumer::Outcome::ack;
        });
    dead_consumer.start();
    ASSERT_TRUE(dead.wait_for(1));
    EXPECT_EQ(dead.all()[0].body, "poison");
    EXPECT_EQ(dead.all()[0].death_count, 1);
}

TEST_F(AmqpTest, HandlerExceptionRequeuesTheMessage) {
    {
        Connection setup(options_);
        private_queue(setup, queue_);
    }
    Publisher(options_).publish("", queue_, {.body = "flaky"});
    std::atomic<int> calls{0};
    Inbox done;
    Consumer consumer(
        options_, [&](Connection&) { return queue_; }, 1,
        [&](const Delivery& d) -> Consumer::Outcome {
            if (calls++ == 0) throw std::runtime_error("database down");
            done.add(d);
            return Consumer::Outcome::ack;
        });
    consumer.start();
    ASSERT_TRUE(done.wait_for(1));
    EXPECT_EQ(calls.load(), 2);
    EXPECT_TRUE(done.all()[0].redelivered);
}

TEST_F(AmqpTest, RetryQueueDeliversBackToTheWorkQueueAfterItsDelay) {
    Connection c(options_);
    declare_topology(c, topology_);
    std::string marker = "retry-" + crypto::random_hex(4);
    Publisher(options_, topology_).publish("", names::retry_queue(topology_.mp3_queue, 5), {.body = marker});
    auto published = std::chrono::steady_clock::now();
    Inbox inbox;
    Consumer consumer(
        options_, [&](Connection&) { return topology_.mp3_queue; }, 10,
        [&](const Delivery& d) {
            if (d.body == marker) inbox.add(d);
            return d.body == marker ? Consumer::Outcome::ack : Consumer::Outcome::requeue;
        });
    consumer.start();
    ASSERT_TRUE(inbox.wait_for(1, 30s));
    EXPECT_GE(std::chrono::steady_clock::now() - published, 4s) << "it waited in the delay queue";
    EXPECT_EQ(inbox.all()[0].death_count, 1) << "x-death records the stay in the delay queue";
}

TEST_F(AmqpTest, ConcurrentPublishersShareOnePublisherSafely) {
    {
        Connection setup(options_);
        private_queue(setup, queue_);
    }
    Publisher publisher(options_);
    std::vector<std::future<void>> tasks;
    for (int t = 0; t < 8; ++t) {
        tasks.push_back(std::async(std::launch::async, [&, t] {
            for (int i = 0; i < 25; ++i) publisher.publish("", queue_, {.body = std::to_string(t * 100 + i)});
        }));
    }
    for (auto& t : tasks) t.get();
    EXPECT_EQ(publisher.queue_depth(queue_), 200u);
}

// A cluster's AMQP_URL lists its nodes: a node that refuses, or accepts and never answers, is passed over.
TEST_F(AmqpTest, AConnectionTakesTheFirstNodeOfTheListThatAnswers) {
    uint16_t refusing = 0;
    {
        testing::LoopbackSocket closed(true);
        refusing = closed.port();
    }
    testing::LoopbackSocket silent(true);  // listens, never speaks AMQP
    auto at = [](uint16_t port) { return "amqp://guest:guest@127.0.0.1:" + std::to_string(port) + "/"; };
    Options o = options_;
    o.connect_timeout = 500ms;
    o.url = at(refusing) + "," + at(silent.port()) + "," + options_.url;
    for (int i = 0; i < 3; ++i) {  // each connection starts at another address; all end at the live one
        Connection c(o);
        EXPECT_EQ(c.address().substr(0, c.address().find('/')),
                  "127.0.0.1:" + std::string(std::getenv("MP3C_TEST_AMQP_PORT")));
        EXPECT_NO_THROW(declare_topology(c, topology_));
    }
    o.url = at(refusing) + "," + at(silent.port());
    try {
        Connection none(o);
        ADD_FAILURE() << "connected to no broker";
    } catch (const Error& e) {
        std::string why = e.what();
        EXPECT_NE(why.find("no RabbitMQ node of 2"), std::string::npos) << why;
        EXPECT_NE(why.find(std::to_string(refusing)), std::string::npos) << why;
        EXPECT_NE(why.find(std::to_string(silent.port())), std::string::npos) << why;
        EXPECT_EQ(why.find("guest"), std::string::npos) << "no credentials in messages: " << why;
    }
}

// A queue's type is fixed when it is made: a deployment that switches AMQP_QUEUE_TYPE without migrating is refused
// at its first declare, loudly, rather than running on queues of the other kind.
TEST_F(AmqpTest, QuorumQueuesWorkOnOneNodeAndAQueuesTypeCannotChangeInPlace) {
    Connection c(options_);
    ASSERT_EQ(topology_.queue_type, "quorum");
    declare_topology(c, topology_);
    Publisher publisher(options_, topology_);
    publisher.publish(names::inbox(topology_.video_queue), topology_.video_queue, {.body = "job"});
    EXPECT_EQ(publisher.queue_depth(topology_.video_queue), 1u);

    Topology classic = topology_;
    classic.queue_type = "classic";
    Connection d(options_);
    try {
        declare_topology(d, classic);
        ADD_FAILURE() << "a quorum queue was declared again as classic";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("406 PRECONDITION_FAILED - inequivalent arg"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(publisher.queue_depth(topology_.video_queue), 1u) << "the queue and its message are unharmed";
}

TEST(AmqpOptions, FromEnvironment) {
    config::Env env([](const std::string& name) -> std::optional<std::string> {
        if (name == "AMQP_URL") return "http://wrong";
        if (name == "AMQP_HEARTBEAT") return "10s";
        return std::nullopt;
    });
    auto o = options_from_env(env, "x");
    EXPECT_EQ(o.heartbeat, 10s);
    ASSERT_EQ(env.problems().size(), 1u);
    EXPECT_NE(env.problems()[0].find("AMQP_URL"), std::string::npos);
}

}  // namespace
}  // namespace mp3c::amqp
