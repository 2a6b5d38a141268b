#include "cli.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "api.hpp"
#include "mp3c/output_options.hpp"
#include "session.hpp"
#include "watch.hpp"

namespace mp3c::client {
namespace {

Command parse(std::vector<std::string> argv) {
    auto r = parse_command_line(argv);
    if (!r) throw std::runtime_error(r.error());
    return r.value();
}
std::string problem(std::vector<std::string> argv) {
    auto r = parse_command_line(argv);
    return r ? "" : r.error();
}

TEST(Cli, ParsesCommandsAndOptionsInAnyOrder) {
    auto c = parse({"--server", "http://h:8080", "convert", "a.mp4", "b.mkv", "-o", "out", "--bitrate", "128", "--mono",
                    "--json"});
    EXPECT_EQ(c.name, "convert");
    EXPECT_EQ(c.args, (std::vector<std::string>{"a.mp4", "b.mkv"}));
    EXPECT_EQ(c.server, "http://h:8080");
    EXPECT_EQ(c.output_dir, "out");
    EXPECT_TRUE(c.json);
    EXPECT_EQ(c.fields, (std::map<std::string, std::string>{{"bitrate", "128"}, {"channels", "1"}}));
    EXPECT_EQ(parse({"status", "0123"}).args[0], "0123");
    EXPECT_EQ(parse({"--help"}).name, "help");
}

TEST(Cli, RefusesWhatMakesNoSense) {
    EXPECT_NE(problem({}), "");
    EXPECT_NE(problem({"frobnicate"}), "");
    EXPECT_NE(problem({"convert"}), "");
    EXPECT_NE(problem({"login"}), "");
    EXPECT_EQ(problem({"logout"}), "");
    EXPECT_NE(problem({"logout", "extra"}), "");
    EXPECT_NE(problem({"status"}), "");
    EXPECT_NE(problem({"status", "a", "b"}), "");
    EXPECT_NE(problem({"convert", "a.mp4", "--bitrate", "128", "--quality", "2"}), "");
    EXPECT_NE(problem({"jobs", "--mono"}), "");
    EXPECT_NE(problem({"convert", "a.mp4", "--bitrate"}), "");
    EXPECT_NE(problem({"convert", "a.mp4", "--frobnicate"}), "");
}

TEST(Cli, RetryTakesOneJobAndTheConversionOptions) {
    auto c = parse({"retry", "0123", "--bitrate", "128", "--channels", "2", "--sample-rate", "44100", "-o", "out"});
    EXPECT_EQ(c.name, "retry");
    EXPECT_EQ(c.args, (std::vector<std::string>{"0123"}));
    EXPECT_EQ(c.output_dir, "out");
    EXPECT_EQ(c.fields,
              (std::map<std::string, std::string>{{"bitrate", "128"}, {"channels", "2"}, {"sample_rate", "44100"}}));
    EXPECT_EQ(parse({"retry", "0123", "--mono"}).fields, (std::map<std::string, std::string>{{"channels", "1"}}));
    EXPECT_TRUE(parse({"retry", "0123"}).fields.empty());
    EXPECT_EQ(parse({"convert", "a.mp4", "--sample-rate", "48000"}).fields.at("sample_rate"), "48000");

    EXPECT_NE(problem({"retry"}), "");
    EXPECT_NE(problem({"retry", "a", "b"}), "");
    EXPECT_NE(problem({"retry", "0123", "--bitrate", "128k"}), "") << "sent as a JSON number";
    EXPECT_NE(problem({"retry", "0123", "--sample-rate", "-1"}), "");
    EXPECT_NE(problem({"retry", "0123", "--channels"}), "");
    EXPECT_NE(problem({"retry", "0123", "--bitrate", "128", "--quality", "2"}), "");
    EXPECT_NE(problem({"retry", "0123", "--all"}), "");
    EXPECT_NE(problem({"status", "0123", "--channels", "1"}), "");
    EXPECT_NE(problem({"jobs", "--sample-rate", "44100"}), "");
}

TEST(Cli, RetryBodyIsEmptyOrTheOptionsAsNumbers) {
    EXPECT_EQ(retry_body({}), "");
    EXPECT_EQ(retry_body({{"bitrate", "128"}, {"sample_rate", "44100"}}), R"({"bitrate":128,"sample_rate":44100})");
    EXPECT_EQ(retry_body({{"quality", "0"}, {"channels", "1"}}), R"({"channels":1,"quality":0})");
    EXPECT_EQ(retry_body({{"bitrate", "128"}, {"track", "3/12"}, {"year", "2024"}}),
              R"({"bitrate":128,"track":"3/12","year":"2024"})")
        << "tags are text";
}

TEST(Cli, TagsAreConversionOptionsCheckedBeforeUploading) {
    auto c = parse({"convert", "a.mp4", "--title", "Nuit étoilée", "--artist", "Zoë", "--album", "Roads", "--year",
                    "2024", "--track", "3/12", "--genre", "Ambient"});
    EXPECT_EQ(c.fields, (std::map<std::string, std::string>{{"title", "Nuit étoilée"},
                                                            {"artist", "Zoë"},
                                                            {"album", "Roads"},
                                                            {"year", "2024"},
                                                            {"track", "3/12"},
                                                            {"genre", "Ambient"}}));
    EXPECT_EQ(parse({"retry", "0123", "--title", "Live"}).fields.at("title"), "Live");
    auto trimmed = parse({"convert", "a.mp4", "--start", "1:30", "--end", "95.5"});
    EXPECT_EQ(trimmed.fields.at("start"), "1:30");
    EXPECT_EQ(retry_body(trimmed.fields), R"({"end":"95.5","start":"1:30"})");
    EXPECT_EQ(problem({"convert", "a.mp4", "--start", "1:30", "--end", "60"}), "end (60 s) must be after start (90 s)");
    EXPECT_EQ(problem({"convert", "a.mp4", "--start", "soon"}).rfind("--start soon: start must be", 0), 0u);
    EXPECT_EQ(parse({"convert", "a.mp4", "--chapters", "none"}).fields.at("chapters"), "none");
    EXPECT_EQ(parse({"convert", "a.mp4", "--chapters", "split"}).fields.at("chapters"), "split");
    EXPECT_NE(problem({"convert", "a.mp4", "--chapters", "parts"}), "");
    auto loud = parse({"convert", "a.mp4", "--loudness", "-16", "--true-peak", "-1.5"});
    EXPECT_EQ(loud.fields.at("loudness"), "-16");
    EXPECT_EQ(loud.fields.at("true_peak"), "-1.5");
    EXPECT_EQ(retry_body(loud.fields), R"({"loudness":"-16","true_peak":"-1.5"})");
    EXPECT_NE(problem({"convert", "a.mp4", "--loudness", "-40"}).find("loudness"), std::string::npos)
        << "checked before uploading";
    EXPECT_NE(problem({"convert", "a.mp4", "--true-peak", "-1"}).find("true_peak"), std::string::npos);
    EXPECT_EQ(parse({"retry", "abcd1234", "--loudness", "off"}).fields.at("loudness"), "off");
    EXPECT_EQ(parse({"convert", "a.mp4", "--cover", "none"}).fields.at("cover"), "none");
    EXPECT_NE(problem({"convert", "a.mp4", "--cover", "frame"}).find("cover"), std::string::npos);
    EXPECT_EQ(problem({"convert", "a.mp4", "--track", "0"}).rfind("--track 0: track ", 0), 0u)
        << problem({"convert", "a.mp4", "--track", "0"});
    EXPECT_NE(problem({"convert", "a.mp4", "--year", "24"}), "");
    EXPECT_NE(problem({"convert", "a.mp4", "--title"}), "") << "needs a value";
    EXPECT_NE(problem({"jobs", "--title", "x"}), "") << "only where something is converted";
}

TEST(Cli, DownloadTakesOneJobOrAllOfThem) {
    auto all = parse({"download", "--all", "-o", "music"});
    EXPECT_EQ(all.name, "download");
    EXPECT_TRUE(all.all);
    EXPECT_FALSE(all.zip);
    EXPECT_TRUE(all.args.empty());
    EXPECT_EQ(all.output_dir, "music");
    auto zip = parse({"--json", "download", "--zip", "-o", "all.zip"});
    EXPECT_TRUE(zip.zip);
    EXPECT_FALSE(zip.all);
    EXPECT_EQ(zip.output_dir, "all.zip");
    EXPECT_TRUE(parse({"download", "--zip"}).output_dir.empty());
    auto one = parse({"download", "0123"});
    EXPECT_FALSE(one.all || one.zip);

    EXPECT_NE(problem({"download"}), "");
    EXPECT_NE(problem({"download", "--all", "0123"}), "");
    EXPECT_NE(problem({"download", "--zip", "0123"}), "");
    EXPECT_NE(problem({"download", "--all", "--zip"}), "");
    EXPECT_NE(problem({"download", "--all", "--bitrate", "128"}), "");
    EXPECT_NE(problem({"jobs", "--all"}), "");
    EXPECT_NE(problem({"convert", "a.mp4", "--zip"}), "");
    EXPECT_NE(problem({"download", "--all", "-o"}), "");
}

// A made-up folder for place_download: the sizes of the files in it.
SizeOnDisk folder(std::map<std::string, uint64_t> files) {
    return [files = std::move(files)](const std::string& path) -> std::optional<uint64_t> {
        auto it = files.find(path);
        if (it == files.end()) return std::nullopt;
        return it->second;
    };
}

// download --all's placement of MP3s given oldest first, as main.cpp does it.
std::vector<Placement> place_all(const std::vector<std::pair<std::string, uint64_t>>& jobs, const SizeOnDisk& disk,
                                 bool force = false) {
    std::set<std::string> taken;
    std::vector<Placement> out;
    for (const auto& [upload_name, size] : jobs) {
        out.push_back(place_download(mp3_path("music", upload_name), size, force, disk, taken));
        taken.insert(out.back().path);
    }
    return out;
}

TEST(Cli, DownloadedMp3sAreNamedAfterTheUploadAndSharedNamesNumbered) {
    EXPECT_EQ(mp3_path("", "holiday.mp4"), "./holiday.mp3");
    EXPECT_EQ(mp3_path("music", "holiday.mp4"), "music/holiday.mp3");
    EXPECT_EQ(mp3_path("music", "song.mp3"), "music/song.converted.mp3");
    EXPECT_EQ(mp3_path("", ""), "./job.mp3");
    // As in the server's zip: shared names numbered in the order of the jobs.
    auto empty = place_all({{"a.mp4", 10}, {"b.mkv", 20}, {"a.mov", 30}, {"a.mp4", 40}}, folder({}));
    std::vector<std::string> paths;
    for (const auto& p : empty) {
        paths.push_back(p.path);
        EXPECT_FALSE(p.already_there);
    }
    EXPECT_EQ(paths, (std::vector<std::string>{"music/a.mp3", "music/b.mp3", "music/a (2).mp3", "music/a (3).mp3"}));
}

TEST(Cli, DownloadsNeverReplaceAFileUnlessForced) {
    auto disk = folder({{"out/talk.mp3", 5}, {"out/talk (2).mp3", 6}});
    EXPECT_EQ(place_download("out/new.mp3", std::nullopt, false, disk).path, "out/new.mp3");
    EXPECT_EQ(place_download("out/talk.mp3", std::nullopt, false, disk).path, "out/talk (3).mp3");
    EXPECT_FALSE(place_download("out/talk.mp3", std::nullopt, false, disk).already_there);
    EXPECT_EQ(place_download("out/talk.mp3", std::nullopt, true, disk).path, "out/talk.mp3") << "--force";
    EXPECT_EQ(place_download("talk.mp3", std::nullopt, false, folder({{"talk.mp3", 1}})).path, "talk (2).mp3");
    // A download of a known size stops at a file of that size: it is there already (also with --force).
    auto same = place_download("out/talk.mp3", 6, false, disk);
    EXPECT_EQ(same.path, "out/talk (2).mp3");
    EXPECT_TRUE(same.already_there);
    EXPECT_TRUE(place_download("out/talk.mp3", 5, true, disk).already_there);
    EXPECT_EQ(place_download("out/talk.mp3", 7, false, disk).path, "out/talk (3).mp3");
    // Names taken by earlier downloads of the run are passed over.
    EXPECT_EQ(place_download("out/new.mp3", std::nullopt, false, disk, {"out/new.mp3"}).path, "out/new (2).mp3");
}

TEST(Cli, DownloadAllAgainSkipsWhatIsThereAndGoesAroundOtherFiles) {
    std::vector<std::pair<std::string, uint64_t>> jobs = {{"a.mp4", 10}, {"a.mov", 20}, {"b.mp4", 30}};
    // A second run finds each MP3 where the first put it.
    auto again = place_all(jobs, folder({{"music/a.mp3", 10}, {"music/a (2).mp3", 20}, {"music/b.mp3", 30}}));
    for (const auto& p : again) EXPECT_TRUE(p.already_there) << p.path;
    // Someone else's a.mp3 (another size) stays; the MP3s go around it, the same way on every run.
    auto first = place_all(jobs, folder({{"music/a.mp3", 99}}));
    EXPECT_EQ(first[0].path, "music/a (2).mp3");
    EXPECT_EQ(first[1].path, "music/a (3).mp3");
    EXPECT_EQ(first[2].path, "music/b.mp3");
    auto second = place_all(jobs, folder({{"music/a.mp3", 99}, {"music/a (2).mp3", 10}, {"music/a (3).mp3", 20}}));
    EXPECT_TRUE(second[0].already_there && second[1].already_there);
    EXPECT_EQ(second[1].path, "music/a (3).mp3");
    // --force replaces the other file (a name of the run is still not shared).
    auto forced = place_all(jobs, folder({{"music/a.mp3", 99}}), true);
    EXPECT_EQ(forced[0].path, "music/a.mp3");
    EXPECT_EQ(forced[1].path, "music/a (2).mp3");
}

TEST(Cli, AttachmentNamesAreReducedToSafeBaseNames) {
    EXPECT_EQ(attachment_filename("attachment; filename=\"mp3converter-20261213-100000.zip\""),
              "mp3converter-20261213-100000.zip");
    EXPECT_EQ(attachment_filename("attachment; filename=\"holiday_.mp3\"; filename*=UTF-8''holiday%C3%A9.mp3"),
              "holiday\xC3\xA9.mp3");
    EXPECT_EQ(attachment_filename("attachment; FileName=plain.zip; size=3"), "plain.zip");
    EXPECT_EQ(attachment_filename("attachment; x; filename=\"a \\\"q\\\".zip\""), "a \"q\".zip");
    EXPECT_EQ(attachment_filename("attachment; filename=\"../../etc/passwd\""), "passwd");
    EXPECT_EQ(attachment_filename("attachment; filename*=UTF-8''a%2Fb.zip"), "b.zip");
    EXPECT_FALSE(attachment_filename("attachment"));
    EXPECT_FALSE(attachment_filename(""));
    EXPECT_FALSE(attachment_filename("attachment; filename=\"..\""));
    EXPECT_FALSE(attachment_filename("attachment; filename=\".bashrc\""));
    EXPECT_FALSE(attachment_filename("attachment; filename*=UTF-8''a%0Ab.zip"));
}

size_t columns(const std::string& line) {
    size_t n = 0;
    for (char ch : line) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    return n;
}

TEST(Cli, JobsTableShowsExpiryInEightyColumns) {
    EXPECT_EQ(utc_minutes("2026-12-13T10:00:00.000Z"), "2026-12-13 10:00");
    JobRow row{.job_id = "0123456789abcdef01234567",
               .status = "done",
               .progress = 100,
               .created_at = "2026-12-06T09:14:02.123Z",
               .expires_at = "2026-12-13T10:00:00.000Z",
               .filename = "holiday.mp4"};
    EXPECT_EQ(job_table_line(row), "0123456789abcdef01234567 done       100 12-06 09:14 2026-12-13 10:00 holiday.mp4");
    EXPECT_EQ(job_table_header().substr(0, 69),
              "JOB                      STATUS       % CREATED     EXPIRES          ");
    row.status = "expired";
    row.expires_at.reset();
    EXPECT_EQ(job_table_line(row), "0123456789abcdef01234567 expired    100 12-06 09:14 -                holiday.mp4");
    row.status = "processing";
    row.filename = "a very long name of a video, \xC3\xA9t\xC3\xA9 2026.mp4";
    EXPECT_EQ(columns(job_table_line(row)), 80u);
    EXPECT_EQ(job_table_line(row).substr(69), "a very lon\xE2\x80\xA6");
    EXPECT_EQ(columns(job_table_line(row, 100)), 100u);
    EXPECT_LE(columns(job_table_header()), 80u);
    row.filename = "bell\a.mp4";
    EXPECT_EQ(job_table_line(row).substr(69), "bell?.mp4");
}

TEST(Cli, OutputGoesBesideTheInputOrIntoTheDirectoryAndNeverOverTheInput) {
    EXPECT_EQ(output_path("/videos/holiday.mp4", ""), "/videos/holiday.mp3");
    EXPECT_EQ(output_path("/videos/holiday.mp4", "/music"), "/music/holiday.mp3");
    EXPECT_EQ(output_path("song.mp3", ""), "song.converted.mp3");
    EXPECT_EQ(output_path("/a/song.mp3", "/a"), "/a/song.converted.mp3");
}

TEST(Cli, ServerSentEventsSplitAcrossAnyChunks) {
    std::string stream =
        "retry: 2000\n\n: keep-alive\nid: queued.0\nevent: status\ndata: {\"a\":1}\n\nevent: status\r\ndata: x\r\n"
        "data: y\r\n\r\n";
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
        SseParser parser;
        auto events = parser.feed(stream.substr(0, cut));
        for (auto& e : parser.feed(stream.substr(cut))) events.push_back(e);
        ASSERT_EQ(events.size(), 3u) << cut;
        EXPECT_EQ(events[0].retry_ms, 2000);
        EXPECT_EQ(events[1].event, "status");
        EXPECT_EQ(events[1].data, "{\"a\":1}");
        EXPECT_EQ(events[1].id, "queued.0");
        EXPECT_FALSE(events[2].id);
        EXPECT_EQ(events[2].data, "x\ny");
    }
}

TEST(Cli, ProgressAndSizes) {
    EXPECT_EQ(progress_bar(0.5, 10), "[#####-----]  50%");
    EXPECT_EQ(progress_bar(2, 4), "[####] 100%");
    EXPECT_EQ(human_bytes(999), "999 bytes");
    EXPECT_EQ(human_bytes(4'600'000), "4.6 MB");
}

TEST(Cli, HelpFitsEightyColumns) {
    std::istringstream help(kUsageText);
    int lines = 0;
    for (std::string line; std::getline(help, line); ++lines) {
        EXPECT_LE(columns(line), 80u) << line;
        EXPECT_EQ(line.find('\t'), std::string::npos) << line;
        EXPECT_TRUE(line.empty() || line.back() != ' ') << "trailing blank: " << line;
    }
    EXPECT_GT(lines, 40);
    for (const char* command : {"login", "logout", "whoami", "mails", "convert", "watch", "jobs", "status", "download",
                                "retry", "delete", "help", "--version", "--force"}) {
        EXPECT_NE(std::string(kUsageText).find(command), std::string::npos) << command;
    }
}

// The whole numbers in `text`.
std::vector<int> numbers_in(const std::string& text) {
    std::vector<int> out;
    for (size_t i = 0; i < text.size();) {
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
            ++i;
            continue;
        }
        size_t end = i;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
        out.push_back(std::stoi(text.substr(i, end - i)));
        i = end;
    }
    return out;
}

