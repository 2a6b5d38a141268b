// auth: users, passwords and tokens. See services/auth/src/auth_config.hpp for the environment it reads.
#include "auth_app.hpp"
#include "mp3c/service_main.hpp"

int main() {
    using namespace mp3c;
    return service_main<auth::AuthConfig>("auth", auth::load_auth_config, [](auth::AuthConfig config) {
        auto server_options = config.server;
        auth::AuthApp app(std::move(config));
        http::Server server(server_options, app.router(), app.registry(), app.readiness());
        server.run_until_signal();
    });
}
