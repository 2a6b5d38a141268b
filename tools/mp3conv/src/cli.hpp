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
    std::string name;  // login, logout, convert, jobs, status, download, retry, delete
    std::vector<std::string> args;
    std::string server;  // empty: MP3CONV_SERVER, then http://127.0.0.1:8080
    bool json = false;
    std::string output_dir;  // convert, download, retry: -o DIR; download --zip: -o FILE (or a directory for it)
    // convert, retry: bitrate, quality, channels, sample_rate (the upload's form fields; whole numbers)
    std::map<std::string, std::string> fields;
    bool all = false;  // download --all: every done job
    bool zip = false;  // download --zip: every done job in one zip file
};

// The parsed command, or a message for a usage error. "help" for -h/--help.
Result<Command, std::string> parse_command_line(const std::vector<std::string>& argv);

extern const char* const kUsageText;

// Where the MP3 of `input` goes: DIR (or the input's directory) / stem.mp3; never the input itself.
std::string output_path(const std::string& input, const std::string& output_dir);

// Where a job's MP3 is downloaded: DIR (empty: ".") / the upload name's stem.mp3 (download, retry).
std::string mp3_path(const std::string& output_dir, const std::string& upload_name);

// Where `download --all` puts the MP3s of jobs given oldest first: each at its mp3_path, a path an earlier job of the
// list took becoming "stem (2).mp3", "stem (3).mp3"... as in the server's zip, so a second run finds the same names.
std::vector<std::string> download_paths(const std::string& output_dir, const std::vector<std::string>& upload_names);

// The file name a Content-Disposition header offers (filename*=UTF-8'' first, then filename=), reduced to a base
// name; nullopt when there is none that is safe to create (empty, ".", "..", hidden, control characters).
std::optional<std::string> attachment_filename(const std::string& content_disposition);

// The body of POST /jobs/{id}/retry: empty (the job's options again), or a JSON object of the fields as numbers.
std::string retry_body(const std::map<std::string, std::string>& fields);

// One line of `mp3conv jobs`, from the job's JSON fields.
struct JobRow {
    std::string job_id;
    std::string status;
    int progress = 0;
    std::string created_at;                 // ISO-8601 UTC
    std::optional<std::string> expires_at;  // ISO-8601 UTC; nullopt: kept until deleted
    std::string filename;
};
// "2026-12-13T10:00:00.000Z" as "2026-12-13 10:00" (UTC, as given).
std::string utc_minutes(const std::string& iso8601);
// The table's header and lines (without a newline), at most `columns` wide: the file name is cut to fit.
std::string job_table_header();
std::string job_table_line(const JobRow& row, int columns = 80);

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
