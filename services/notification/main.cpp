// notification: e-mails (and webhooks) when jobs finish or fail. See src/notifier.hpp for the environment it reads.
#include "mp3c/service_main.hpp"
#include "notifier.hpp"

int main() {
    return mp3c::service_main("notification", [] {
        using namespace mp3c;
        config::Env env;
        auto config = notification::load_notifier_config(env);
        env.check();
        log::init("notification", config.log_level);
        auto admin = config.admin;
        notification::Notifier notifier(std::move(config));
        http::Server server(admin, http::Router(), notifier.registry(), notifier.readiness());
        notifier.start();
        server.run_until_signal();  // SIGTERM: the messages in progress finish, then the consumers stop
        notifier.stop();
        log::info("stopped");
    });
}