// The help's text between two markers.
std::string help_between(const std::string& from, const std::string& to) {
    std::string help = kUsageText;
    size_t start = help.find(from);
    size_t end = help.find(to, start);
    EXPECT_NE(start, std::string::npos) << from;
    EXPECT_NE(end, std::string::npos) << to;
    return help.substr(start + from.size(), end - start - from.size());
}

TEST(Cli, HelpListsExactlyTheValuesTheServerAccepts) {
    std::vector<int> bitrates = numbers_in(help_between("--bitrate N", "--quality"));
    std::vector<int> accepted;
    for (int b = 0; b <= 1000; ++b) {
        if (parse_output_options({{"bitrate", std::to_string(b)}})) accepted.push_back(b);
    }
    EXPECT_EQ(bitrates, accepted);
    std::vector<int> rates = numbers_in(help_between("--sample-rate R      in Hz:", "--start"));
    accepted.clear();
    for (int r = 0; r <= 200000; ++r) {
        if (parse_output_options({{"sample_rate", std::to_string(r)}})) accepted.push_back(r);
    }
    EXPECT_EQ(rates, accepted);
}

TEST(Cli, ConversionOptionsAreCheckedBeforeAnyUpload) {
    std::string bitrate = problem({"convert", "big.mp4", "--bitrate", "100"});
    EXPECT_EQ(bitrate.rfind("--bitrate 100: ", 0), 0u) << bitrate;
    EXPECT_NE(bitrate.find("64, 80, 96, 112, 128, 160, 192, 224, 256, 320"), std::string::npos) << bitrate;
    std::string rate = problem({"retry", "0123", "--sample-rate", "96000"});
    EXPECT_EQ(rate.rfind("--sample-rate 96000: ", 0), 0u) << rate;
    EXPECT_NE(rate.find("8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000"), std::string::npos) << rate;
    EXPECT_NE(problem({"watch", "in", "--quality", "10"}).find("0 (best) to 9"), std::string::npos);
    EXPECT_NE(problem({"convert", "a.mp4", "--channels", "3"}).find("1 (mono) or 2 (stereo)"), std::string::npos);
    EXPECT_EQ(problem({"convert", "a.mp4", "--bitrate", "320", "--mono", "--sample-rate", "48000"}), "");
    EXPECT_EQ(problem({"convert", "a.mp4", "--quality", "0"}), "");
    EXPECT_EQ(check_conversion_options({}).ok(), true);
}

