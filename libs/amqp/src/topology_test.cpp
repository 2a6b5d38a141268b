// The topology the services declare against the broker definitions the Kubernetes manifests and the local stack load
// (where the services may not declare): the same queues with the same arguments, or a service that declares would be
// refused by a broker the definitions made (PRECONDITION_FAILED), and one that does not would miss a queue.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "mp3c/amqp.hpp"

namespace mp3c::amqp {
namespace {

nlohmann::json arguments_of(const QueueArgs& args) {
    nlohmann::json a = nlohmann::json::object();
    if (args.dead_letter_exchange) a["x-dead-letter-exchange"] = *args.dead_letter_exchange;
    if (args.dead_letter_routing_key) a["x-dead-letter-routing-key"] = *args.dead_letter_routing_key;
    if (args.message_ttl_ms) a["x-message-ttl"] = *args.message_ttl_ms;
    if (args.queue_type) a["x-queue-type"] = *args.queue_type;
    if (args.at_least_once_dead_lettering) {
        a["x-dead-letter-strategy"] = "at-least-once";
        a["x-overflow"] = "reject-publish";
    }
    return a;
}

TEST(Topology, TheBrokerDefinitionsHoldExactlyTheQueuesTheServicesDeclare) {
    std::ifstream in(std::string(MP3C_SOURCE_DIR) + "/deploy/kubernetes/base/rabbitmq-definitions.json");
    ASSERT_TRUE(in) << "deploy/kubernetes/base/rabbitmq-definitions.json";
    auto definitions = nlohmann::json::parse(in);
    std::map<std::string, nlohmann::json> defined;
    for (const auto& q : definitions.at("queues")) {
        EXPECT_TRUE(q.at("durable").get<bool>()) << q.dump();
        EXPECT_FALSE(q.at("auto_delete").get<bool>()) << q.dump();
        defined[q.at("name").get<std::string>()] = q.at("arguments");
    }
    Topology topology;  // the default names, quorum queues
    auto declared = durable_queues(topology);
    EXPECT_EQ(declared.size(), defined.size());
    for (const auto& q : declared) {
        auto found = defined.find(q.name);
        if (found == defined.end()) {
            ADD_FAILURE() << q.name << " is declared by the services but not in the definitions";
            continue;
        }
        EXPECT_EQ(found->second, arguments_of(q.args)) << q.name;
    }
}

TEST(Topology, QuorumQueuesDeadLetterAtLeastOnceAndClassicOnesKeepTheirArguments) {
    Topology quorum;
    for (const auto& q : durable_queues(quorum)) {
        EXPECT_EQ(q.args.queue_type, "quorum") << q.name;
        EXPECT_EQ(q.args.at_least_once_dead_lettering, q.args.dead_letter_exchange.has_value()) << q.name;
    }
    Topology classic;
    classic.queue_type = "classic";
    auto queues = durable_queues(classic);
    ASSERT_EQ(queues.size(), durable_queues(quorum).size());
    for (const auto& q : queues) {
        EXPECT_EQ(q.args.queue_type, "classic") << q.name;
        EXPECT_FALSE(q.args.at_least_once_dead_lettering) << q.name << ": a classic queue refuses the strategy";
    }
    EXPECT_EQ(queues.front().name, "video");
    EXPECT_EQ(queues.front().args.dead_letter_exchange, "mp3c.dead");
}

TEST(AmqpOptions, AnAmqpUrlNamesOneBrokerOrTheNodesOfACluster) {
    EXPECT_EQ(addresses("amqp://a/"), std::vector<std::string>{"amqp://a/"});
    EXPECT_EQ(addresses(" amqp://a:1/ , amqp://b:2/,,amqp://c/ "),
              (std::vector<std::string>{"amqp://a:1/", "amqp://b:2/", "amqp://c/"}));
    EXPECT_TRUE(addresses(" , ").empty());
    EXPECT_TRUE(addresses("").empty());
}

TEST(AmqpOptions, EveryAddressMustBeAmqpAndTheQueueTypeQuorumOrClassic) {
    std::map<std::string, std::string> vars = {{"AMQP_URL", "amqp://a/,http://b/"}, {"AMQP_QUEUE_TYPE", "stream"}};
    config::Env env([&](const std::string& name) -> std::optional<std::string> {
        auto found = vars.find(name);
        if (found == vars.end()) return std::nullopt;
        return found->second;
    });
    options_from_env(env, "x");
    auto topology = topology_from_env(env);
    ASSERT_EQ(env.problems().size(), 2u);
    EXPECT_NE(env.problems()[0].find("AMQP_URL"), std::string::npos);
    EXPECT_NE(env.problems()[1].find("AMQP_QUEUE_TYPE"), std::string::npos);
    EXPECT_EQ(topology.queue_type, "quorum");

    vars = {{"AMQP_URL", " , "}, {"AMQP_QUEUE_TYPE", "classic"}};
    config::Env classic([&](const std::string& name) -> std::optional<std::string> {
        auto found = vars.find(name);
        if (found == vars.end()) return std::nullopt;
        return found->second;
    });
    options_from_env(classic, "x");
    EXPECT_EQ(topology_from_env(classic).queue_type, "classic");
    ASSERT_EQ(classic.problems().size(), 1u);
    EXPECT_NE(classic.problems()[0].find("names no broker"), std::string::npos);
}

}  // namespace
}  // namespace mp3c::amqp
