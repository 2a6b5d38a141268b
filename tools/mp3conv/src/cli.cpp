#include "cli.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "mp3c/output_options.hpp"

namespace mp3c::client {

// Written for an 80-column terminal (a unit test holds every line to it).
const char* const kUsageText = R"(usage: mp3conv [--server URL] [--json] COMMAND [ARGS]

commands:
  login EMAIL          log in: checks the server, then reads the password (from
                       the terminal without echo, or from standard input); the
                       session is kept in ~/.config/mp3conv
  logout               end the session, at the server and here
  whoami               who is logged in, and the account's usage and limits
  mails [each|summary|off]
                       the e-mails about your jobs: one per finished or failed
                       file (each), one summary per batch of uploads
                       (summary), or none (off); without a value, the choice
                       now
  convert FILE... [-o DIR] [--force] [CONVERSION OPTIONS]
                       upload each file, follow its conversion and download the
                       MP3 next to the file (or into DIR); Ctrl-C stops waiting,
                       not the conversion
  watch DIR [-o OUT] [--force] [CONVERSION OPTIONS]
                       convert each file that comes into DIR once it has
                       stopped growing (not hidden or partial files, not MP3s;
                       files there at the first start are left alone), MP3s
                       into OUT (default: DIR), until Ctrl-C; what was done is
                       kept in DIR/.mp3conv-watch.json, so a restart skips it
  jobs                 your jobs, newest first, with when their files are
                       deleted (EXPIRES, UTC; "-": kept until you delete them)
  status ID            one job
  download ID [-o DIR] [--force]
                       the MP3 of a finished job, into DIR (default: the
                       current directory)
  download --all [-o DIR] [--force]
                       the MP3s of all your finished jobs, one after another,
                       into DIR (default: the current directory); an MP3
                       already there with the same size is skipped
  download --zip [-o FILE]
                       the MP3s of all your finished jobs in one zip file
                       (default: the name the server gives it, in the current
                       directory; -o DIR: that name in DIR)
  retry ID [-o DIR] [--force] [CONVERSION OPTIONS]
                       convert a failed job's upload again, with its options or
                       the ones given, follow it and download the MP3 into DIR
                       (default: the current directory); possible while the
                       server keeps the upload (a day after the failure by
                       default)
  delete ID            cancel a queued or converting job, or delete an ended one
  help                 this help (also -h, --help)

  ID is a job's id, or a start of it that no other job of yours has (at least 4
  characters, as in git). A download never replaces a file: the MP3 gets a free
  name ("talk (2).mp3") and mp3conv says so, unless --force is given.

