#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mp3c/config.hpp"
#include "mp3c/result.hpp"

// RabbitMQ through rabbitmq-c: durable topology declared by the services themselves, persistent messages published
// with confirms, consumers with manual acks, reconnection with backoff, heartbeats. The exchanges, queues and
// messages are documented in docs/messaging.md.
namespace mp3c::amqp {

struct Options {
    // One broker, or the nodes of a cluster separated by commas: a connection takes the first that answers, starting
    // at the next address each time (addresses()).
    std::string url = "amqp://guest:guest@127.0.0.1:5672/";
    std::chrono::seconds heartbeat{30};
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds confirm_timeout{10000};
    std::string connection_name;  // shown in the management UI
};

// AMQP_URL (or AMQP_URL_FILE: it holds a password), AMQP_HEARTBEAT, AMQP_CONFIRM_TIMEOUT.
Options options_from_env(config::Env& env, const std::string& connection_name);
// The addresses of an AMQP_URL: its comma-separated URLs, trimmed, empty ones dropped.
std::vector<std::string> addresses(const std::string& urls);

class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Message {
    std::string body;
    std::string content_type = "application/json";
    std::string message_id;
    std::string correlation_id;            // the trace id
    std::optional<int64_t> expiration_ms;  // per-message TTL (delay queues)
    bool persistent = true;
};

struct Delivery {
    std::string body;
    std::string exchange;
    std::string routing_key;
    std::string message_id;
    std::string correlation_id;
    uint64_t delivery_tag = 0;
    bool redelivered = false;
    int64_t death_count = 0;  // how often it was dead-lettered before (x-death), for bounded retries
};

struct QueueArgs {
    std::optional<std::string> dead_letter_exchange;
    std::optional<std::string> dead_letter_routing_key;
    std::optional<int64_t> message_ttl_ms;
    std::optional<std::string> queue_type;      // x-queue-type: "quorum" or "classic"
    bool at_least_once_dead_lettering = false;  // quorum queues only
};

struct ConnectionHandle;

// One AMQP connection with one channel. Not thread-safe: Publisher and Consumer serialise their use.
class Connection {
  public:
    // Connects and logs in to the first of the options' addresses that accepts; throws Error when none does.
    explicit Connection(const Options& options);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void declare_exchange(const std::string& name, const std::string& type);
    // Returns the number of ready messages in the queue.
    uint32_t declare_queue(const std::string& name, bool durable, bool exclusive, bool auto_delete,
                           const QueueArgs& args = {});
    // The queue's ready-message count, without declaring it (throws Error when it does not exist).
    uint32_t queue_depth(const std::string& name);
    void bind(const std::string& queue, const std::string& exchange, const std::string& routing_key);

    // Publisher confirms on; publish() then returns only once the broker has taken responsibility for the message.
    void enable_confirms();
    // Throws Error when the broker refuses (nack), cannot route (mandatory), or does not confirm in time.
    void publish(const std::string& exchange, const std::string& routing_key, const Message& message);

    void consume(const std::string& queue, uint16_t prefetch);
    // The next delivery, or nullopt after `timeout` with none. Throws Error when the connection fails.
    std::optional<Delivery> next(std::chrono::milliseconds timeout);
    void ack(uint64_t delivery_tag);
    void reject(uint64_t delivery_tag, bool requeue);

    // Handles heartbeats and pending frames while otherwise idle; throws Error when the connection is gone.
    void pump();

    const std::string& address() const { return address_; }  // host:port/vhost of the node it is connected to

  private:
    void open(const std::string& address);

    std::unique_ptr<ConnectionHandle> handle_;
    std::string address_;
    Options options_;
    bool confirms_ = false;
    uint64_t next_publish_tag_ = 1;
};

// The names of every exchange and queue (docs/messaging.md). The defaults keep the original's queue names `video`
// and `mp3`; AMQP_NAME_PREFIX puts a whole deployment (or one test) in a namespace of its own.
struct Topology {
    std::string video_queue = "video";
    std::string mp3_queue = "mp3";
    std::string status_exchange = "mp3c.status";  // topic: job.<status>
    std::string dead_exchange = "mp3c.dead";      // direct: routing key = the queue the message died in
    std::string gateway_status_queue = "gateway.status";
    std::string notification_failed_queue = "notification.failed";
    std::string notification_webhook_queue = "notification.webhook";  // webhook deliveries, retried on their own
    std::string notification_account_queue = "notification.account";  // account mails from auth (messages.hpp)
    // "quorum" (replicated on a cluster's nodes; the default) or "classic" (AMQP_QUEUE_TYPE): the type of every
    // durable queue. An existing queue's type cannot change (docs/operations.md, "From classic to quorum queues").
    std::string queue_type = "quorum";
    // false: the broker's definitions made the topology (Kubernetes, the local stack) and the services, whose users
    // may not declare, only use it (AMQP_DECLARE_TOPOLOGY).
    bool declare = true;

