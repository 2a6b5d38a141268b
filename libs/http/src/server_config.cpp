#include "mp3c/http_address.hpp"
#include "mp3c/http_config.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::http {

ServerOptions server_options_from_env(config::Env& env, const std::string& service, uint16_t default_port) {
    using std::chrono::milliseconds;
    ServerOptions o;
    o.service_name = service;
    o.port = env.port("PORT", default_port);
    o.bind_address = env.string("BIND_ADDRESS", "0.0.0.0");
    o.io_threads = static_cast<unsigned>(env.integer("HTTP_IO_THREADS", 2, 1, 64));
    o.worker_threads = static_cast<unsigned>(env.integer("HTTP_WORKER_THREADS", 8, 1, 256));
    o.max_header_bytes = static_cast<size_t>(env.bytes("HTTP_MAX_HEADER_BYTES", 16 * 1024));
    if (o.max_header_bytes < 1024 || o.max_header_bytes > (1u << 20)) {
        env.problem("HTTP_MAX_HEADER_BYTES", "must be between 1KiB and 1MiB");
    }
    o.idle_timeout = env.duration("HTTP_IDLE_TIMEOUT", milliseconds(60'000), milliseconds(100));
    o.header_timeout = env.duration("HTTP_HEADER_TIMEOUT", milliseconds(10'000), milliseconds(100));
    o.body_timeout = env.duration("HTTP_BODY_TIMEOUT", milliseconds(60'000), milliseconds(100));
    o.write_timeout = env.duration("HTTP_WRITE_TIMEOUT", milliseconds(60'000), milliseconds(100));
    o.drain_delay = env.duration("SHUTDOWN_DRAIN_DELAY", milliseconds(0));
    o.shutdown_grace = env.duration("SHUTDOWN_GRACE", milliseconds(20'000));
    auto proxies = env.string("TRUSTED_PROXIES", "");
    for (auto part : split(proxies, ',')) {
        auto text = std::string(trim(part));
        if (text.empty()) continue;
        if (Cidr::parse(text)) {
            o.trusted_proxies.push_back(text);
        } else {
            env.problem("TRUSTED_PROXIES", "'" + text + "' is not an IP address or CIDR network");
        }
    }
    return o;
}

}  // namespace mp3c::http