TEST(Cli, UsageMistakesAreOneLineAndPointToTheHelp) {
    for (const auto& argv : std::vector<std::vector<std::string>>{{},
                                                                  {"frobnicate"},
                                                                  {"convert"},
                                                                  {"convert", "a.mp4", "--frobnicate"},
                                                                  {"convert", "a.mp4", "--bitrate", "100"},
                                                                  {"status", "xyz"},
                                                                  {"jobs", "--force"},
                                                                  {"watch"},
                                                                  {"download", "--zip", "--force"}}) {
        std::string p = problem(argv);
        ASSERT_NE(p, "") << ::testing::PrintToString(argv);
        EXPECT_EQ(p.find('\n'), std::string::npos) << p;
        EXPECT_EQ(usage_error_text(p), "mp3conv: " + p + "\nrun 'mp3conv --help' for usage\n");
    }
}

TEST(Cli, HelpVersionWhoamiWatchAndForce) {
    EXPECT_EQ(parse({"help"}).name, "help");
    EXPECT_EQ(parse({"help", "convert"}).name, "help");
    EXPECT_EQ(parse({"-h"}).name, "help");
    EXPECT_EQ(parse({"--version"}).name, "version");
    EXPECT_EQ(parse({"jobs", "--version"}).name, "version");
    EXPECT_EQ(parse({"whoami"}).name, "whoami");
    EXPECT_TRUE(parse({"--json", "whoami"}).json);
    EXPECT_NE(problem({"whoami", "me"}), "");
    EXPECT_TRUE(parse({"mails"}).args.empty());
    EXPECT_EQ(parse({"mails", "summary"}).args, std::vector<std::string>{"summary"});
    EXPECT_EQ(problem({"mails", "weekly"}), "'weekly' is not a choice of mails: each, summary or off");
    EXPECT_NE(problem({"mails", "off", "each"}), "");
    EXPECT_NE(problem({"mails", "--mono"}), "");
    auto w = parse({"watch", "inbox", "-o", "music", "--mono", "--force"});
    EXPECT_EQ(w.name, "watch");
    EXPECT_EQ(w.args, std::vector<std::string>{"inbox"});
    EXPECT_EQ(w.output_dir, "music");
    EXPECT_TRUE(w.force);
    EXPECT_EQ(w.fields, (std::map<std::string, std::string>{{"channels", "1"}}));
    EXPECT_NE(problem({"watch"}), "");
    EXPECT_NE(problem({"watch", "a", "b"}), "");
    EXPECT_NE(problem({"watch", "a", "--all"}), "");
    EXPECT_TRUE(parse({"convert", "a.mp4", "--force"}).force);
    EXPECT_TRUE(parse({"download", "0123", "--force"}).force);
    EXPECT_TRUE(parse({"download", "--all", "--force"}).force);
    EXPECT_TRUE(parse({"retry", "0123", "--force"}).force);
    EXPECT_FALSE(parse({"download", "0123"}).force);
    EXPECT_NE(problem({"status", "0123", "--force"}), "");
    EXPECT_NE(problem({"download", "--zip", "--force"}), "");
}