options:
  --server URL         the gateway (default: $MP3CONV_SERVER, else
                       http://127.0.0.1:8080)
  --json               machine-readable output on standard output
  --version            the version of mp3conv

conversion options (convert, watch, retry):
  --bitrate N          constant bitrate in kb/s: 64, 80, 96, 112, 128, 160,
                       192 (default), 224, 256 or 320
  --quality Q          variable bitrate, LAME quality 0 (best) to 9 (smallest)
  --channels C         1 or 2 (default: the source's, at most 2)
  --mono               one channel (--channels 1)
  --sample-rate R      in Hz: 8000, 11025, 12000, 16000, 22050, 24000, 32000,
                       44100 (default) or 48000
  --start T, --end T   keep only this part: seconds (90, 12.5) or
                       [hh:]mm:ss[.fff] (1:30, 1:02:03.5)
  --chapters C         keep (default: the source's chapters), split (also one
                       MP3 per chapter, saved in a folder named after the MP3)
                       or none
  --cover C            auto (default: the source's own picture) or none
  --loudness LUFS      even loudness (EBU R128): -31 to -5, such as -16 for
                       podcasts or -14 for streaming; off to end it (retry)
  --true-peak DBTP     with --loudness: the peak ceiling, -9 to 0 (default -1)
  --title T, --artist A, --album A, --genre G
                       the MP3's tags (the source's are kept otherwise)
  --year YYYY          the year tag
  --track N[/TOTAL]    the track number tag, such as 3/12

exit status:
  0    done
  1    a job failed, a file could not be read or saved, or no job has that ID
  2    usage (also an ID that more than one job starts with)
  3    the server cannot be reached, or is unavailable
  4    not logged in, or the session expired (run mp3conv login)
  5    refused by the server (too large, too many jobs, a job that cannot be
       retried)
  130  stopped by Ctrl-C
)";

namespace {

// The options' values are sent as numbers (form fields, the retry's JSON).
bool whole_number(const std::string& v) {
    return !v.empty() && v.size() <= 9 &&
           std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

bool is_tag_flag(const std::string& a) {
    return a == "--title" || a == "--artist" || a == "--album" || a == "--year" || a == "--track" || a == "--genre";
}

// Flags whose value is text, passed on as given (the server's rules check it).
bool is_text_flag(const std::string& a) {
    return is_tag_flag(a) || a == "--start" || a == "--end" || a == "--chapters" || a == "--cover" ||
           a == "--loudness" || a == "--true-peak";
}

// A flag's form field: --sample-rate is sample_rate, --true-peak true_peak.
std::string field_of(const std::string& flag) {
    std::string field = flag.substr(2);
    std::replace(field.begin(), field.end(), '-', '_');
    return field;
}

bool is_text(const std::string& field) {
    std::string flag = "--" + field;
    std::replace(flag.begin(), flag.end(), '_', '-');
    return is_text_flag(flag);
}

// Reads the option argv[i] (moving i past its value) into c; "help" and "version" end the reading.
Check read_option(const std::vector<std::string>& argv, size_t& i, Command& c) {
    const std::string& a = argv[i];
    auto value = [&]() -> std::optional<std::string> {
        if (i + 1 >= argv.size()) return std::nullopt;
        return argv[++i];
    };
    if (a == "-h" || a == "--help") {
        c.name = "help";
    } else if (a == "--version") {
        c.name = "version";
    } else if (a == "--force") {
        c.force = true;
    } else if (a == "--json") {
        c.json = true;
    } else if (a == "--all") {
        c.all = true;
    } else if (a == "--zip") {
        c.zip = true;
    } else if (a == "--mono") {
        c.fields["channels"] = "1";
    } else if (a == "--server") {
        auto v = value();
        if (!v) return std::string("--server needs a URL");
        c.server = *v;
    } else if (a == "-o" || a == "--output") {
        auto v = value();
        if (!v) return a + " needs a directory (or, with download --zip, a file)";
        c.output_dir = *v;
    } else if (a == "--bitrate" || a == "--quality" || a == "--channels" || a == "--sample-rate") {
        auto v = value();
        if (!v) return a + " needs a value";
        if (!whole_number(*v)) return a + " needs a whole number";
        c.fields[field_of(a)] = *v;
    } else if (is_text_flag(a)) {
        auto v = value();
        if (!v) return a + " needs a value";
        c.fields[field_of(a)] = *v;
    } else {
        return "unknown option " + a;
    }
    return Ok{};
}

// The command's arguments: how many it takes, and job ids that can be one.
Check check_arguments(Command& c) {
    auto want = [&](size_t n, const std::string& what) -> Check {
        if (c.args.size() != n) return c.name + " takes " + what;
        return Ok{};
    };
    if (c.name == "login") return want(1, "one e-mail address");
    if (c.name == "convert" && c.args.empty()) return std::string("convert needs at least one file");
    if (c.name == "convert") return Ok{};
    if (c.name == "watch") return want(1, "one directory");
    if (c.name == "jobs" || c.name == "logout" || c.name == "whoami") return want(0, "no arguments");
    if (c.name == "mails") {
        if (c.args.size() > 1) return std::string("mails takes at most one value: each, summary or off");
        if (!c.args.empty() && c.args[0] != "each" && c.args[0] != "summary" && c.args[0] != "off") {
            return "'" + c.args[0] + "' is not a choice of mails: each, summary or off";
        }
        return Ok{};
    }
    if (c.name == "download" && c.all && c.zip) return std::string("--all and --zip exclude each other");
    if (c.name == "download" && (c.all || c.zip))
        return want(0, c.all ? "no job id with --all" : "no job id with --zip");
    if (c.name == "status" || c.name == "download" || c.name == "retry" || c.name == "delete") {
        if (Check one = want(1, "one job id"); !one) return one;
        auto id = job_id_argument(c.args[0]);
        if (!id) {
            return "'" + c.args[0] +
                   "' is not a job id: give its 24 hexadecimal characters, or a start of at least 4 of them";
        }
        c.args[0] = *id;
        return Ok{};
    }
    return "unknown command '" + c.name + "'";
}

// The options: which commands have them, and those that exclude each other.
Check check_options(const Command& c) {
    const bool converts = c.name == "convert" || c.name == "watch" || c.name == "retry";
    if (c.fields.count("bitrate") && c.fields.count("quality"))
        return std::string("--bitrate and --quality exclude each other");
    if (!c.fields.empty() && !converts)
        return std::string(
            "--bitrate, --quality, --channels, --mono, --sample-rate, --start, --end, --chapters, --cover, "
            "--loudness, --true-peak and the tags are options of convert, watch and retry");
    if (!c.output_dir.empty() && !converts && c.name != "download")
        return std::string("-o is an option of convert, watch, download and retry");
    if ((c.all || c.zip) && c.name != "download") return std::string("--all and --zip are options of download");
    if (c.force && (c.zip || (!converts && c.name != "download")))
        return std::string("--force is an option of convert, watch, retry and download (not --zip)");
    return check_conversion_options(c.fields);
}

}  // namespace

Result<Command, std::string> parse_command_line(const std::vector<std::string>& argv) {
    Command c;
    std::vector<std::string> positional;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.size() < 2 || a[0] != '-') {
            positional.push_back(a);
            continue;
        }
        Check read = read_option(argv, i, c);
        if (!read) return read.error();
        if (c.name == "help" || c.name == "version") return c;
    }
    if (positional.empty()) return std::string("no command given");
    c.name = positional[0];
    if (c.name == "help") return c;  // `help` and anything after it: the help
    c.args.assign(positional.begin() + 1, positional.end());
    if (Check arguments = check_arguments(c); !arguments) return arguments.error();
    if (Check options = check_options(c); !options) return options.error();
    return c;
}

