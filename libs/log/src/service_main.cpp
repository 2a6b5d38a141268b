#include "mp3c/service_main.hpp"

#include <cstdio>

#include "mp3c/config.hpp"
#include "mp3c/log.hpp"

namespace mp3c {

int service_main(const std::string& name, const std::function<void()>& run) {
    log::init(name);
    try {
        run();
        return 0;
    } catch (const config::Error& e) {
        log::error("cannot start: invalid configuration", {{"error", e.what()}});
        std::fprintf(stderr, "%s: %s\n", name.c_str(), e.what());
        return 2;
    } catch (const std::exception& e) {
        log::error("cannot start", {{"error", e.what()}});
        return 1;
    }
}

}  // namespace mp3c
