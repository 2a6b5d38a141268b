#pragma once

#include <chrono>
#include <string>

#include "mp3c/amqp.hpp"
#include "mp3c/config.hpp"
#include "mp3c/http.hpp"
#include "mp3c/log.hpp"
#include "mp3c/mysql.hpp"

namespace mp3c::gateway {

struct GatewayConfig {
    http::ServerOptions server;
    mysql::Options mysql;
    amqp::Options amqp;
    amqp::Topology topology;
    std::string jwt_secret;
    std::string job_ticket_secret;  // JOB_TICKET_SECRET: signs what each job's messages ask of the notification service
    std::string auth_url = "http://127.0.0.1:5000";  // from AUTH_SVC_ADDRESS ("auth:5000", as the original)
    std::chrono::milliseconds auth_timeout{5000};
    uint64_t auth_max_in_flight = 64;        // AUTH_MAX_IN_FLIGHT
    uint64_t login_rate_per_minute = 0;      // per client address; 0: no limit (tests), 20 from the environment
    uint64_t account_requests_per_hour = 0;  // per client address; 0: no limit (tests), 10 from the environment
    std::chrono::milliseconds revocation_poll_interval{2000};  // REVOCATION_POLL_INTERVAL
    std::string storage_url = "file:///var/lib/mp3converter/storage";
    uint64_t max_upload_bytes = 2ull << 30;
    uint64_t max_queued_jobs = 1000;          // 0: no backpressure
    uint64_t user_quota_bytes = 0;            // 0: no quota
    uint64_t jobs_in_flight_per_user = 2;     // dispatched to the converters and not ended
    uint64_t max_uploads_per_user = 2;        // in progress at once
    uint64_t max_waiting_jobs_per_user = 50;  // queued or converting
    uint64_t max_event_streams_per_user = 8;  // open at once
    std::chrono::milliseconds event_stream_lifetime{600'000};
    std::chrono::milliseconds quota_reservation_renewal{60'000};  // not a setting: tests shorten it
    std::chrono::seconds dispatch_lost_after{300};                // not a setting: tests shorten it
    std::chrono::seconds download_link_ttl{600};                  // DOWNLOAD_LINK_TTL: how long a signed MP3 link works
    std::chrono::seconds retention{7 * 86400};  // RETENTION: MP3s are deleted this long after they were made; 0 keeps
    std::chrono::seconds source_retention{86400};  // SOURCE_RETENTION: a failed job's upload, kept for a retry; 0 keeps
    std::chrono::seconds max_retention{90 *
                                       86400};  // MAX_RETENTION: PATCH /jobs/{id} may keep a job this long from now
    std::chrono::milliseconds sweep_interval{60'000};  // SWEEP_INTERVAL
    // How often the sweeper looks for what uploads cut short left in the stores (no setting: an hour is right for
    // every store; tests shorten it).
    std::chrono::milliseconds abandoned_sweep_interval{3'600'000};
    uint64_t zip_max_bytes = 4ull << 30;  // ZIP_MAX_BYTES
    uint64_t zip_max_entries = 1000;      // ZIP_MAX_ENTRIES
    uint64_t max_zips_per_user = 2;       // MAX_ZIPS_PER_USER: streaming at once
    log::Level log_level = log::Level::info;
};

// PORT (8080), ADMIN_PORT (8090), MYSQL_* (database gateway), JWT_SECRET, AUTH_SVC_ADDRESS, AUTH_TIMEOUT, STORAGE_URL,
// AMQP_URL, AMQP_NAME_PREFIX, VIDEO_QUEUE, MP3_QUEUE, the limits (libs/config/settings.json's gateway group),
// DOWNLOAD_LINK_TTL, LOG_LEVEL, and the shared HTTP settings. Problems are recorded in env; call env.check()
// afterwards.
GatewayConfig load_gateway_config(config::Env& env);

}  // namespace mp3c::gateway
