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
    std::string auth_url = "http://127.0.0.1:5000";  // from AUTH_SVC_ADDRESS ("auth:5000", as the original)
    std::chrono::milliseconds auth_timeout{5000};
    std::chrono::milliseconds revocation_poll_interval{2000};  // REVOCATION_POLL_INTERVAL
    std::string storage_url = "file:///var/lib/mp3converter/storage";
    uint64_t max_upload_bytes = 2ull << 30;
    uint64_t max_queued_jobs = 1000;              // 0: no backpressure
    uint64_t user_quota_bytes = 0;                // 0: no quota
    std::chrono::seconds download_link_ttl{600};  // DOWNLOAD_LINK_TTL: how long a signed MP3 link works
    log::Level log_level = log::Level::info;
};

// PORT (8080), MYSQL_* (database gateway), JWT_SECRET, AUTH_SVC_ADDRESS, AUTH_TIMEOUT, STORAGE_URL, AMQP_URL,
// AMQP_NAME_PREFIX, VIDEO_QUEUE, MP3_QUEUE, MAX_UPLOAD_BYTES, MAX_QUEUED_JOBS, USER_QUOTA_BYTES, DOWNLOAD_LINK_TTL,
// LOG_LEVEL, and the shared HTTP settings. Problems are recorded in env; call env.check() afterwards.
GatewayConfig load_gateway_config(config::Env& env);

}  // namespace mp3c::gateway
