// auth: users, passwords and tokens. See services/auth/src/auth_config.hpp for the environment it reads.
#include <cstdio>

#include "auth_app.hpp"
#include "mp3c/log.hpp"

int main() {
    using namespace mp3c;
    log::init("auth");
    try {
        config::Env env;
        auto config = auth::load_auth_config(env);
        env.check();
        log::init("auth", config.log_level);
        auto server_options = config.server;
        auth::AuthApp app(std::move(config));
        http::Server server(server_options, app.router(), app.registry(), app.readiness());
        server.run_until_signal();
        return 0;
    } catch (const config::Error& e) {
        log::error("cannot start: invalid configuration", {{"error", e.what()}});
        std::fprintf(stderr, "auth: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        log::error("cannot start", {{"error", e.what()}});
        return 1;
    }
}
