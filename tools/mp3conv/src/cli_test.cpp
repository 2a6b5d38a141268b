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
