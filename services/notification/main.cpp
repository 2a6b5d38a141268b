// notification: e-mails (and webhooks) when jobs finish or fail. See src/notifier.hpp for the environment it reads.
#include "mp3c/service_main.hpp"
#include "notifier.hpp"

int main() {
    using namespace mp3c;
    return service_main<notification::NotifierConfig>(
        "notification", notification::load_notifier_config, [](notification::NotifierConfig config) {
            auto admin = config.admin;
            notification::Notifier notifier(std::move(config));
            http::Server server(admin, http::Router(), notifier.registry(), notifier.readiness());
            notifier.start();
            server.run_until_signal();  // SIGTERM: the messages in progress finish, then the consumers stop
            notifier.stop();
            log::info("stopped");
        });
}
