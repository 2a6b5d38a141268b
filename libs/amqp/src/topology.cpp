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

// The arguments every durable queue of the topology shares: its type and, for a quorum queue that dead-letters,
// at-least-once dead-lettering (a message moving to its retry or dead queue is never dropped on the way).
QueueArgs durable_args(const Topology& t, QueueArgs args) {
    args.queue_type = t.queue_type;
    args.at_least_once_dead_lettering = t.queue_type == "quorum" && args.dead_letter_exchange.has_value();
    return args;
}

// A work queue: its rejected messages go to <queue>.dead; with retries, its delay queues (reached through the
// exchange <queue>.retry) dead-letter back into it; with an inbox, others publish to it through <queue>.in.
struct WorkQueue {
    std::string name;
    bool with_retries;
    bool with_inbox;
};

std::vector<WorkQueue> work_queues(const Topology& t) {
    return {{t.video_queue, true, true},
            {t.mp3_queue, true, true},
            {t.gateway_status_queue, false, false},
            {t.notification_failed_queue, true, false},
            {t.notification_webhook_queue, true, true},
            {t.notification_account_queue, true, true}};
}

}  // namespace

std::vector<QueueDeclaration> durable_queues(const Topology& t) {
    std::vector<QueueDeclaration> queues;
    for (const auto& q : work_queues(t)) {
        queues.push_back(
            {q.name, durable_args(t, {.dead_letter_exchange = t.dead_exchange, .dead_letter_routing_key = q.name})});
        queues.push_back({names::dead_queue(q.name), durable_args(t, {})});
        if (!q.with_retries) continue;
        for (int seconds : names::kRetryDelays) {
            queues.push_back(
                {names::retry_queue(q.name, seconds), durable_args(t, {.dead_letter_exchange = "",
                                                                       .dead_letter_routing_key = q.name,
                                                                       .message_ttl_ms = seconds * 1000})});
        }
    }
    return queues;
}

namespace {

void bind_work_queue(Connection& c, const Topology& t, const WorkQueue& q) {
    c.bind(names::dead_queue(q.name), t.dead_exchange, q.name);
    if (q.with_inbox) {
        c.declare_exchange(names::inbox(q.name), "direct");
        c.bind(q.name, names::inbox(q.name), q.name);
    }
    if (!q.with_retries) return;
    c.declare_exchange(names::retry_exchange(q.name), "direct");
    for (int seconds : names::kRetryDelays) {
        c.bind(names::retry_queue(q.name, seconds), names::retry_exchange(q.name), std::to_string(seconds) + "s");
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
    t.queue_type = env.text(settings::kQueueType);
    if (t.queue_type != "quorum" && t.queue_type != "classic") {
        env.problem(std::string(settings::kQueueType.name), "must be quorum or classic");
        t.queue_type = "quorum";
    }
    return t;
}

void declare_topology(Connection& c, const Topology& t) {
    if (!t.declare) return;
    c.declare_exchange(t.status_exchange, "topic");
    c.declare_exchange(t.dead_exchange, "direct");
    for (const auto& q : durable_queues(t)) c.declare_queue(q.name, true, false, false, q.args);
    for (const auto& q : work_queues(t)) bind_work_queue(c, t, q);
    c.bind(t.gateway_status_queue, t.status_exchange, "job.*");
    c.bind(t.notification_failed_queue, t.status_exchange, "job.failed");
}

}  // namespace mp3c::amqp
