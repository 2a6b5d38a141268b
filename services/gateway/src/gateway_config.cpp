#include "gateway_config.hpp"

#include "mp3c/http_config.hpp"
#include "mp3c/outbound.hpp"
#include "mp3c/settings.hpp"
#include "mp3c/token.hpp"

namespace mp3c::gateway {

GatewayConfig load_gateway_config(config::Env& env) {
    GatewayConfig c;
    c.server = http::server_options_from_env(env, "gateway", 8080);
    c.server.admin_port = env.port(settings::kAdminPort);
    c.mysql = mysql::options_from_env(env, "gateway");
    c.amqp = amqp::options_from_env(env, "gateway");
    c.topology = amqp::topology_from_env(env);
    c.jwt_secret = env.secret(token::settings::kJwtSecret, token::Signer::kMinimumSecretLength);
    c.job_ticket_secret = env.secret(token::settings::kJobTicketSecret);
    if (!c.job_ticket_secret.empty() && c.job_ticket_secret.size() < 32) {
        env.problem("JOB_TICKET_SECRET", "the secret is too short: at least 32 characters are required");
    }
    c.auth_url = outbound::service_url(env.text(settings::kAuthAddress));
    c.download_link_ttl = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kDownloadLinkTtl));
    c.retention = std::chrono::duration_cast<std::chrono::seconds>(env.duration(retention::settings::kRetention));
    c.source_retention =
        std::chrono::duration_cast<std::chrono::seconds>(env.duration(retention::settings::kSourceRetention));
    c.max_retention = std::chrono::duration_cast<std::chrono::seconds>(env.duration(settings::kMaxRetention));
    c.sweep_interval = env.duration(settings::kSweepInterval);
    c.zip_max_bytes = env.bytes(settings::kZipMaxBytes);
    c.zip_max_entries = static_cast<uint64_t>(env.integer(settings::kZipMaxEntries));
    c.max_zips_per_user = static_cast<uint64_t>(env.integer(settings::kMaxZipsPerUser));
    if (!http::Upstream::from_url("auth", c.auth_url, {}, 1)) {
        env.problem("AUTH_SVC_ADDRESS", "must be host:port or an http:// URL (the calls to auth are plain HTTP)");
    }
    c.auth_timeout = env.duration(settings::kAuthTimeout);
    c.auth_max_in_flight = static_cast<uint64_t>(env.integer(settings::kAuthMaxInFlight));
    c.login_rate_per_minute = static_cast<uint64_t>(env.integer(settings::kLoginRatePerMinute));
    c.account_requests_per_hour = static_cast<uint64_t>(env.integer(settings::kAccountRequestsPerHour));
    c.revocation_poll_interval = env.duration(settings::kRevocationPollInterval);
    c.storage_url = env.text(storage::settings::kStorageUrl);
    if (c.storage_url.rfind("file:///", 0) != 0 && c.storage_url.rfind("mongodb://", 0) != 0 &&
        c.storage_url.rfind("mongodb+srv://", 0) != 0) {
        env.problem("STORAGE_URL", "must be file:///absolute/path or a mongodb:// (or mongodb+srv://) URL");
    }
    c.max_upload_bytes = env.bytes(settings::kMaxUploadBytes);
    if (c.max_upload_bytes == 0) env.problem("MAX_UPLOAD_BYTES", "must be more than 0");
    c.max_queued_jobs = static_cast<uint64_t>(env.integer(settings::kMaxQueuedJobs));
    c.user_quota_bytes = env.bytes(settings::kUserQuotaBytes);
    c.jobs_in_flight_per_user = static_cast<uint64_t>(env.integer(settings::kJobsInFlightPerUser));
    c.max_uploads_per_user = static_cast<uint64_t>(env.integer(settings::kMaxUploadsPerUser));
    c.max_waiting_jobs_per_user = static_cast<uint64_t>(env.integer(settings::kMaxWaitingJobsPerUser));
    c.max_event_streams_per_user = static_cast<uint64_t>(env.integer(settings::kMaxEventStreamsPerUser));
    c.event_stream_lifetime = env.duration(settings::kEventStreamLifetime);
    c.log_level = log::level_from_env(env);
    return c;
}

}  // namespace mp3c::gateway
