#pragma once

#include "mp3c/config.hpp"
#include "mp3c/http.hpp"

namespace mp3c::http {

// The server settings every service reads the same way: PORT, BIND_ADDRESS, HTTP_IO_THREADS, HTTP_WORKER_THREADS,
// HTTP_MAX_HEADER_BYTES, HTTP_IDLE_TIMEOUT, HTTP_HEADER_TIMEOUT, HTTP_BODY_TIMEOUT, HTTP_WRITE_TIMEOUT,
// SHUTDOWN_DRAIN_DELAY, SHUTDOWN_GRACE, TRUSTED_PROXIES (comma-separated CIDRs).
ServerOptions server_options_from_env(config::Env& env, const std::string& service, uint16_t default_port);

}  // namespace mp3c::http
