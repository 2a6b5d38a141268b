#include "mp3c/amqp.hpp"

namespace mp3c::amqp {

namespace names {
std::string dead_queue(const std::string& queue) { return queue + ".dead"; }
std::string retry_queue(const std::string& queue, int seconds) {
    return queue + ".retry." + std::to_string(seconds) + "s";
}
}  // namespace names

namespace {

// A durable work queue whose rejected messages go to <queue>.dead, with its delay queues for retries.
void declare_work_queue(Connection& c, const std::string& queue, bool with_retries) {
    c.declare_queue(queue, true, false, false,
                    {.dead_letter_exchange = names::kDeadExchange, .dead_letter_routing_key = queue});
    c.declare_queue(names::dead_queue(queue), true, false, false);
    c.bind(names::dead_queue(queue), names::kDeadExchange, queue);
    if (!with_retries) return;
    for (int seconds : names::kRetryDelays) {
        c.declare_queue(
            names::retry_queue(queue, seconds), true, false, false,
            {.dead_letter_exchange = "", .dead_letter_routing_key = queue, .message_ttl_ms = seconds * 1000});
    }
}

}  // namespace

void declare_topology(Connection& c) {
    c.declare_exchange(names::kStatusExchange, "topic");
    c.declare_exchange(names::kDeadExchange, "direct");
    declare_work_queue(c, names::kVideoQueue, true);
    declare_work_queue(c, names::kMp3Queue, true);
    declare_work_queue(c, names::kGatewayStatusQueue, false);
    c.bind(names::kGatewayStatusQueue, names::kStatusExchange, "job.*");
    declare_work_queue(c, names::kNotificationFailedQueue, true);
    c.bind(names::kNotificationFailedQueue, names::kStatusExchange, "job.failed");
}

}  // namespace mp3c::amqp
