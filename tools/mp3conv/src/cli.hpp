#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mp3c/result.hpp"

// The command line of mp3conv, parsed without side effects (unit-tested), and the small pure helpers the commands use.
namespace mp3c::client {

// Exit statuses, the same for every command (documented in --help).
enum Exit : int {
    kOk = 0,
    kFailed = 1,         // a job failed, or a file could not be sent or saved
    kUsage = 2,          // the command line is wrong
    kUnreachable = 3,    // no answer from the server, or it is unavailable (503)
    kUnauthorized = 4,   // not logged in, or the session expired
    kRefused = 5,        // the server refused the request (too large, too many jobs, invalid input)
    kInterrupted = 130,  // stopped by Ctrl-C (128 + SIGINT, as a shell reports it)
};

struct Command {
    // login, logout, whoami, mails, convert, watch, jobs, status, download, retry, delete; help, version
    std::string name;
    std::vector<std::string>
        args;            // status, download, retry, delete: the job id or prefix, in lower case; mails: the choice
    std::string server;  // empty: MP3CONV_SERVER, then http://127.0.0.1:8080
    bool json = false;
    // convert, watch, download, retry: -o DIR; download --zip: -o FILE (or a directory for it)
    std::string output_dir;
    // convert, watch, retry: bitrate, quality, channels, sample_rate (the upload's form fields; whole numbers that
    // check_output_options accepts)
    std::map<std::string, std::string> fields;
    bool all = false;    // download --all: every done job
    bool zip = false;    // download --zip: every done job in one zip file
    bool force = false;  // convert, watch, download, retry: replace a file where an MP3 goes, not pick a free name
};

// The parsed command, or a one-line message for a usage error. "help" for -h, --help and `help`; "version" for
// --version.
Result<Command, std::string> parse_command_line(const std::vector<std::string>& argv);

// The help (every line at most 80 columns).
extern const char* const kUsageText;

// What a usage error prints: the problem, and where the help is.
std::string usage_error_text(const std::string& problem);

// Whether the conversion options are ones the converter accepts (mp3c::parse_output_options), in words naming the
// flag and the allowed values.
Check check_conversion_options(const std::map<std::string, std::string>& fields);

// A job id as given on the command line in lower case: its 24 hexadecimal characters, or a start of at least 4 of
// them; nullopt for anything else.
std::optional<std::string> job_id_argument(std::string_view text);
bool is_full_job_id(const std::string& id);

// Why a prefix names no single job: the ids it starts, none (unknown) or several (ambiguous).
struct UnresolvedPrefix {
    std::vector<std::string> candidates;
};
// The one job among `job_ids` (the caller's) whose id starts with `prefix`.
Result<std::string, UnresolvedPrefix> resolve_job_prefix(const std::string& prefix,
                                                         const std::vector<std::string>& job_ids);

// Where the MP3 of `input` goes: DIR (or the input's directory) / stem.mp3; never the input itself.
std::string output_path(const std::string& input, const std::string& output_dir);

// Where a job's MP3 is downloaded: DIR (empty: ".") / the upload name's stem.mp3 (download, retry).
std::string mp3_path(const std::string& output_dir, const std::string& upload_name);

// What is at a path: nothing (nullopt), or the size of what is there (a directory: a size no MP3 has).
using SizeOnDisk = std::function<std::optional<uint64_t>(const std::string& path)>;
SizeOnDisk real_size_on_disk();

// Where a download goes without replacing a file: `path`, else the first of "stem (2).ext", "stem (3).ext"... with
// nothing there. Names in `taken` (earlier MP3s of the same download --all, so shared names are numbered as in the
// server's zip) are passed over. With `mp3_size` (download --all), a file of that size ends the search: the MP3 is
// already there. With `force`, the first name not taken is replaced.
struct Placement {
    std::string path;
    bool already_there = false;
};
Placement place_download(const std::string& path, std::optional<uint64_t> mp3_size, bool force,
                         const SizeOnDisk& on_disk, const std::set<std::string>& taken = {});

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

// `mp3conv whoami`: the account (GET /account's answer) in a few lines, each ending with a newline.
std::string account_text(const nlohmann::json& account);

// "[##########----------]  50%" for a terminal.
std::string progress_bar(double fraction, int width = 24);
// One progress line that fits `columns` terminal columns: the label (a file name) is shortened with "…" when the
// line would be longer, so that redrawing it in place never wraps. Columns are counted per UTF-8 character.
std::string fit_progress_line(const std::string& label, const std::string& rest, size_t columns);
std::string human_bytes(uint64_t bytes);

}  // namespace mp3c::client