TEST(Cli, JobIdsMayBeShortenedAsInGit) {
    EXPECT_EQ(job_id_argument("665F"), "665f");
    EXPECT_EQ(job_id_argument("665f0a1b2c3d4e5f60718293"), "665f0a1b2c3d4e5f60718293");
    EXPECT_FALSE(job_id_argument("665"));
    EXPECT_FALSE(job_id_argument("665g"));
    EXPECT_FALSE(job_id_argument("665f0a1b2c3d4e5f607182930"));
    EXPECT_FALSE(job_id_argument("../x"));
    EXPECT_TRUE(is_full_job_id("665f0a1b2c3d4e5f60718293"));
    EXPECT_FALSE(is_full_job_id("665f"));
    EXPECT_EQ(parse({"status", "665F0A"}).args[0], "665f0a");
    for (const char* command : {"status", "download", "retry", "delete"}) {
        EXPECT_NE(problem({command, "xyz"}).find("not a job id"), std::string::npos) << command;
        EXPECT_NE(problem({command, "12"}), "") << command;
    }

    const std::vector<std::string> mine = {"665f0a1b2c3d4e5f60718293", "665f9b1b2c3d4e5f60718293",
                                           "7a00000000000000000000aa", "665f0a1b2c3d4e5f60718293"};
    EXPECT_EQ(resolve_job_prefix("7a00", mine).value(), "7a00000000000000000000aa");
    EXPECT_EQ(resolve_job_prefix("665f0", mine).value(), "665f0a1b2c3d4e5f60718293") << "listed twice: one job";
    auto ambiguous = resolve_job_prefix("665f", mine);
    ASSERT_FALSE(ambiguous);
    EXPECT_EQ(ambiguous.error().candidates,
              (std::vector<std::string>{"665f0a1b2c3d4e5f60718293", "665f9b1b2c3d4e5f60718293"}));
    auto unknown = resolve_job_prefix("beef", mine);
    ASSERT_FALSE(unknown);
    EXPECT_TRUE(unknown.error().candidates.empty());
    EXPECT_FALSE(resolve_job_prefix("665f", {}));
}

