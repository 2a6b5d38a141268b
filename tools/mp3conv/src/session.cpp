#include "session.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "mp3c/settings.hpp"

namespace mp3c::client {

namespace {

std::string file() { return config_dir() + "/sessions.json"; }

nlohmann::json read_all() {
    std::ifstream in(file());
    if (!in) return nlohmann::json::object();
    auto j = nlohmann::json::parse(in, nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
}

void write_all(const nlohmann::json& j) {
    std::string dir = config_dir();
    for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
        std::string part = slash == std::string::npos ? dir : dir.substr(0, slash);
        if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
            throw std::runtime_error("cannot create " + part + ": " + std::strerror(errno));
        }
        if (slash == std::string::npos) break;
    }
    std::string path = file(), temporary = path + ".tmp" + std::to_string(::getpid());
    int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot write " + temporary + ": " + std::strerror(errno));
    std::string text = j.dump(2) + "\n";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
    if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
        ::unlink(temporary.c_str());
        throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    }
}

}  // namespace

std::string config_dir() {
    if (const char* d = std::getenv(std::string(settings::kConfigDir.name).c_str()); d && *d) return d;
    if (const char* d = std::getenv("XDG_CONFIG_HOME"); d && *d) return std::string(d) + "/mp3conv";
    if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.config/mp3conv";
    return "/tmp/mp3conv-" + std::to_string(::getuid());
}

std::optional<Session> load_session(const std::string& server) {
    auto j = read_all();
    if (!j.contains(server) || !j[server].is_object()) return std::nullopt;
    const auto& s = j[server];
    if (!s.contains("token") || !s["token"].is_string()) return std::nullopt;
    return Session{s.value("email", ""), s["token"], s.value("expires_at", "")};
}

void save_session(const std::string& server, const Session& session) {
    auto j = read_all();
    j[server] = {{"email", session.email}, {"token", session.token}, {"expires_at", session.expires_at}};
    write_all(j);
}

void forget_session(const std::string& server) {
    auto j = read_all();
    if (j.erase(server) > 0) write_all(j);
}

}  // namespace mp3c::client
