#include "watch.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace mp3c::client {

namespace {

constexpr int kStateVersion = 1;

bool ends_with(const std::string& text, std::string_view suffix) {
    if (text.size() < suffix.size()) return false;
    return std::equal(suffix.rbegin(), suffix.rend(), text.rbegin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
}

std::string state_path(const std::string& dir) { return dir + "/" + kWatchStateFile; }

struct DirClose {
    void operator()(DIR* d) const { ::closedir(d); }
};

}  // namespace

bool watch_skips(const std::string& name) {
    if (name.empty() || name[0] == '.') return true;
    for (std::string_view suffix : {".part", ".crdownload", ".tmp", ".mp3"}) {
        if (ends_with(name, suffix)) return true;
    }
    return false;
}

std::vector<WatchedFile> files_to_convert(const std::vector<WatchedFile>& before, const std::vector<WatchedFile>& now,
                                          const WatchState& state) {
    std::map<std::string, const WatchedFile*> earlier;
    for (const auto& f : before) earlier[f.name] = &f;
    std::vector<WatchedFile> ready;
    for (const auto& f : now) {
        if (watch_skips(f.name) || f.size == 0) continue;
        auto was = earlier.find(f.name);
        if (was == earlier.end() || was->second->size != f.size || was->second->mtime_ns != f.mtime_ns) continue;
        auto done = state.find(f.name);
        if (done != state.end() && done->second.size == f.size && done->second.mtime_ns == f.mtime_ns) continue;
        ready.push_back(f);
    }
    std::sort(ready.begin(), ready.end(), [](const WatchedFile& a, const WatchedFile& b) { return a.name < b.name; });
    return ready;
}

std::string watch_state_text(const WatchState& state) {
    auto or_null = [](const std::string& text) {
        return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
    };
    nlohmann::json files = nlohmann::json::object();
    for (const auto& [name, r] : state) {
        files[name] = nlohmann::json{{"size", r.size},     {"mtime_ns", r.mtime_ns}, {"job_id", or_null(r.job_id)},
                                     {"status", r.status}, {"mp3", or_null(r.mp3)},  {"error", or_null(r.error)}};
    }
    return nlohmann::json{{"version", kStateVersion}, {"files", files}}.dump(2) + "\n";
}

Result<WatchState, std::string> parse_watch_state(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("files") || !j["files"].is_object()) return std::string("not a watch state");
    if (j.value("version", 0) != kStateVersion) return std::string("a watch state of another version");
    auto text_of = [](const nlohmann::json& r, const char* key) {
        return r.contains(key) && r[key].is_string() ? r[key].get<std::string>() : std::string();
    };
    WatchState state;
    for (const auto& [name, r] : j["files"].items()) {
        if (!r.is_object() || !r.contains("size") || !r["size"].is_number_unsigned() || !r.contains("mtime_ns") ||
            !r["mtime_ns"].is_number_integer()) {
            return "the entry of " + name + " is damaged";
        }
        state[name] = {.size = r["size"].get<uint64_t>(),
                       .mtime_ns = r["mtime_ns"].get<int64_t>(),
                       .job_id = text_of(r, "job_id"),
                       .status = text_of(r, "status"),
                       .mp3 = text_of(r, "mp3"),
                       .error = text_of(r, "error")};
    }
    return state;
}

std::vector<WatchedFile> list_directory(const std::string& dir) {
    std::unique_ptr<DIR, DirClose> d(::opendir(dir.c_str()));
    if (!d) throw std::runtime_error("cannot read " + dir + ": " + std::strerror(errno));
    std::vector<WatchedFile> files;
    while (const dirent* e = ::readdir(d.get())) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::stat((dir + "/" + name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // gone, or not a file
        files.push_back({.name = name,
                         .size = static_cast<uint64_t>(st.st_size),
                         .mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec});
    }
    return files;
}

Result<std::optional<WatchState>, std::string> load_watch_state(const std::string& dir) {
    std::error_code ec;
    if (!std::filesystem::exists(state_path(dir), ec) && !ec) return std::optional<WatchState>();  // the first start
    std::ifstream in(state_path(dir));
    if (!in) return "cannot read " + state_path(dir);
    std::stringstream text;
    text << in.rdbuf();
    auto state = parse_watch_state(text.str());
    if (!state) return state_path(dir) + ": " + state.error();
    return std::optional<WatchState>(state.value());
}

void save_watch_state(const std::string& dir, const WatchState& state) {
    const std::string path = state_path(dir), temporary = path + ".tmp";
    std::string text = watch_state_text(state);
    FILE* f = std::fopen(temporary.c_str(), "w");
    if (f == nullptr) throw std::runtime_error("cannot write " + temporary + ": " + std::strerror(errno));
    bool written =
        std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
    written = std::fclose(f) == 0 && written;
    if (!written || std::rename(temporary.c_str(), path.c_str()) != 0) {
        std::remove(temporary.c_str());
        throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    }
}

}  // namespace mp3c::client
