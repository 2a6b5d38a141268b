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
        publisher_.publish(amqp::names::inbox(topology_.video_queue), topology_.video_queue,
                           {.body = job.to_body(), .message_id = job.job_id, .correlation_id = job.trace_id});
    }
    void announce(const messages::StatusEvent& event) override {
        publisher_.publish(topology_.status_exchange, event.routing_key(),
                           {.body = event.to_body(), .message_id = event.job_id, .correlation_id = event.trace_id});
    }
    void finished(const messages::Mp3Ready& ready) override {
        publisher_.publish(amqp::names::inbox(topology_.mp3_queue), topology_.mp3_queue,
                           {.body = ready.to_body(), .message_id = ready.job_id, .correlation_id = ready.trace_id});
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

std::shared_ptr<http::Upstream> auth_upstream(const GatewayConfig& c) {
    auto up = http::Upstream::from_url("auth", c.auth_url, c.auth_timeout, c.auth_max_in_flight);
    if (!up) throw std::invalid_argument("AUTH_SVC_ADDRESS: not an http:// URL: " + c.auth_url);
    return up;
}

}  // namespace

GatewayApp::GatewayApp(GatewayConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<metrics::Registry>()),
      pool_(config_.mysql),
      schema_(std::make_unique<mysql::SchemaGuard>(pool_, JobStore::migrations())),
      jobs_(pool_, schema_.get(), {.mp3 = config_.retention, .source = config_.source_retention}),
      authenticator_(config_.jwt_secret, &revocations_),
      revocation_poller_(revocations_, config_.auth_url, config_.revocation_poll_interval, config_.auth_timeout,
                         *registry_),
      login_rate_(config_.login_rate_per_minute, std::chrono::minutes(1)),
      account_rate_(config_.account_requests_per_hour, std::chrono::hours(1)),
      login_limit_{&login_rate_, "login_rate_limited", "LOGIN_RATE_PER_MINUTE"},
      account_limit_{&account_rate_, "account_rate_limited", "ACCOUNT_REQUESTS_PER_HOUR"},
      auth_(auth_upstream(config_)),
      videos_(storage::open_store(config_.storage_url, "videos")),
      mp3s_(storage::open_store(config_.storage_url, "mp3s")),
      publisher_(config_.amqp, config_.topology),
      queue_(std::make_unique<AmqpJobQueue>(publisher_, config_.topology)),
      dispatcher_(jobs_, *queue_, *registry_,
                  {.per_owner = config_.jobs_in_flight_per_user,
                   .lost_after = config_.dispatch_lost_after,
                   .ticket_key = config_.job_ticket_secret}),
      uploads_(backends(),
               {.max_upload_bytes = config_.max_upload_bytes,
                .max_queued_jobs = config_.max_queued_jobs,
                .user_quota_bytes = config_.user_quota_bytes,
                .max_uploads_per_user = config_.max_uploads_per_user,
                .max_waiting_jobs_per_user = config_.max_waiting_jobs_per_user,
                .reservation_renewal = config_.quota_reservation_renewal,
                .ticket_key = config_.job_ticket_secret},
               *registry_),
      job_handlers_(
          backends(), hub_,
          {.max_per_user = config_.max_event_streams_per_user, .lifetime = config_.event_stream_lifetime},
          {.max_waiting_jobs_per_user = config_.max_waiting_jobs_per_user, .max_retention = config_.max_retention}),
      downloads_(backends(), {.link_secret = config_.jwt_secret,
                              .link_ttl = config_.download_link_ttl,
                              .mail_link_secret = config_.job_ticket_secret,
                              .zip_max_bytes = config_.zip_max_bytes,
                              .zip_max_entries = config_.zip_max_entries,
                              .max_zips_per_user = config_.max_zips_per_user}),
      sweeper_(jobs_, *videos_, *mp3s_, *registry_,
               {.interval = config_.sweep_interval, .abandoned_interval = config_.abandoned_sweep_interval}),
      status_events_(jobs_, *mp3s_, hub_, dispatcher_, clock_, *registry_) {
    registry_->callback_gauge("gateway_database_connections", "Open connections to MariaDB.",
                              [this] { return static_cast<double>(pool_.open_connections()); });
    log::info("blob storage", {{"videos", videos_->describe()}, {"mp3s", mp3s_->describe()}});
}

GatewayApp::~GatewayApp() { stop_consumers(); }

Backends GatewayApp::backends() {
    return {.jobs = jobs_,
            .videos = *videos_,
            .mp3s = *mp3s_,
            .queue = *queue_,
            .dispatch = dispatcher_,
            .clock = clock_,
            .auth = authenticator_,
            .events = &hub_};
}