TEST(Cli, TransferFailuresInWords) {
    EXPECT_EQ(transport_problem(CURLE_COULDNT_CONNECT), "cannot connect");
    EXPECT_EQ(transport_problem(CURLE_COULDNT_RESOLVE_HOST), "name not found");
    EXPECT_EQ(transport_problem(CURLE_OPERATION_TIMEDOUT), "timed out");
    EXPECT_EQ(transport_problem(CURLE_SSL_CONNECT_ERROR), "TLS problem");
    EXPECT_EQ(transport_problem(CURLE_PEER_FAILED_VERIFICATION).rfind("TLS problem", 0), 0u);
    for (int code = 1; code < CURL_LAST; ++code) {
        std::string words = transport_problem(code);
        EXPECT_FALSE(words.empty()) << code;
        EXPECT_EQ(words.find('\n'), std::string::npos) << code;
        EXPECT_NE(words, curl_easy_strerror(static_cast<CURLcode>(code))) << "libcurl's own text for " << code;
    }
}

TEST(Cli, WhoamiShowsTheAccountInAFewLines) {
    auto account = nlohmann::json::parse(R"({"email": "demo@example.com",
        "usage": {"stored_bytes": 1500000, "reserved_bytes": 0, "active_jobs": 1, "uploads_in_progress": 0,
                  "event_streams": 0},
        "limits": {"quota_bytes": 1000000000, "max_upload_bytes": 2147483648, "max_waiting_jobs": 10,
                   "max_uploads_in_progress": 4, "max_event_streams": 8}})");
    std::string text = account_text(account);
    EXPECT_NE(text.find("email        demo@example.com\n"), std::string::npos) << text;
    EXPECT_NE(text.find("stored       1.5 MB of 1.00 GB\n"), std::string::npos) << text;
    EXPECT_NE(text.find("1 queued or converting (at most 10 waiting)"), std::string::npos) << text;
    EXPECT_EQ(text.find("reserved"), std::string::npos) << "nothing reserved: not shown";
    account["limits"]["quota_bytes"] = nullptr;
    EXPECT_NE(account_text(account).find("(no quota)"), std::string::npos);
    std::istringstream lines(account_text(account));
    for (std::string line; std::getline(lines, line);) EXPECT_LE(columns(line), 80u) << line;
    EXPECT_NE(account_text(nlohmann::json("garbage")).find("email        ?"), std::string::npos);
}

