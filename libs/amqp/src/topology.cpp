#include <algorithm>

#include "mp3c/amqp.hpp"
#include "mp3c/settings.hpp"

namespace mp3c::amqp {

namespace names {
std::string dead_queue(const std::string& queue) { return queue + ".dead"; }
std::string retry_queue(const std::string& queue, int seconds) {
    return queue + ".retry." + std::to_string(seconds) + "s";
}
std::string retry_queue_after(const std::string& queue, int failed_attempt) {
    size_t tier = static_cast<size_t>(std::max(failed_attempt, 1) - 1);
    return retry_queue(queue, kRetryDelays[std::min(tier, kRetryDelays.size() - 1)]);
}
}  // namespace names

namespace {

// A durable work queue whose rejected messages go to <queue>.dead, with its delay queues for retries.
void declare_work_queue(Connection& c, const Topology& t, const std::string& queue, bool with_retries) {
    c.declare_queue(queue, true, false, false,
                    {.dead_letter_exchange = t.dead_exchange, .dead_letter_routing_key = queue});
    c.declare_queue(names::dead_queue(queue), true, false, false);
    c.bind(names::dead_queue(queue), t.dead_exchange, queue);
    if (!with_retries) return;
    for (int seconds : names::kRetryDelays) {
        c.declare_queue(
            names::retry_queue(queue, seconds), true, false, false,
            {.dead_letter_exchange = "", .dead_letter_routing_key = queue, .message_ttl_ms = seconds * 1000});
    }
}

}  // namespace

Topology Topology::with_prefix(const std::string& prefix) {
    Topology t;
    for (std::string* name :
         {&t.video_queue, &t.mp3_queue, &t.status_exchange, &t.dead_exchange, &t.gateway_status_queue,
          &t.notification_failed_queue, &t.notification_webhook_queue, &t.notification_account_queue}) {
        *name = prefix + *name;
    }
    return t;
}

Topology topology_from_env(config::Env& env) {
    Topology t = Topology::with_prefix(env.text(settings::kNamePrefix));
    t.video_queue = env.text(settings::kVideoQueue, t.video_queue);
    t.mp3_queue = env.text(settings::kMp3Queue, t.mp3_queue);
    return t;
}

void declare_topology(Connection& c, const Topology& t) {
    c.declare_exchange(t.status_exchange, "topic");
    c.declare_exchange(t.dead_exchange, "direct");
    declare_work_queue(c, t, t.video_queue, true);
    declare_work_queue(c, t, t.mp3_queue, true);
    declare_work_queue(c, t, t.gateway_status_queue, false);
    c.bind(t.gateway_status_queue, t.status_exchange, "job.*");
    declare_work_queue(c, t, t.notification_failed_queue, true);
    c.bind(t.notification_failed_queue, t.status_exchange, "job.failed");
    declare_work_queue(c, t, t.notification_webhook_queue, true);
    declare_work_queue(c, t, t.notification_account_queue, true);
}

}  // namespace mp3c::amqp
