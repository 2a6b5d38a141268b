#pragma once

#include <functional>
#include <string>
#include <utility>

#include "mp3c/config.hpp"
#include "mp3c/log.hpp"

namespace mp3c {

// The frame of every service's main(): JSON logging under the service's name and the exit status convention. `run`
// reads the configuration (an invalid one throws config::Error from Env::check()) and serves until it stops.
// Returns 0 after a clean stop, 2 for an invalid configuration (every problem listed, also on stderr), 1 when the
// service cannot start.
int service_main(const std::string& name, const std::function<void()>& run);

// The same, for a service whose configuration `load` reads from the environment: every problem is reported together
// before anything starts, logging starts at the configured level, then `run` gets the configuration.
template <class Config>
int service_main(const std::string& name, Config (*load)(config::Env&), const std::function<void(Config)>& run) {
    return service_main(name, [&] {
        config::Env env;
        Config config = load(env);
        env.check();
        log::init(name, config.log_level);
        run(std::move(config));
    });
}

}  // namespace mp3c
