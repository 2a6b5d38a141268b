#include <algorithm>

#include "mp3c/amqp.hpp"
#include "mp3c/settings.hpp"

namespace mp3c::amqp {

namespace names {
std::string dead_queue(const std::string& queue) { return queue + ".dead"; }
std::string retry_queue(const std::string& queue, int seconds) {
    return queue + ".retry." + std::to_string(seconds) + "s";
}
namespace {
int delay_after(int failed_attempt) {
    size_t tier = static_cast<size_t>(std::max(failed_attempt, 1) - 1);
    return kRetryDelays[std::min(tier, kRetryDelays.size() - 1)];
}
}  // namespace
std::string retry_queue_after(const std::string& queue, int failed_attempt) {
    return retry_queue(queue, delay_after(failed_attempt));
}
std::string retry_exchange(const std::string& queue) { return queue + ".retry"; }
std::string retry_key_after(int failed_attempt) { return std::to_string(delay_after(failed_attempt)) + "s"; }
std::string inbox(const std::string& queue) { return queue + ".in"; }
}  // namespace names

namespace {

// A durable work queue whose rejected messages go to <queue>.dead, with its delay queues for retries (reached through
// <queue>.retry) and, when others publish to it, its inbox exchange.
void declare_work_queue(Connection& c, const Topology& t, const std::string& queue, bool with_retries,
                        bool with_inbox) {
    c.declare_queue(queue, true, false, false,
                    {.dead_letter_exchange = t.dead_exchange, .dead_letter_routing_key = queue});
    c.declare_queue(names::dead_queue(queue), true, false, false);
    c.bind(names::dead_queue(queue), t.dead_exchange, queue);
    if (with_inbox) {
        c.declare_exchange(names::inbox(queue), "direct");
        c.bind(queue, names::inbox(queue), queue);
    }
    if (!with_retries) return;
    c.declare_exchange(names::retry_exchange(queue), "direct");
    for (int seconds : names::kRetryDelays) {
        c.declare_queue(
            names::retry_queue(queue, seconds), true, false, false,
            {.dead_letter_exchange = "", .dead_letter_routing_key = queue, .message_ttl_ms = seconds * 1000});
        c.bind(names::retry_queue(queue, seconds), names::retry_exchange(queue), std::to_string(seconds) + "s");
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
    t.declare = env.boolean(settings::kDeclareTopology);
    return t;
}

void declare_topology(Connection& c, const Topology& t) {
    if (!t.declare) return;
    c.declare_exchange(t.status_exchange, "topic");
    c.declare_exchange(t.dead_exchange, "direct");
    declare_work_queue(c, t, t.video_queue, true, true);
    declare_work_queue(c, t, t.mp3_queue, true, true);
    declare_work_queue(c, t, t.gateway_status_queue, false, false);
    c.bind(t.gateway_status_queue, t.status_exchange, "job.*");
    declare_work_queue(c, t, t.notification_failed_queue, true, false);
    c.bind(t.notification_failed_queue, t.status_exchange, "job.failed");
    declare_work_queue(c, t, t.notification_webhook_queue, true, true);
    declare_work_queue(c, t, t.notification_account_queue, true, true);
}

}  // namespace mp3c::amqp
