// gateway: the public API. See services/gateway/src/gateway_config.hpp for the environment it reads.
#include "gateway_app.hpp"
#include "mp3c/service_main.hpp"

int main() {
    using namespace mp3c;
    return service_main<gateway::GatewayConfig>(
        "gateway", gateway::load_gateway_config, [](gateway::GatewayConfig config) {
            auto server_options = config.server;
            gateway::GatewayApp app(std::move(config));
            http::Server server(server_options, app.router(), app.registry(), app.readiness());
            app.start_consumers();
            server.run_until_signal();
            app.stop_consumers();
        });
}