WatchedFile file(std::string name, uint64_t size, int64_t mtime = 1000) { return {std::move(name), size, mtime}; }

std::vector<std::string> names(const std::vector<WatchedFile>& files) {
    std::vector<std::string> out;
    for (const auto& f : files) out.push_back(f.name);
    return out;
}

TEST(Watch, SkipsHiddenPartialAndMp3Files) {
    for (const char* name : {".hidden.mp4", ".mp3conv-watch.json", ".mp3conv-watch.json.tmp", "talk.mp4.part",
                             "talk.mp4.crdownload", "talk.tmp", "TALK.PART", "talk.mp3", "talk.mp3.part", ""}) {
        EXPECT_TRUE(watch_skips(name)) << name;
    }
    for (const char* name : {"talk.mp4", "talk.mkv", "voice.wav", "part.mp4", "tmp.mov", "a.mp3.mp4"}) {
        EXPECT_FALSE(watch_skips(name)) << name;
    }
}

TEST(Watch, TakesAFileOnceItHasStoppedGrowing) {
    std::vector<WatchedFile> before = {file("done.mp4", 500), file("growing.mp4", 100), file("touched.mp4", 300, 1),
                                       file("empty.mp4", 0),  file("a.mkv", 700),       file("talk.mp4.part", 50),
                                       file(".x.mp4", 50),    file("talk.mp3", 40)};
    std::vector<WatchedFile> now = {file("new.mp4", 900), file("growing.mp4", 200), file("touched.mp4", 300, 2),
                                    file("empty.mp4", 0), file("done.mp4", 500),    file("talk.mp4.part", 50),
                                    file(".x.mp4", 50),   file("talk.mp3", 40),     file("a.mkv", 700)};
    EXPECT_EQ(names(files_to_convert(before, now, {})), (std::vector<std::string>{"a.mkv", "done.mp4"}))
        << "new.mp4 is new at this look, growing.mp4 and touched.mp4 changed since the last";
    // What the state holds in this version is not taken again; a new version of it is.
    WatchState state;
    state["done.mp4"] = {.size = 500, .mtime_ns = 1000, .job_id = "665f0a1b2c3d4e5f60718293", .status = "done"};
    state["a.mkv"] = {.size = 600, .mtime_ns = 1000, .job_id = "665f9b1b2c3d4e5f60718293", .status = "done"};
    EXPECT_EQ(names(files_to_convert(before, now, state)), std::vector<std::string>{"a.mkv"});
    state["a.mkv"].size = 700;
    state["a.mkv"].status = "existing";
    EXPECT_TRUE(files_to_convert(before, now, state).empty());
    // At the next look, new.mp4, growing.mp4 (stopped) and touched.mp4 are ready.
    std::vector<WatchedFile> later = now;
    EXPECT_EQ(names(files_to_convert(now, later, state)),
              (std::vector<std::string>{"growing.mp4", "new.mp4", "touched.mp4"}));
    EXPECT_TRUE(files_to_convert({}, now, {}).empty()) << "the first look: nothing has been seen twice";
}

