// Hostile uploads through the whole path: the gateway (in-process) takes them from an attacker, the converter binary
// (a separate process, as operators run it) consumes them from the harness's RabbitMQ, the jobs live in its MariaDB.
// Every case must end failed with its reason, having read nothing but the upload and left nothing behind.
#include <unistd.h>

#include "converter_system_fixture.hpp"
#include "hostile_media.hpp"

namespace mp3c::gateway::test {
namespace {

using converter::test::FileWatch;
using converter::test::hostile_files;
using converter::test::LoopbackListener;

class ConverterHostileTest : public ConverterSystemTest {
  protected:
    // Runs ffmpeg to make a file from `args`; returns its bytes.
    std::string make(const std::vector<std::string>& args, const std::string& name) {
        std::vector<std::string> all = {"-hide_banner", "-loglevel", "error", "-y"};
        all.insert(all.end(), args.begin(), args.end());
        std::string path = (media_dir_ / name).string();
        all.push_back(path);
        auto r = testing::run_command("/usr/bin/ffmpeg", all, {});
        if (r.status != 0) throw std::runtime_error("ffmpeg: " + r.out);
        std::ifstream in(path, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }

    static std::vector<std::string> tone(int rate, double seconds) {
        return {"-f", "lavfi", "-i",
                "sine=frequency=500:sample_rate=" + std::to_string(rate) + ":duration=" + std::to_string(seconds)};
    }

    std::string upload_as(const std::string& tok, const std::string& bytes, const std::string& name,
                          std::vector<Part> extra = {}) {
        auto r = upload(tok, bytes, name, std::move(extra));
        EXPECT_EQ(r.status, 202) << name << ": " << r.body;
        return r.json().value("job_id", "");
    }

    // Waits for the job to end and checks it failed for `reason`, saying `words`, with no MP3.
    void expect_failed(const std::string& tok, const std::string& id, const std::string& reason,
                       const std::string& words, const std::string& what) {
        SCOPED_TRACE(what);
        ASSERT_TRUE(eventually(
            [&] { return job(tok, id)["status"] != "queued" && job(tok, id)["status"] != "processing"; }, 60s))
            << job(tok, id).dump();
        auto j = job(tok, id);
        EXPECT_EQ(j["status"], "failed") << j.dump();
        EXPECT_EQ(j["reason"], reason) << j.dump();
        EXPECT_NE(j.value("error", nlohmann::json("")).get<std::string>().find(words), std::string::npos) << j.dump();
        EXPECT_TRUE(j["mp3_fid"].is_null());
        EXPECT_NE(get("/jobs/" + id + "/mp3", tok).status, 200);
    }

    std::string working_directory(size_t converter) {
        char target[4096];
        std::string link = "/proc/" + std::to_string(converters_[converter]->pid()) + "/cwd";
        ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        return n < 0 ? std::string() : std::string(target, static_cast<size_t>(n));
    }
};

TEST_F(ConverterHostileTest, ReferencesToOtherFilesAndAddressesFailWithoutReadingThem) {
    auto victim = token(1, "victim@example.com");
    auto attacker = token(2, "attacker@example.com");
    size_t c = start_converter();
    std::string cwd = working_directory(c);
    EXPECT_NE(cwd.find("(deleted)"), std::string::npos)
        << "the converter works in an emptied, removed directory: " << cwd;

    std::string victim_job = submit(victim, media(2));
    ASSERT_TRUE(eventually([&] { return job(victim, victim_job)["status"] == "done"; }, 60s));
    fs::path victim_mp3 = storage_dir_ / "mp3s" / victim_job.substr(0, 2) / victim_job;
    ASSERT_TRUE(fs::exists(victim_mp3))
        << "the stored MP3's real path, as an attacker who guessed the id would name it";

    LoopbackListener listener;
    FileWatch watch(victim_mp3.string());
    // Relative to the directory the converter was started in: where `make up` resolved such names before.
    auto cases = hostile_files(victim_mp3.string(), fs::relative(victim_mp3, fs::current_path()).string(), listener);
    cases.push_back(
        {"still_image.mp4",
         make({"-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1", "-f", "image2pipe", "-c:v", "png"},
              "still.png"),
         "an image"});
    std::vector<std::string> ids;
    for (const auto& hostile : cases) ids.push_back(upload_as(attacker, hostile.content, hostile.name));
    for (size_t i = 0; i < cases.size(); ++i) {
        expect_failed(attacker, ids[i], "unsupported_format", cases[i].mentions, cases[i].name);
    }

    EXPECT_EQ(listener.connections(), 0) << "the converter connected to an address named in an upload";
    EXPECT_EQ(watch.events(), 0) << "the converter opened another user's MP3 named in an upload";
    EXPECT_EQ(stored_files("mp3s"), 1u) << "only the victim's MP3";
    EXPECT_EQ(count(c, "retrying"), 0u) << "a refused input is not retried";
    EXPECT_TRUE(scratch_empty()) << "nothing left in the converter's TMPDIR";
    auto listing = get("/jobs", attacker).json();
    for (const auto& j : listing["jobs"]) EXPECT_NE(j["job_id"], victim_job);

    // The control: the victim's MP3 is still served to its owner, and the watch sees that read.
    EXPECT_EQ(get("/jobs/" + victim_job + "/mp3", victim).status, 200);
    EXPECT_GT(watch.events(), 0);
}

TEST_F(ConverterHostileTest, LegalButHostileInputsFailEachWithItsOwnReason) {
    auto tok = token(1, "a@example.com");
    size_t c = start_converter(
        {{"MAX_CHANNELS", "2"}, {"MAX_STREAMS", "4"}, {"MAX_SAMPLE_RATE", "48000"}, {"MAX_OUTPUT_BYTES", "1000000"}});
    auto surround = tone(44100, 2);
    surround.insert(surround.end(), {"-af", "aformat=channel_layouts=5.1"});
    std::string channels = upload_as(tok, make(surround, "surround.flac"), "surround.flac");
    std::string rate = upload_as(tok, make(tone(96000, 2), "hires.flac"), "hires.flac");
    std::string streams = upload_as(tok, make(converter::test::many_tracks(6, "flac"), "tracks.mkv"), "tracks.mkv");
    std::string output = upload_as(tok, media(120), "long.flac");  // 120 s at 192 kb/s: 2.9 MB of MP3
    std::string fine = upload_as(tok, media(2), "fine.flac");

    expect_failed(tok, channels, "too_many_channels", "6 channels", "channels");
    expect_failed(tok, rate, "sample_rate_too_high", "96000 Hz", "sample rate");
    expect_failed(tok, streams, "too_many_streams", "more than 4 streams", "streams");
    expect_failed(tok, output, "output_too_large", "1000000 bytes", "output size");
    ASSERT_TRUE(eventually([&] { return job(tok, fine)["status"] == "done"; }))
        << "the limits let a normal file through";
    EXPECT_EQ(stored_files("mp3s"), 1u);
    EXPECT_EQ(count(c, "retrying"), 0u);
    EXPECT_TRUE(scratch_empty());
}

TEST_F(ConverterHostileTest, ConversionSlowerThanItsAllowanceTimesOut) {
    auto tok = token(1, "a@example.com");
    // 1 ms, or a millisecond per ten seconds of audio: no decoder and encoder are that fast.
    start_converter({{"CONVERSION_TIMEOUT", "1ms"}, {"CONVERSION_TIMEOUT_RATIO", "0.0001"}});
    std::string id = submit(tok, media(120));
    expect_failed(tok, id, "timeout", "took longer than allowed", "timeout");
    EXPECT_TRUE(scratch_empty());
}

TEST_F(ConverterHostileTest, HoursOfSilenceCannotOutgrowTheOwnersQuota) {
    // An hour of silence is 450 kB of FLAC and 86 MB of MP3 at 192 kb/s.
    start([](GatewayConfig& c) {
        c.max_upload_bytes = 64 << 20;
        c.user_quota_bytes = 3'000'000;
    });
    auto tok = token(1, "a@example.com");
    start_converter();
    std::string silence =
        make({"-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "3600", "-c:a", "flac"}, "silence.flac");
    ASSERT_LT(silence.size(), 1'000'000u);
    std::string cbr = upload_as(tok, silence, "silence.flac");
    expect_failed(tok, cbr, "output_too_large", "storage quota", "constant bitrate: refused before converting");
    // VBR: no size in advance; the bytes are counted as they are written.
    std::string vbr = upload_as(tok, silence, "silence.flac", {{"quality", "0"}});
    expect_failed(tok, vbr, "output_too_large", "storage quota", "variable bitrate: stopped at the quota");
    EXPECT_EQ(stored_files("mp3s"), 0u);
    EXPECT_TRUE(scratch_empty());

    auto fine = upload_as(tok, media(2), "fine.flac");
    EXPECT_TRUE(eventually([&] { return job(tok, fine)["status"] == "done"; })) << "what fits in the quota converts";
}

}  // namespace
}  // namespace mp3c::gateway::test
