#pragma once

#include <memory>
#include <optional>
#include <string>

#include "auth_proxy.hpp"
#include "gateway_config.hpp"
#include "job_events.hpp"
#include "job_store.hpp"
#include "mp3c/amqp.hpp"
#include "mp3c/http.hpp"
#include "mp3c/metrics.hpp"
#include "mp3c/mysql.hpp"
#include "mp3c/storage.hpp"
#include "mp3c/token.hpp"

namespace mp3c::gateway {

// Who is calling, from a verified token.
struct Caller {
    uint64_t user_id = 0;
    std::string email;
    bool admin = false;
};

// The public API: uploads into blob storage, jobs, their events, downloads; login and registration are passed to
// auth. Owns the connections to MariaDB, RabbitMQ and the blob stores.
class GatewayApp {
  public:
    explicit GatewayApp(GatewayConfig config);
    ~GatewayApp();

    http::Router router();
    http::ReadinessCheck readiness();
    std::shared_ptr<metrics::Registry> registry() const { return registry_; }
    mysql::SchemaGuard& schema() { return *schema_; }
    // Starts consuming status events (after the schema is usable, it applies them to the jobs table).
    void start_consumers();
    void stop_consumers();

  private:
    friend class UploadConsumer;

    // The caller, or the 401/403 response to send.
    std::variant<Caller, http::Response> authenticate(const http::Request& request) const;
    std::variant<http::Response, std::unique_ptr<http::BodyConsumer>> begin_upload(http::Request& request);
    http::Response list_jobs(http::Request& request);
    http::Response get_job(http::Request& request);
    http::Response delete_job(http::Request& request);
    http::Response job_events(http::Request& request);
    http::Response job_mp3(http::Request& request);
    // POST /jobs/{id}/link: a short-lived signed URL for that one MP3 (the web page's player and downloads: the token
    // never goes into a URL).
    http::Response create_link(http::Request& request);
    http::Response signed_mp3(http::Request& request, const std::string& signature);
    std::string link_signature(const std::string& job_id, uint64_t expires) const;
    http::Response download(http::Request& request);
    http::Response send_mp3(const http::Request& request, const Job& job);
    // The job if it exists and the caller may see it; else the 400/404 to answer.
    std::variant<Job, http::Response> visible_job(const std::string& id, const Caller& caller);
    http::Response not_ready() const;
    // Delete a blob, logging rather than failing: the job row is the truth, a leftover file is only disk space.
    void remove_blob(storage::BlobStore& store, const std::optional<std::string>& id);

    amqp::Consumer::Outcome on_status_event(const amqp::Delivery& delivery, bool update_database);

    GatewayConfig config_;
    std::string link_key_;  // signs download links; derived from JWT_SECRET so that nothing else needs configuring
    std::shared_ptr<metrics::Registry> registry_;
    mysql::Pool pool_;
    std::unique_ptr<mysql::SchemaGuard> schema_;
    JobStore jobs_;
    token::Signer signer_;
    AuthProxy auth_;
    std::unique_ptr<storage::BlobStore> videos_;
    std::unique_ptr<storage::BlobStore> mp3s_;
    amqp::Publisher publisher_;
    JobEventHub hub_;
    std::unique_ptr<amqp::Consumer> status_consumer_;
    std::unique_ptr<amqp::Consumer> live_consumer_;

    std::mutex depth_mutex_;
    std::optional<uint32_t> cached_depth_;
    std::chrono::steady_clock::time_point depth_checked_{};

    metrics::Family<metrics::Counter>& uploads_;
    metrics::Counter& upload_bytes_;
    metrics::Family<metrics::Counter>& events_;
};

}  // namespace mp3c::gateway