TEST(Watch, StateRoundTripsAndDamageIsSaid) {
    WatchState state;
    state["talk.mp4"] = {.size = 123,
                         .mtime_ns = 1'700'000'000'123'456'789,
                         .job_id = "665f0a1b2c3d4e5f60718293",
                         .status = "done",
                         .mp3 = "out/talk.mp3"};
    state["big.mkv"] = {.size = 9, .mtime_ns = -5, .status = "refused", .error = "too large"};
    state["café.mp4"] = {.size = 1, .mtime_ns = 2, .job_id = "7a00000000000000000000aa", .status = "uploaded"};
    auto back = parse_watch_state(watch_state_text(state));
    ASSERT_TRUE(back) << back.error();
    ASSERT_EQ(back.value().size(), 3u);
    const auto& talk = back.value().at("talk.mp4");
    EXPECT_EQ(talk.size, 123u);
    EXPECT_EQ(talk.mtime_ns, 1'700'000'000'123'456'789);
    EXPECT_EQ(talk.job_id, "665f0a1b2c3d4e5f60718293");
    EXPECT_EQ(talk.mp3, "out/talk.mp3");
    EXPECT_EQ(back.value().at("big.mkv").error, "too large");
    EXPECT_EQ(back.value().at("big.mkv").mtime_ns, -5);
    EXPECT_TRUE(back.value().at("big.mkv").job_id.empty());
    EXPECT_EQ(back.value().at("café.mp4").status, "uploaded");
    EXPECT_FALSE(parse_watch_state("not json"));
    EXPECT_FALSE(parse_watch_state(R"({"version": 2, "files": {}})"));
    EXPECT_FALSE(parse_watch_state(R"({"version": 1, "files": {"a.mp4": {"size": "12"}}})"));
    EXPECT_TRUE(parse_watch_state(R"({"version": 1, "files": {}})"));
}

