#pragma once

#include <functional>
#include <string>

namespace mp3c {

// The frame of every service's main(): JSON logging under the service's name and the exit status convention. `run`
// reads the configuration (an invalid one throws config::Error from Env::check()) and serves until it stops.
// Returns 0 after a clean stop, 2 for an invalid configuration (every problem listed, also on stderr), 1 when the
// service cannot start.
int service_main(const std::string& name, const std::function<void()>& run);

}  // namespace mp3c
