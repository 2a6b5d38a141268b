#pragma once

#include <memory>

#include "auth_proxy.hpp"
#include "dispatcher.hpp"
#include "download_handlers.hpp"
#include "gateway_config.hpp"
#include "job_events.hpp"
#include "job_handlers.hpp"
#include "job_store.hpp"
#include "mp3c/amqp.hpp"
#include "mp3c/http.hpp"
#include "mp3c/metrics.hpp"
#include "mp3c/mysql.hpp"
#include "mp3c/storage.hpp"
#include "revocations.hpp"
#include "status_event_handler.hpp"
#include "sweeper.hpp"
#include "upload_handler.hpp"

namespace mp3c::gateway {

// The gateway's composition root: owns the connections to MariaDB, RabbitMQ and the blob stores, and wires them into
// the handlers of each resource (uploads, jobs, downloads, the web page, the auth pass-through, the status events).
class GatewayApp {
  public:
    explicit GatewayApp(GatewayConfig config);
    ~GatewayApp();

    http::Router router();
    http::ReadinessCheck readiness();
    std::shared_ptr<metrics::Registry> registry() const { return registry_; }
    mysql::SchemaGuard& schema() { return *schema_; }
    // Starts consuming status events (after the schema is usable, they are applied to the jobs table) and polling auth
    // for ended tokens.
    void start_consumers();
    void stop_consumers();

  private:
    Backends backends();

    GatewayConfig config_;
    std::shared_ptr<metrics::Registry> registry_;
    mysql::Pool pool_;
    std::unique_ptr<mysql::SchemaGuard> schema_;
    JobStore jobs_;
    RevocationList revocations_;
    Authenticator authenticator_;
    JobEventHub hub_;  // the latest status of recent jobs, for the event streams
    RevocationPoller revocation_poller_;
    TokenBuckets login_rate_;    // per client address
    TokenBuckets account_rate_;  // per client address: the requests that can send an account mail
    AddressLimit login_limit_;
    AddressLimit account_limit_;
    AuthProxy auth_;
    std::unique_ptr<storage::BlobStore> videos_;
    std::unique_ptr<storage::BlobStore> mp3s_;
    SystemClock clock_;
    amqp::Publisher publisher_;
    std::unique_ptr<JobQueue> queue_;
    Dispatcher dispatcher_;
    UploadHandler uploads_;
    JobHandlers job_handlers_;
    DownloadHandlers downloads_;
    Sweeper sweeper_;  // deletes what expired (RETENTION, SOURCE_RETENTION)
    StatusEventHandler status_events_;
    std::unique_ptr<amqp::Consumer> status_consumer_;
    std::unique_ptr<amqp::Consumer> live_consumer_;
};

}  // namespace mp3c::gateway
