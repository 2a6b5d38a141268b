#include "gateway_app.hpp"

#include <mutex>

#include "mp3c/crypto.hpp"
#include "mp3c/log.hpp"
#include "web_assets.hpp"

namespace mp3c::gateway {

namespace {

using http::Request;
using http::Response;
using namespace std::chrono_literals;

// The job queue in RabbitMQ: jobs on the `video` queue, status changes on the status exchange.
class AmqpJobQueue final : public JobQueue {
  public:
    AmqpJobQueue(amqp::Publisher& publisher, amqp::Topology topology)
        : publisher_(publisher), topology_(std::move(topology)) {}

    void submit(const messages::VideoJob& job) override {
        publisher_.publish("", topology_.video_queue,
                           {.body = job.to_body(), .message_id = job.job_id, .correlation_id = job.trace_id});
    }
    void announce(const messages::StatusEvent& event) override {
        publisher_.publish(topology_.status_exchange, event.routing_key(),
                           {.body = event.to_body(), .message_id = event.job_id, .correlation_id = event.trace_id});
    }
    // Asked of the broker at most once a second: every upload wants it.
    std::optional<uint32_t> depth() override {
        std::lock_guard lock(mutex_);
        if (std::chrono::steady_clock::now() - checked_ > 1s) {
            depth_ = publisher_.queue_depth(topology_.video_queue);
            checked_ = std::chrono::steady_clock::now();
        }
        return depth_;
    }

  private:
    amqp::Publisher& publisher_;
    amqp::Topology topology_;
    std::mutex mutex_;
    std::optional<uint32_t> depth_;
    std::chrono::steady_clock::time_point checked_{};
};

}  // namespace

GatewayApp::GatewayApp(GatewayConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<metrics::Registry>()),
      pool_(config_.mysql),
      schema_(std::make_unique<mysql::SchemaGuard>(pool_, JobStore::migrations())),
      jobs_(pool_, schema_.get()),
      authenticator_(config_.jwt_secret, &revocations_),
      revocation_poller_(revocations_, config_.auth_url, config_.revocation_poll_interval, config_.auth_timeout,
                         *registry_),
      auth_(config_.auth_url, config_.auth_timeout),
      videos_(storage::open_store(config_.storage_url, "videos")),
      mp3s_(storage::open_store(config_.storage_url, "mp3s")),
      publisher_(config_.amqp, config_.topology),
      queue_(std::make_unique<AmqpJobQueue>(publisher_, config_.topology)),
      uploads_(backends(),
               {.max_upload_bytes = config_.max_upload_bytes,
                .max_queued_jobs = config_.max_queued_jobs,
                .user_quota_bytes = config_.user_quota_bytes},
               *registry_),
      job_handlers_(backends(), hub_),
      downloads_(backends(), config_.jwt_secret, config_.download_link_ttl),
      status_events_(jobs_, *mp3s_, hub_, clock_, *registry_) {
    registry_->callback_gauge("gateway_database_connections", "Open connections to MariaDB.",
                              [this] { return static_cast<double>(pool_.open_connections()); });
    log::info("blob storage", {{"videos", videos_->describe()}, {"mp3s", mp3s_->describe()}});
}

GatewayApp::~GatewayApp() { stop_consumers(); }

Backends GatewayApp::backends() {
    return {
        .jobs = jobs_, .videos = *videos_, .mp3s = *mp3s_, .queue = *queue_, .clock = clock_, .auth = authenticator_};
}

http::Router GatewayApp::router() {
    http::Router r;
    add_web_routes(r);
    r.add("POST", "/login", [this](Request& q) { return auth_.forward(q, "/login"); });
    r.add("POST", "/register", [this](Request& q) { return auth_.forward(q, "/register"); },
          {.max_body_bytes = 16 << 10});
    r.add("POST", "/logout", [this](Request& q) { return auth_.forward(q, "/logout"); });
    r.add("POST", "/account/password", [this](Request& q) { return auth_.forward(q, "/account/password"); },
          {.max_body_bytes = 16 << 10});
    for (const char* path : {"/verify", "/verify/resend", "/password-reset", "/password-reset/confirm"}) {
        r.add("POST", path, [this, path](Request& q) { return auth_.forward(q, path); }, {.max_body_bytes = 16 << 10});
    }
    r.add("GET", "/verify", [this](Request& q) { return auth_.follow_verification_link(q); });
    // The webhook secret is handed only to a token that is still valid here (not signed out, not revoked).
    for (auto [method, path] :
         {std::pair{"GET", "/account/webhook-secret"}, std::pair{"POST", "/account/webhook-secret/rotate"}}) {
        r.add(method, path, [this, path](Request& q) {
            if (auto caller = authenticator_.authenticate(q); !caller) return caller.error();
            return auth_.forward(q, path);
        });
    }
    uploads_.add_routes(r);
    job_handlers_.add_routes(r);
    downloads_.add_routes(r);
    r.on_exception([](const std::exception& e) -> std::optional<Response> {
        if (auto* db = dynamic_cast<const mysql::Error*>(&e); db && db->unavailable()) {
            log::warn("database unavailable", {{"error", e.what()}});
            return database_unavailable();
        }
        if (dynamic_cast<const storage::Error*>(&e) != nullptr) {
            log::error("blob storage failed", {{"error", e.what()}});
            return retry_later(503, "storage_unavailable", "file storage is unavailable, try again shortly", 10);
        }
        return std::nullopt;
    });
    return r;
}

http::ReadinessCheck GatewayApp::readiness() {
    return [this]() -> Check {
        if (!schema_->ready()) return std::string("database schema not ready (database unreachable?)");
        if (auto ok = pool_.check(); !ok) return ok;
        if (auto ok = videos_->check(); !ok) return "blob storage: " + ok.error();
        if (auto ok = publisher_.check(); !ok) return ok;
        return Ok{};
    };
}

void GatewayApp::start_consumers() {
    if (status_consumer_) return;
    revocation_poller_.start();
    auto topology = config_.topology;
    auto options = config_.amqp;
    options.connection_name = "gateway-status";
    status_consumer_ = std::make_unique<amqp::Consumer>(
        options,
        [topology](amqp::Connection& c) {
            amqp::declare_topology(c, topology);
            return topology.gateway_status_queue;
        },
        16, [this](const amqp::Delivery& d) { return status_events_.handle(d.body, true); });
    // Every replica also hears every event, for the event streams of the clients connected to it.
    std::string live_queue = topology.gateway_status_queue + ".live." + crypto::random_hex(6);
    options.connection_name = "gateway-live";
    live_consumer_ = std::make_unique<amqp::Consumer>(
        options,
        [topology, live_queue](amqp::Connection& c) {
            c.declare_exchange(topology.status_exchange, "topic");
            c.declare_queue(live_queue, /*durable=*/false, /*exclusive=*/true, /*auto_delete=*/true);
            c.bind(live_queue, topology.status_exchange, "job.*");
            return live_queue;
        },
        64, [this](const amqp::Delivery& d) { return status_events_.handle(d.body, false); });
    status_consumer_->start();
    live_consumer_->start();
}

void GatewayApp::stop_consumers() {
    revocation_poller_.stop();
    if (live_consumer_) live_consumer_->stop();
    if (status_consumer_) status_consumer_->stop();
}

}  // namespace mp3c::gateway