TEST(Watch, StateFileAndListingInARealDirectory) {
    auto dir = std::filesystem::temp_directory_path() / ("mp3conv-watch-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir / "sub");
    auto loaded = load_watch_state(dir.string());
    ASSERT_TRUE(loaded);
    EXPECT_FALSE(loaded.value()) << "no state file: the first start";
    std::ofstream(dir / "talk.mp4") << "12345";
    WatchState state;
    state["talk.mp4"] = {.size = 5, .mtime_ns = 7, .status = "existing"};
    save_watch_state(dir.string(), state);
    auto listed = list_directory(dir.string());
    std::sort(listed.begin(), listed.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    EXPECT_EQ(names(listed), (std::vector<std::string>{".mp3conv-watch.json", "talk.mp4"})) << "no directories";
    EXPECT_EQ(listed[1].size, 5u);
    EXPECT_GT(listed[1].mtime_ns, 0);
    loaded = load_watch_state(dir.string());
    ASSERT_TRUE(loaded);
    ASSERT_TRUE(loaded.value());
    EXPECT_EQ(loaded.value()->at("talk.mp4").status, "existing");
    std::ofstream(dir / kWatchStateFile) << "{damaged";
    EXPECT_FALSE(load_watch_state(dir.string()));
    EXPECT_THROW(list_directory((dir / "missing").string()), std::runtime_error);
    std::filesystem::remove_all(dir);
}

TEST(Session, KeptPerServerInAPrivateFile) {
    auto dir = std::filesystem::temp_directory_path() / ("mp3conv-test-" + std::to_string(::getpid()));
    ::setenv("MP3CONV_CONFIG_DIR", (dir / "nested").c_str(), 1);
    EXPECT_FALSE(load_session("http://a"));
    save_session("http://a", {"a@example.com", "token-a", "2030-01-01T00:00:00Z"});
    save_session("http://b", {"b@example.com", "token-b", ""});
    EXPECT_EQ(load_session("http://a")->token, "token-a");
    EXPECT_EQ(load_session("http://b")->email, "b@example.com");
    struct stat st {};
    ASSERT_EQ(::stat((dir / "nested" / "sessions.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "the token is a credential";
    ASSERT_EQ(::stat((dir / "nested").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    forget_session("http://a");
    EXPECT_FALSE(load_session("http://a"));
    EXPECT_TRUE(load_session("http://b"));
    ::unsetenv("MP3CONV_CONFIG_DIR");
    std::filesystem::remove_all(dir);
}

}  // namespace
TEST(Cli, AProgressLineFitsTheTerminalSoThatRedrawingNeverWraps) {
    const std::string rest = "uploading  [############------------]  50% 12.0 MB/s";
    EXPECT_EQ(fit_progress_line("talk.mp4", rest, 80), "talk.mp4  " + rest);
    std::string long_name = "A very long recording of the whole conference day, morning session.mp4";
    std::string line = fit_progress_line(long_name, rest, 80);
    size_t columns = 0;
    for (char c : line) columns += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    EXPECT_EQ(columns, 79u) << line;
    EXPECT_NE(line.find("…  " + rest), std::string::npos) << line;
    EXPECT_EQ(line.rfind("A very long", 0), 0u);
    std::string utf8 = fit_progress_line("Zoë – Night Drive (live) at the Paradiso, Amsterdam, 2019.mkv", rest, 70);
    columns = 0;
    for (char c : utf8) columns += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    EXPECT_EQ(columns, 69u) << utf8;
    EXPECT_EQ(fit_progress_line("x.mp4", rest, 20).size(), 19u) << "a tiny terminal gets what fits";
}

}  // namespace mp3c::client
