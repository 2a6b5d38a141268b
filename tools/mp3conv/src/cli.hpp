#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/result.hpp"

// The command line of mp3conv, parsed without side effects (unit-tested), and the small pure helpers the commands use.
namespace mp3c::client {

// Exit statuses, the same for every command (documented in --help).
enum Exit : int {
    kOk = 0,
    kFailed = 1,        // a job failed, or a file could not be sent or saved
    kUsage = 2,         // the command line is wrong
    kUnreachable = 3,   // no answer from the server, or it is unavailable (503)
    kUnauthorized = 4,  // not logged in, or the session expired
    kRefused = 5,       // the server refused the request (too large, too many jobs, invalid input)
};

struct Command {
    std::string name;  // login, logout, convert, jobs, status, download, delete
    std::vector<std::string> args;
    std::string server;  // empty: MP3CONV_SERVER, then http://127.0.0.1:8080
    bool json = false;
    std::string output_dir;                     // convert, download: -o DIR
    std::map<std::string, std::string> fields;  // convert: bitrate, quality, channels (the upload's form fields)
};

// The parsed command, or a message for a usage error. "help" for -h/--help.
Result<Command, std::string> parse_command_line(const std::vector<std::string>& argv);

extern const char* const kUsageText;

// Where the MP3 of `input` goes: DIR (or the input's directory) / stem.mp3; never the input itself.
std::string output_path(const std::string& input, const std::string& output_dir);

// One server-sent event (the parts mp3conv reads).
struct SseEvent {
    std::string event;
    std::string data;
    std::optional<int> retry_ms;
    std::optional<std::string> id;  // the event's `id:`, sent back as Last-Event-ID when reconnecting
};

// Splits a text/event-stream into events as bytes arrive (any chunking).
class SseParser {
  public:
    std::vector<SseEvent> feed(std::string_view bytes);

  private:
    std::string buffer_;
    SseEvent current_;
    bool has_data_ = false;
};

// "[##########----------]  50%" for a terminal.
std::string progress_bar(double fraction, int width = 24);
std::string human_bytes(uint64_t bytes);

}  // namespace mp3c::client
