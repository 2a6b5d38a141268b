// gateway: the public API. See services/gateway/src/gateway_config.hpp for the environment it reads.
#include "gateway_app.hpp"
#include "mp3c/service_main.hpp"

int main() {
    return mp3c::service_main("gateway", [] {
        using namespace mp3c;
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
    });
}
