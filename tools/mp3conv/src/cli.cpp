#include "cli.hpp"

#include <cstdio>
#include <filesystem>

namespace mp3c::client {

const char* const kUsageText = R"(usage: mp3conv [--server URL] [--json] COMMAND [ARGS]

commands:
  login EMAIL                    log in (the password is read from the terminal without echo, or from standard
                                 input when that is not a terminal); the session is kept in ~/.config/mp3conv
  logout                         end the session: at the server (the token stops working) and here
  convert FILE... [-o DIR] [--bitrate N | --quality Q] [--mono]
                                 upload, follow the conversion, download each MP3 next to its file (or into DIR)
  jobs                           your jobs, newest first
  status ID                      one job
  download ID [-o DIR]           the MP3 of a finished job
  delete ID                      cancel a queued job, or delete a finished one with its MP3

options:
  --server URL   the gateway (default: $MP3CONV_SERVER, else http://127.0.0.1:8080)
  --json         machine-readable output on standard output
  --bitrate N    constant bitrate in kb/s (64 ... 320, default 192)
  --quality Q    variable bitrate, LAME quality 0 (best) to 9
  --mono         one channel

exit status: 0 done; 1 a job failed or a file could not be read or saved; 2 usage; 3 server unreachable or
unavailable; 4 not logged in or session expired (run mp3conv login); 5 refused by the server (too large, too many
jobs, invalid input)
)";

Result<Command, std::string> parse_command_line(const std::vector<std::string>& argv) {
    Command c;
    std::vector<std::string> positional;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        auto value = [&](const std::string& flag) -> std::optional<std::string> {
            if (i + 1 >= argv.size()) return std::nullopt;
            (void)flag;
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            c.name = "help";
            return c;
        } else if (a == "--json") {
            c.json = true;
        } else if (a == "--server") {
            auto v = value(a);
            if (!v) return std::string("--server needs a URL");
            c.server = *v;
        } else if (a == "-o" || a == "--output") {
            auto v = value(a);
            if (!v) return a + " needs a directory";
            c.output_dir = *v;
        } else if (a == "--bitrate" || a == "--quality") {
            auto v = value(a);
            if (!v) return a + " needs a value";
            c.fields[a.substr(2)] = *v;
        } else if (a == "--mono") {
            c.fields["channels"] = "1";
        } else if (a.size() > 1 && a[0] == '-' && a != "-") {
            return "unknown option " + a;
        } else {
            positional.push_back(a);
        }
    }
    if (positional.empty()) return std::string("no command given");
    c.name = positional[0];
    c.args.assign(positional.begin() + 1, positional.end());
    if (c.fields.count("bitrate") && c.fields.count("quality"))
        return std::string("--bitrate and --quality exclude each other");
    auto want = [&](size_t n, const char* what) -> Check {
        if (c.args.size() != n) return c.name + " takes " + what;
        return Ok{};
    };
    Check checked = Ok{};
    if (c.name == "login") {
        checked = want(1, "one e-mail address");
    } else if (c.name == "convert") {
        if (c.args.empty()) checked = std::string("convert needs at least one file");
    } else if (c.name == "jobs" || c.name == "logout") {
        checked = want(0, "no arguments");
    } else if (c.name == "status" || c.name == "download" || c.name == "delete") {
        checked = want(1, "one job id");
    } else {
        return "unknown command '" + c.name + "'";
    }
    if (!checked) return checked.error();
    if (!c.fields.empty() && c.name != "convert")
        return std::string("--bitrate, --quality and --mono are options of convert");
    if (!c.output_dir.empty() && c.name != "convert" && c.name != "download")
        return std::string("-o is an option of convert and download");
    return c;
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