    static Topology with_prefix(const std::string& prefix);
};

// AMQP_NAME_PREFIX (default none), VIDEO_QUEUE and MP3_QUEUE (as the original; default video and mp3),
// AMQP_DECLARE_TOPOLOGY (default on), AMQP_QUEUE_TYPE (default quorum).
Topology topology_from_env(config::Env& env);

// Declares every exchange and queue of the topology, identically in every service (a queue declared with other
// arguments than an existing one is an error, so there is one definition); nothing when topology.declare is false.
// Messages go to a queue through its own exchanges, never the default one, so that a user's permission to write is
// permission to reach exactly the queues it must (a converter cannot put a message on notification.account).
void declare_topology(Connection& connection, const Topology& topology);

struct QueueDeclaration {
    std::string name;
    QueueArgs args;
};
// Every durable queue declare_topology declares, with its arguments: what the broker's definitions
// (deploy/kubernetes/base/rabbitmq-definitions.json) must hold, exactly, for the default names.
std::vector<QueueDeclaration> durable_queues(const Topology& topology);

namespace names {
// Delay tiers of the retry queues, in seconds: a message published to <queue>.retry (exchange) with routing key
// "<seconds>s" waits in the queue <queue>.retry.<seconds>s that long, then dead-letters back to <queue>.
inline const std::vector<int> kRetryDelays = {5, 30, 120};
std::string dead_queue(const std::string& queue);  // "<queue>.dead"
std::string retry_queue(const std::string& queue, int seconds);
// Where a message goes after its attempt number `failed_attempt` (1-based) failed: 5 s, 30 s, then 120 s.
std::string retry_queue_after(const std::string& queue, int failed_attempt);
std::string retry_exchange(const std::string& queue);  // "<queue>.retry" (direct)
std::string retry_key_after(int failed_attempt);       // "5s", "30s", "120s"
// The exchange whose messages go to a work queue (direct, routing key: the queue's name): "<queue>.in".
std::string inbox(const std::string& queue);
}  // namespace names

// A thread-safe publisher over one lazily opened connection: reconnects (with backoff) after the broker restarts,
// keeps heartbeats going while idle.
class Publisher {
  public:
    // With a topology, it is declared on every (re)connection, so the broker may lose its state and come back.
    explicit Publisher(Options options, std::optional<Topology> declare = std::nullopt);
    ~Publisher();

    // Throws Error when the message was not confirmed (the broker is down, refused it, or did not answer).
    void publish(const std::string& exchange, const std::string& routing_key, const Message& message);
    // nullopt when the broker cannot be asked.
    std::optional<uint32_t> queue_depth(const std::string& queue);
    Check check();  // Ok, or why RabbitMQ cannot be used

  private:
    Connection& connection();  // with mutex_ held
    void drop(const std::string& why);
    void keepalive();

    Options options_;
    std::optional<Topology> declare_;
    std::mutex mutex_;
    std::unique_ptr<Connection> connection_;
    std::chrono::steady_clock::time_point next_attempt_{};
    std::chrono::milliseconds backoff_{0};
    std::string last_error_;
    bool stopping_ = false;
    std::condition_variable stop_cv_;
    std::thread keepalive_;
};

// Consumes one queue on a thread of its own, reconnecting after failures. The handler's verdict decides: ack,
// requeue (redelivered later), or dead_letter (rejected without requeue: the queue's dead-letter route). A handler
// that throws is requeued after a pause, so that an outage does not spin.
class Consumer {
  public:
    enum class Outcome { ack, requeue, dead_letter };
    using Handler = std::function<Outcome(const Delivery&)>;
    // setup declares what the queue needs (declare_topology, a private queue...) and returns the queue's name.
    using Setup = std::function<std::string(Connection&)>;

    Consumer(Options options, Setup setup, uint16_t prefetch, Handler handler);
    // For handlers that run long (a conversion): the handler runs on a thread of its own while this one keeps the
    // connection serviced (heartbeats), so the broker does not drop it. Needs prefetch 1: nothing else may arrive
    // meanwhile.
    void keep_alive_during_handler() { keep_alive_during_handler_ = true; }
    ~Consumer();  // stop()
    void start();
    // Stops taking deliveries; waits for the handler in progress.
    void stop();
    bool connected() const { return connected_.load(); }

  private:
    void run();

    Options options_;
    Setup setup_;
    uint16_t prefetch_;
    Handler handler_;
    bool keep_alive_during_handler_ = false;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> connected_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
    std::thread thread_;
};

// The retry envelope of the consumers whose failures may pass (the converter, the notification service): a failed
// attempt goes to the queue's next delay tier (names::retry_queue_after) carrying its attempt count raised by one,
// and after the last attempt the message is dead-lettered. The message types keep the count (messages::next_attempt).
class RetryPolicy {
  public:
    RetryPolicy(Publisher& publisher, std::string queue, int max_attempts);

    int max_attempts() const { return max_attempts_; }
    bool exhausted(int attempt) const { return attempt >= max_attempts_; }
    // `attempt` failed: `next_body` (the message with attempt + 1) goes to the delay queue, keeping the delivery's
    // message and correlation ids, and the delivery is acked; after the last attempt, dead_letter instead. Throws
    // Error when the retry cannot be published (the delivery is then requeued by the consumer).
    Consumer::Outcome retry(const Delivery& delivery, int attempt, const std::string& next_body);
    // Looks at the message again after the first delay, without counting an attempt (someone else holds its work).
    Consumer::Outcome later(const Delivery& delivery);

  private:
    Publisher& publisher_;
    std::string queue_;
    int max_attempts_;
};

}  // namespace mp3c::amqp
