#pragma once

#include <optional>
#include <string>

// The tokens mp3conv keeps between runs: one per server, in $MP3CONV_CONFIG_DIR, else $XDG_CONFIG_HOME/mp3conv, else
// ~/.config/mp3conv; the file is sessions.json, mode 0600, in a 0700 directory, replaced atomically.
namespace mp3c::client {

struct Session {
    std::string email;
    std::string token;
    std::string expires_at;  // as the server said, for messages
};

std::string config_dir();
std::optional<Session> load_session(const std::string& server);
void save_session(const std::string& server, const Session& session);  // throws std::runtime_error
void forget_session(const std::string& server);

}  // namespace mp3c::client
