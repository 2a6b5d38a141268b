// gateway: the public API. See services/gateway/src/gateway_config.hpp for the environment it reads.
#include <cstdio>

#include "gateway_app.hpp"
#include "mp3c/log.hpp"

int main() {
    using namespace mp3c;
    log::init("gateway");
    try {
        config::Env env;
        auto config = gateway::load_gateway_config(env);
        env.check();
        log::init("gateway", config.log_level);
        auto server_options = config.server;
        gateway::GatewayApp app(std::move(config));
        http::Server server(server_options, app.router(), app.registry(), app.readiness());
        app.start_consumers();
        server.run_until_signal();
        app.stop_consumers();
        return 0;
    } catch (const config::Error& e) {
        log::error("cannot start: invalid configuration", {{"error", e.what()}});
        std::fprintf(stderr, "gateway: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        log::error("cannot start", {{"error", e.what()}});
        return 1;
    }
}