std::string usage_error_text(const std::string& problem) {
    return "mp3conv: " + problem + "\nrun 'mp3conv --help' for usage\n";
}

Check check_conversion_options(const std::map<std::string, std::string>& fields) {
    // Each field alone first, so that the message names the flag the user typed.
    for (const auto& [name, value] : fields) {
        std::map<std::string, std::string> one = {{name, value}};
        if (name == "true_peak" && fields.count("loudness")) one["loudness"] = "-16";  // a ceiling needs a target
        if (auto checked = parse_output_options(one); !checked) {
            std::string flag = "--" + name;
            std::replace(flag.begin(), flag.end(), '_', '-');
            return flag + " " + value + ": " + checked.error();
        }
    }
    if (auto all = parse_output_options(fields); !all) return all.error();
    return Ok{};
}

namespace {

constexpr size_t kJobIdLength = 24;  // the gateway's ids: 24 hexadecimal characters
constexpr size_t kShortestPrefix = 4;

}  // namespace

std::optional<std::string> job_id_argument(std::string_view text) {
    if (text.size() < kShortestPrefix || text.size() > kJobIdLength) return std::nullopt;
    std::string id;
    for (char ch : text) {
        if (!std::isxdigit(static_cast<unsigned char>(ch))) return std::nullopt;
        id += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    return id;
}

bool is_full_job_id(const std::string& id) { return id.size() == kJobIdLength; }

Result<std::string, UnresolvedPrefix> resolve_job_prefix(const std::string& prefix,
                                                         const std::vector<std::string>& job_ids) {
    std::set<std::string> matches;
    for (const auto& id : job_ids) {
        if (id.compare(0, prefix.size(), prefix) == 0) matches.insert(id);
    }
    if (matches.size() == 1) return *matches.begin();
    return UnresolvedPrefix{{matches.begin(), matches.end()}};
}

std::string output_path(const std::string& input, const std::string& output_dir) {
    namespace fs = std::filesystem;
    fs::path in(input);
    fs::path dir = output_dir.empty() ? in.parent_path() : fs::path(output_dir);
    fs::path out = dir / (in.stem().string() + ".mp3");
    std::error_code ec;
    if (out == in || (fs::exists(in, ec) && fs::exists(out, ec) && fs::equivalent(out, in, ec))) {
        out = dir / (in.stem().string() + ".converted.mp3");
    }
    return out.string();
}

std::string mp3_path(const std::string& output_dir, const std::string& upload_name) {
    std::string name = std::filesystem::path(upload_name).filename().string();
    if (name.empty() || name == "." || name == "..") name = "job";
    return output_path((output_dir.empty() ? std::string(".") : output_dir) + "/" + name, "");
}

SizeOnDisk real_size_on_disk() {
    return [](const std::string& path) -> std::optional<uint64_t> {
        std::error_code ec;
        auto status = std::filesystem::symlink_status(path, ec);
        if (ec || !std::filesystem::exists(status)) return std::nullopt;
        if (!std::filesystem::is_regular_file(status)) return std::numeric_limits<uint64_t>::max();
        uint64_t size = std::filesystem::file_size(path, ec);
        return ec ? std::numeric_limits<uint64_t>::max() : size;
    };
}

Placement place_download(const std::string& path, std::optional<uint64_t> mp3_size, bool force,
                         const SizeOnDisk& on_disk, const std::set<std::string>& taken) {
    const std::filesystem::path first(path);
    for (int n = 1;; ++n) {
        std::string candidate = n == 1 ? path
                                       : (first.parent_path() / (first.stem().string() + " (" + std::to_string(n) +
                                                                 ")" + first.extension().string()))
                                             .string();
        if (taken.count(candidate) > 0) continue;
        std::optional<uint64_t> there = on_disk(candidate);
        if (!there) return {candidate, false};
        if (mp3_size && *there == *mp3_size) return {candidate, true};
        if (force) return {candidate, false};
    }
}

namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

// The value of the parameter `name` (lower case) of a header such as Content-Disposition, unquoted; "" when absent.
std::string header_parameter(std::string_view header, std::string_view name) {
    for (size_t i = header.find(';'); i != std::string_view::npos;) {
        size_t equals = header.find('=', i + 1);
        if (equals == std::string_view::npos) return "";
        if (size_t next = header.find(';', i + 1); next < equals) {  // a parameter without a value
            i = next;
            continue;
        }
        std::string key = lower(trim(header.substr(i + 1, equals - i - 1)));
        size_t at = equals + 1;
        while (at < header.size() && header[at] == ' ') ++at;
        std::string value;
        if (at < header.size() && header[at] == '"') {
            for (++at; at < header.size() && header[at] != '"'; ++at) {
                if (header[at] == '\\' && at + 1 < header.size()) ++at;
                value += header[at];
            }
            i = header.find(';', at);
        } else {
            i = header.find(';', at);
            value = trim(header.substr(at, i == std::string_view::npos ? std::string_view::npos : i - at));
        }
        if (key == name) return value;
    }
    return "";
}

// An RFC 5987 value ("UTF-8''holiday%20video.mp3") decoded; "" for another charset or a malformed one.
std::string decode_extended(const std::string& value) {
    size_t quote = value.find('\'');
    size_t second = quote == std::string::npos ? quote : value.find('\'', quote + 1);
    if (second == std::string::npos || lower(value.substr(0, quote)) != "utf-8") return "";
    std::string out;
    for (size_t i = second + 1; i < value.size(); ++i) {
        if (value[i] != '%') {
            out += value[i];
            continue;
        }
        if (i + 2 >= value.size() || !std::isxdigit(static_cast<unsigned char>(value[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(value[i + 2])))
            return "";
        out += static_cast<char>(std::stoi(value.substr(i + 1, 2), nullptr, 16));
        i += 2;
    }
    return out;
}

}  // namespace

std::optional<std::string> attachment_filename(const std::string& content_disposition) {
    std::string name = decode_extended(header_parameter(content_disposition, "filename*"));
    if (name.empty()) name = header_parameter(content_disposition, "filename");
    size_t slash = name.find_last_of("/\\");
    if (slash != std::string::npos) name.erase(0, slash + 1);
    if (name.empty() || name[0] == '.') return std::nullopt;
    for (char ch : name) {
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return std::nullopt;
    }
    return name;
}

std::string retry_body(const std::map<std::string, std::string>& fields) {
    if (fields.empty()) return "";
    nlohmann::json body = nlohmann::json::object();
    for (const auto& [name, value] : fields) {
        if (is_text(name)) {
            body[name] = value;
        } else {
            body[name] = std::stoi(value);  // whole numbers (parse_command_line)
        }
    }
    return body.dump();
}

std::string utc_minutes(const std::string& iso8601) {
    std::string out = iso8601.substr(0, 16);  // 2026-12-13T10:00
    if (out.size() > 10 && out[10] == 'T') out[10] = ' ';
    return out;
}

namespace {

std::string pad(std::string text, size_t width) {
    if (text.size() < width) text.append(width - text.size(), ' ');
    return text;
}

// `text` in at most `width` characters (UTF-8 code points), cut with "…"; control characters shown as '?'.
std::string fit(const std::string& text, int width) {
    std::vector<std::string> characters;
    for (char ch : text) {
        auto u = static_cast<unsigned char>(ch);
        if ((u & 0xC0) == 0x80 && !characters.empty()) {
            characters.back() += ch;
        } else {
            characters.emplace_back(1, u < 0x20 || u == 0x7f ? '?' : ch);
        }
    }
    if (width <= 0) return "";
    if (characters.size() > static_cast<size_t>(width)) {
        characters.resize(width - 1);
        characters.emplace_back("…");
    }
    std::string out;
    for (const auto& c : characters) out += c;
    return out;
}

// JOB STATUS % CREATED EXPIRES FILE: 24 + 10 + 3 + 11 + 16 and a space after each, 11 columns left of 80 for the file.
std::string job_columns(const std::string& id, const std::string& status, const std::string& progress,
                        const std::string& created, const std::string& expires) {
    std::string percent = progress.size() < 3 ? std::string(3 - progress.size(), ' ') + progress : progress;
    return pad(id, 24) + " " + pad(status, 10) + " " + percent + " " + pad(created, 11) + " " + pad(expires, 16) + " ";
}

}  // namespace

std::string job_table_header() { return job_columns("JOB", "STATUS", "%", "CREATED", "EXPIRES") + "FILE"; }

std::string job_table_line(const JobRow& row, int columns) {
    std::string created = utc_minutes(row.created_at);
    if (created.size() == 16) created.erase(0, 5);  // 12-06 09:14: the year is in EXPIRES
    std::string line = job_columns(row.job_id, row.status, std::to_string(row.progress), created,
                                   row.expires_at ? utc_minutes(*row.expires_at) : "-");
    return line + fit(row.filename, columns - static_cast<int>(line.size()));
}

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
    std::vector<SseEvent> out;
    buffer_.append(bytes);
    size_t start = 0;
    for (;;) {
        size_t end = buffer_.find('\n', start);
        if (end == std::string::npos) break;
        std::string line = buffer_.substr(start, end - start);
        start = end + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {  // the end of an event
            if (has_data_ || !current_.event.empty() || current_.retry_ms || current_.id) out.push_back(current_);
            current_ = {};
            has_data_ = false;
            continue;
        }
        if (line[0] == ':') continue;  // a comment (keep-alive)
        auto colon = line.find(':');
        std::string field = line.substr(0, colon);
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        if (field == "event") {
            current_.event = value;
        } else if (field == "data") {
            if (has_data_) current_.data += '\n';
            current_.data += value;
            has_data_ = true;
        } else if (field == "id") {
            if (value.find('\0') == std::string::npos) current_.id = value;
        } else if (field == "retry") {
            try {
                current_.retry_ms = std::stoi(value);
            } catch (...) {
            }
        }
    }
    buffer_.erase(0, start);
    return out;
}

std::string account_text(const nlohmann::json& account) {
    const nlohmann::json empty = nlohmann::json::object();
    const nlohmann::json& usage = account.is_object() && account.contains("usage") ? account["usage"] : empty;
    const nlohmann::json& limits = account.is_object() && account.contains("limits") ? account["limits"] : empty;
    auto number = [](const nlohmann::json& j, const char* key) -> std::optional<uint64_t> {
        if (!j.is_object() || !j.contains(key) || !j[key].is_number_unsigned()) return std::nullopt;
        return j[key].get<uint64_t>();
    };
    auto count = [&](const nlohmann::json& j, const char* key) {
        auto n = number(j, key);
        return n ? std::to_string(*n) : std::string("?");
    };
    std::string email = account.is_object() ? account.value("email", "") : "";
    std::string out = "email        " + (email.empty() ? std::string("?") : email) + "\n";
    auto stored = number(usage, "stored_bytes");
    auto quota = number(limits, "quota_bytes");
    out += "stored       " + (stored ? human_bytes(*stored) : std::string("?")) +
           (quota ? " of " + human_bytes(*quota) : std::string(" (no quota)")) + "\n";
    if (auto reserved = number(usage, "reserved_bytes"); reserved && *reserved > 0) {
        out += "reserved     " + human_bytes(*reserved) + " for uploads in progress\n";
    }
    out += "jobs         " + count(usage, "active_jobs") + " queued or converting (at most " +
           count(limits, "max_waiting_jobs") + " waiting)\n";
    out += "uploads      " + count(usage, "uploads_in_progress") + " in progress (at most " +
           count(limits, "max_uploads_in_progress") + " at once)\n";
    if (auto largest = number(limits, "max_upload_bytes")) out += "largest file " + human_bytes(*largest) + "\n";
    return out;
}

namespace {
size_t utf8_columns(std::string_view s) {
    size_t n = 0;
    for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    return n;
}
}  // namespace

std::string fit_progress_line(const std::string& label, const std::string& rest, size_t columns) {
    const std::string gap = "  ";
    // One column is left free: a line exactly as wide as the terminal moves the cursor on some terminals.
    size_t room = columns > 1 ? columns - 1 : 0;
    size_t fixed = utf8_columns(gap) + utf8_columns(rest);
    if (utf8_columns(label) + fixed <= room) return label + gap + rest;
    if (fixed + 2 > room) return rest.substr(0, room);  // no room for a name at all
    size_t keep = room - fixed - 1;                     // characters of the label, then "…"
    std::string shortened;
    size_t taken = 0;
    for (size_t i = 0; i < label.size(); ++i) {
        bool starts = (static_cast<unsigned char>(label[i]) & 0xC0) != 0x80;
        if (starts && taken == keep) break;
        if (starts) ++taken;
        shortened += label[i];
    }
    return shortened + "…" + gap + rest;
}

std::string progress_bar(double fraction, int width) {
    fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    int filled = static_cast<int>(fraction * width + 0.5);
    char percent[8];
    std::snprintf(percent, sizeof percent, "%3d%%", static_cast<int>(fraction * 100));
    return "[" + std::string(filled, '#') + std::string(width - filled, '-') + "] " + percent;
}

std::string human_bytes(uint64_t bytes) {
    char out[32];
    if (bytes >= 1000 * 1000 * 1000) {
        std::snprintf(out, sizeof out, "%.2f GB", static_cast<double>(bytes) / 1e9);
    } else if (bytes >= 1000 * 1000) {
        std::snprintf(out, sizeof out, "%.1f MB", static_cast<double>(bytes) / 1e6);
    } else if (bytes >= 1000) {
        std::snprintf(out, sizeof out, "%.0f kB", static_cast<double>(bytes) / 1e3);
    } else {
        std::snprintf(out, sizeof out, "%llu bytes", static_cast<unsigned long long>(bytes));
    }
    return out;
}

}  // namespace mp3c::client