http::Router GatewayApp::router() {
    http::Router r;
    add_web_routes(r);
    constexpr http::RouteOptions kSmallBody{.max_body_bytes = 16 << 10};
    r.forward("POST", "/login", auth_.to("/login", &login_limit_));
    r.forward("POST", "/logout", auth_.to("/logout"));
    // "Keep me signed in": the HttpOnly cookie (path /session) passes here and nowhere else.
    struct SessionRoute {
        const char* method;
        const char* path;
        const AddressLimit* limit;
    };
    for (auto route : {SessionRoute{"POST", "/session/remember", nullptr},
                       SessionRoute{"POST", "/session", &login_limit_}, SessionRoute{"DELETE", "/session", nullptr}}) {
        auto f = auth_.to(route.path, route.limit);
        f.pass_headers.push_back("Cookie");
        f.return_headers.push_back("Set-Cookie");
        if (std::string_view(route.path) == "/session/remember") {
            // Only a token that is still valid here (not signed out, not ended by a password change) may start one:
            // auth checks signatures, the gateway's revocation list the rest.
            f.before = [this](Request& outgoing) -> std::optional<Response> {
                if (auto caller = authenticator_.authenticate(outgoing); !caller) return caller.error();
                return std::nullopt;
            };
        }
        r.forward(route.method, route.path, std::move(f), kSmallBody);
    }
    r.forward("POST", "/account/password", auth_.to("/account/password"), kSmallBody);
    // Each of these can make auth send a mail.
    for (const char* path : {"/register", "/verify/resend", "/password-reset"}) {
        r.forward("POST", path, auth_.to(path, &account_limit_), kSmallBody);
    }
    for (const char* path : {"/verify", "/password-reset/confirm"}) r.forward("POST", path, auth_.to(path), kSmallBody);
    r.forward("GET", "/verify", auth_.verification_link());
    // One-click unsubscribe (RFC 8058): a mail client POSTs the List-Unsubscribe address; a GET of it (a person
    // following the link, or a link scanner) changes nothing and shows the web page's question instead.
    r.forward("POST", "/unsubscribe", auth_.unsubscribe(), kSmallBody);
    r.add("GET", "/unsubscribe", [](Request& q) { return AuthProxy::unsubscribe_page(q); });
    // Account settings and the webhook secret: only for a token that is still valid here (not signed out, not revoked).
    for (auto [method, path] :
         {std::pair{"GET", "/account/webhook-secret"}, std::pair{"POST", "/account/webhook-secret/rotate"},
          std::pair{"GET", "/account/preferences"}, std::pair{"PATCH", "/account/preferences"}}) {
        auto f = auth_.to(path);
        f.before = [this](Request& outgoing) -> std::optional<Response> {
            if (auto caller = authenticator_.authenticate(outgoing); !caller) return caller.error();
            return std::nullopt;
        };
        r.forward(method, path, std::move(f), kSmallBody);
    }
    r.add("GET", "/account", [this](Request& q) {
        return job_handlers_.account(q, [this](const Caller& caller) { return uploads_.usage(caller); });
    });
    uploads_.add_routes(r);
    job_handlers_.add_routes(r);
    downloads_.add_routes(r);
    r.on_exception([](const std::exception& e) -> std::optional<Response> {
        if (auto* db = dynamic_cast<const mysql::Error*>(&e); db && db->unavailable()) {
            log::warn("database unavailable", {{"error", e.what()}});
            return database_unavailable();
        }
        if (auto* store = dynamic_cast<const storage::Error*>(&e); store && store->no_space()) {
            // The upload's partial file is gone with its writer; nothing is recorded.
            log::error("blob storage full", {{"error", e.what()}});
            return retry_later(507, "insufficient_storage",
                               "the server's file storage is full; nothing was kept, try again later", 60);
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
        // Both stores: each makes its GridFS indexes at its first good check.
        if (auto ok = videos_->check(); !ok) return "blob storage: " + ok.error();
        if (auto ok = mp3s_->check(); !ok) return "blob storage: " + ok.error();
        if (auto ok = publisher_.check(); !ok) return ok;
        return Ok{};
    };
}

void GatewayApp::start_consumers() {
    if (status_consumer_) return;
    revocation_poller_.start();
    dispatcher_.start();
    sweeper_.start();
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
            // The replica's own queue: the one thing its user may declare when the broker made the rest.
            if (topology.declare) c.declare_exchange(topology.status_exchange, "topic");
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
    dispatcher_.stop();
    sweeper_.stop();
    if (live_consumer_) live_consumer_->stop();
    if (status_consumer_) status_consumer_->stop();
}

}  // namespace mp3c::gateway
