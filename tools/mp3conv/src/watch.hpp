#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/result.hpp"

// `mp3conv watch DIR`: which files of a directory to convert, and what was done with them (DIR/.mp3conv-watch.json,
// so that a restart converts nothing twice). The decisions are pure (unit-tested over made-up listings); main.cpp
// does the looking, converting and saving.
namespace mp3c::client {

// The file watch keeps its state in, inside the watched directory (hidden: never converted itself).
inline constexpr const char* kWatchStateFile = ".mp3conv-watch.json";

// A regular file of the watched directory at one look.
struct WatchedFile {
    std::string name;  // in the directory, no path
    uint64_t size = 0;
    int64_t mtime_ns = 0;  // last modification, nanoseconds since the epoch
};

// What watch did with one version of a file (its size and modification time when it was taken).
struct WatchRecord {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::string job_id;  // empty when the server refused the upload
    // uploaded: converting (followed again after a restart); done: the MP3 is saved; failed: the conversion failed,
    // or its MP3 cannot be had; refused: the server refused the upload (or the file could not be read); existing:
    // there at the first start, left alone
    std::string status;
    std::string mp3;    // done: where the MP3 was saved
    std::string error;  // failed, refused: why
};
using WatchState = std::map<std::string, WatchRecord>;  // by file name

// Names watch never takes: hidden ones (".name", its own state file among them), files still being written by a
// browser or a copy (*.part, *.crdownload, *.tmp), and MP3s (its own output lands there when OUT is DIR).
bool watch_skips(const std::string& name);

// The files of the look `now` to convert, in name order: a name watch takes, with bytes, unchanged (size and
// modification time) since the look `before` (taken at least a poll interval earlier: the writer has stopped), and
// not recorded in `state` with that size and modification time (a file replaced by a new one is converted again).
std::vector<WatchedFile> files_to_convert(const std::vector<WatchedFile>& before, const std::vector<WatchedFile>& now,
                                          const WatchState& state);

// The state file's text, and the state read back from it (or what is wrong with it).
std::string watch_state_text(const WatchState& state);
Result<WatchState, std::string> parse_watch_state(const std::string& text);

// The regular files directly in `dir` (symbolic links followed); throws std::runtime_error when it cannot be read.
std::vector<WatchedFile> list_directory(const std::string& dir);
// DIR's state: nullopt when there is no state file yet (the first start), or what is wrong with the one there.
Result<std::optional<WatchState>, std::string> load_watch_state(const std::string& dir);
// Replaces DIR's state file atomically (a temporary hidden file, renamed); throws std::runtime_error.
void save_watch_state(const std::string& dir, const WatchState& state);

}  // namespace mp3c::client
