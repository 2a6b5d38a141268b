#include "cli.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "session.hpp"

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
    EXPECT_NE(problem({"retry", "a", "--bitrate", "128k"}), "") << "sent as a JSON number";
    EXPECT_NE(problem({"retry", "a", "--sample-rate", "-1"}), "");
    EXPECT_NE(problem({"retry", "a", "--channels"}), "");
    EXPECT_NE(problem({"retry", "a", "--bitrate", "128", "--quality", "2"}), "");
    EXPECT_NE(problem({"retry", "a", "--all"}), "");
    EXPECT_NE(problem({"status", "a", "--channels", "1"}), "");
    EXPECT_NE(problem({"jobs", "--sample-rate", "44100"}), "");
}

TEST(Cli, RetryBodyIsEmptyOrTheOptionsAsNumbers) {
    EXPECT_EQ(retry_body({}), "");
    EXPECT_EQ(retry_body({{"bitrate", "128"}, {"sample_rate", "44100"}}), R"({"bitrate":128,"sample_rate":44100})");
    EXPECT_EQ(retry_body({{"quality", "0"}, {"channels", "1"}}), R"({"channels":1,"quality":0})");
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

TEST(Cli, DownloadedMp3sAreNamedAfterTheUploadAndSharedNamesNumbered) {
    EXPECT_EQ(mp3_path("", "holiday.mp4"), "./holiday.mp3");
    EXPECT_EQ(mp3_path("music", "holiday.mp4"), "music/holiday.mp3");
    EXPECT_EQ(mp3_path("music", "song.mp3"), "music/song.converted.mp3");
    EXPECT_EQ(mp3_path("", ""), "./job.mp3");
    EXPECT_EQ(download_paths("music", {"a.mp4", "b.mkv", "a.mov", "a.mp4"}),
              (std::vector<std::string>{"music/a.mp3", "music/b.mp3", "music/a (2).mp3", "music/a (3).mp3"}));
    EXPECT_EQ(download_paths("", {}), std::vector<std::string>{});
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
}  // namespace mp3c::client
