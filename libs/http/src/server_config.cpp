#include "mp3c/http_address.hpp"
#include "mp3c/http_config.hpp"
#include "mp3c/settings.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::http {

ServerOptions server_options_from_env(config::Env& env, const std::string& service, uint16_t default_port) {
    using std::chrono::milliseconds;
    ServerOptions o;
    o.service_name = service;
    o.port = env.port(settings::kPort, default_port);
    o.bind_address = env.text(settings::kBindAddress);
    o.io_threads = static_cast<unsigned>(env.integer(settings::kIoThreads));
    o.worker_threads = static_cast<unsigned>(env.integer(settings::kWorkerThreads));
    o.max_header_bytes = static_cast<size_t>(env.bytes(settings::kMaxHeaderBytes));
    o.idle_timeout = env.duration(settings::kIdleTimeout);
    o.header_timeout = env.duration(settings::kHeaderTimeout);
    o.body_timeout = env.duration(settings::kBodyTimeout);
    o.write_timeout = env.duration(settings::kWriteTimeout);
    o.drain_delay = env.duration(settings::kDrainDelay);
    o.shutdown_grace = env.duration(settings::kShutdownGrace);
    auto proxies = env.text(settings::kTrustedProxies);
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
