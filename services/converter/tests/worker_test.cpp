// The queue worker against the harness's real RabbitMQ and a filesystem store; the tests play the gateway.
#include "worker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "media_corpus.hpp"
#include "mp3c/crypto.hpp"
#include "mp3c/log.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/storage.hpp"
#include "mp3c/testing/eventually.hpp"
#include "mp3c/testing/process.hpp"
#include "mp3c/testing/tmpfs.hpp"

namespace mp3c::converter {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::eventually;

class WorkerTest : public ::testing::Test {
  protected:
    WorkerTest()
        : dir_(fs::temp_directory_path() / ("mp3c-worker-" + crypto::random_hex(6))),
          storage_url_("file://" + dir_.string()),
          topology_(amqp::Topology::with_prefix("cv" + crypto::random_hex(4) + ".")) {
        fs::create_directories(dir_ / "tmp");
        const char* url = std::getenv("MP3C_TEST_AMQP_URL");
        if (url == nullptr) throw std::runtime_error("MP3C_TEST_AMQP_URL not set: run under scripts/with-servers");
        amqp_.url = url;
        amqp_.heartbeat = 5s;
        // A test queue that hears every status event.
        amqp::Connection c(amqp_);
        amqp::declare_topology(c, topology_);
        c.declare_queue(events_queue(), false, false, true);
        c.bind(events_queue(), topology_.status_exchange, "job.*");
    }

    ~WorkerTest() override {
        worker_.reset();
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    std::string events_queue() const { return topology_.status_exchange + ".test-events"; }

    void start(bool keep_source = false, uint64_t max_input_bytes = 1ull << 30,
               std::chrono::milliseconds cancel_check_interval = 2s) {
        WorkerConfig c;
        c.cancel_check_interval = cancel_check_interval;
        c.max_input_bytes = max_input_bytes;
        c.amqp = amqp_;
        c.topology = topology_;
        c.storage_url = storage_url_;
        c.temporary_dir = (dir_ / "tmp").string();
        c.keep_source = keep_source;
        c.limits = limits_;
        worker_ = std::make_unique<Worker>(c);
        worker_->start();
    }

    // Stores a generated media file as an upload, as the gateway would.
    std::string upload(const std::vector<std::string>& ffmpeg_input, const std::string& extension) {
        std::string path = (dir_ / ("source" + crypto::random_hex(3) + extension)).string();
        std::vector<std::string> args = {"-hide_banner", "-loglevel", "error", "-y"};
        args.insert(args.end(), ffmpeg_input.begin(), ffmpeg_input.end());
        args.push_back(path);
        auto r = testing::run_command("/usr/bin/ffmpeg", args, {});
        if (r.status != 0) throw std::runtime_error("ffmpeg: " + r.out);
        auto store = storage::open_store(storage_url_, "videos");
        auto writer = store->create({.owner = "7", .filename = "clip" + extension});
        std::ifstream in(path, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        writer->write(bytes);
        return writer->commit().id;
    }

    nlohmann::json message(const std::string& job_id, const std::string& video_fid) {
        return {{"video_fid", video_fid},
                {"mp3_fid", nullptr},
                {"username", "a@example.com"},
                {"job_id", job_id},
                {"user_id", "7"},
                {"filename", "clip.wav"},
                {"options", {{"bitrate", 128}, {"quality", nullptr}, {"channels", nullptr}, {"sample_rate", nullptr}}},
                {"trace_id", "trace-1"}};
    }

    void send(const std::string& body, const std::string& message_id = {}) {
        amqp::Publisher(amqp_).publish("", topology_.video_queue, {.body = body, .message_id = message_id});
    }

    std::vector<nlohmann::json> take(const std::string& queue, size_t at_least,
                                     std::chrono::milliseconds timeout = 60s) {
        std::vector<nlohmann::json> out;
        amqp::Connection c(amqp_);
        c.consume(queue, 100);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            auto d = c.next(200ms);
            if (!d) {
                if (out.size() >= at_least) break;
                continue;
            }
            auto parsed = nlohmann::json::parse(d->body, nullptr, false);
            out.push_back(parsed.is_discarded() ? nlohmann::json(d->body) : parsed);
            c.ack(d->delivery_tag);
        }
        return out;
    }

    static const nlohmann::json* find_status(const std::vector<nlohmann::json>& events, const std::string& status) {
        for (const auto& e : events)
            if (e.is_object() && e.value("status", "") == status) return &e;
        return nullptr;
    }

    fs::path dir_;
    std::string storage_url_;  // the file store under dir_, unless a test chooses GridFS
    amqp::Topology topology_;
    amqp::Options amqp_;
    Limits limits_;  // the worker's, set before start()
    std::unique_ptr<Worker> worker_;
};

std::vector<std::string> sine_wav() { return {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3"}; }

TEST_F(WorkerTest, ConvertsStoresAnnouncesAndDeletesTheSource) {
    start();
    std::string video = upload(sine_wav(), ".wav");
    std::string job = storage::new_id();
    send(message(job, video).dump());

    auto mp3_messages = take(topology_.mp3_queue, 1);
    ASSERT_EQ(mp3_messages.size(), 1u);
    auto& m = mp3_messages[0];
    EXPECT_EQ(m["video_fid"], video);
    EXPECT_EQ(m["mp3_fid"], job) << "the MP3 is named after its job";
    EXPECT_EQ(m["username"], "a@example.com");
    EXPECT_EQ(m["job_id"], job);
    EXPECT_NEAR(m["duration_seconds"].get<double>(), 3.0, 0.05);

    auto events = take(events_queue(), 2);
    auto* done = find_status(events, "done");
    ASSERT_NE(done, nullptr);
    EXPECT_EQ((*done)["mp3_fid"], job);
    EXPECT_EQ((*done)["source_deleted"], true);
    // The waveform measured while encoding: the 3 s covered, the sine's level in every point.
    auto waveform = messages::Waveform::from_json((*done)["waveform"]);
    ASSERT_TRUE(waveform) << (*done).dump().substr(0, 300);
    EXPECT_NEAR(waveform->seconds_per_point * static_cast<double>(waveform->peaks.size()), 3.0,
                waveform->seconds_per_point);
    EXPECT_GT(*std::min_element(waveform->peaks.begin(), waveform->peaks.end() - 1), 0.05);
    EXPECT_NE(find_status(events, "processing"), nullptr);

    auto mp3s = storage::open_store(storage_url_, "mp3s");
    auto info = mp3s->stat(job);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->content_type, "audio/mpeg");
    EXPECT_FALSE(storage::open_store(storage_url_, "videos")->stat(video)) << "source deleted";
    EXPECT_TRUE(fs::is_empty(dir_ / "tmp")) << "no temporary file left";
}

// On GridFS, reading a source at an offset costs a query: the converter spools it to a nameless scratch file front to
// back first (seeks_cheaply), converts from there, stores the MP3 in GridFS and leaves no scratch file.
// The worker's rule for parallel segments: only while no other job waits. Three jobs queued before the worker starts:
// the first two find others waiting behind them and get one encoder, the last finds the queue empty and is encoded in
// parallel segments.
TEST_F(WorkerTest, LongAudioIsEncodedInParallelOnlyWhileNoOtherJobWaits) {
    limits_.threads = 2;
    limits_.parallel_from = 1s;
    limits_.segment_seconds = 1;
    std::mutex lines_mutex;
    std::vector<std::string> done_lines;
    log::set_sink([&](std::string_view line) {
        std::lock_guard lock(lines_mutex);
        if (line.find("\"job done\"") != std::string_view::npos) done_lines.emplace_back(line);
    });
    struct SinkReset {
        ~SinkReset() { log::set_sink(nullptr); }
    } reset;
    std::vector<std::string> jobs;
    for (int i = 0; i < 3; ++i) {
        std::string video = upload({"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=6"}, ".wav");
        jobs.push_back(storage::new_id());
        send(message(jobs.back(), video).dump());
    }
    start();
    auto mp3_messages = take(topology_.mp3_queue, 3);
    ASSERT_EQ(mp3_messages.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(mp3_messages[i]["job_id"], jobs[i]) << "one at a time, in order";
    ASSERT_TRUE(eventually([&] {  // each job's line comes just after its announcement
        std::lock_guard lock(lines_mutex);
        return done_lines.size() == 3;
    }));
    auto metrics = worker_->registry()->render();
    EXPECT_NE(metrics.find("converter_encodings_total{encoding=\"one_encoder\"} 2"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("converter_encodings_total{encoding=\"parallel\"} 1"), std::string::npos) << metrics;
    // Each MP3 decodes to the source's 6 s either way (the seams themselves: segment_test.cpp).
    auto mp3s = storage::open_store(storage_url_, "mp3s");
    for (const auto& job : jobs) {
        auto mp3 = mp3s->stat(job);
        ASSERT_TRUE(mp3) << job;
        auto reader = mp3s->open(job, 0, mp3->size);
        ASSERT_TRUE(reader) << job;
        std::string path = (dir_ / (job + ".mp3")).string();
        {
            std::ofstream out(path, std::ios::binary);
            char buffer[65536];
            for (size_t n; (n = reader->read(buffer, sizeof buffer)) > 0;)
                out.write(buffer, static_cast<std::streamsize>(n));
        }
        EXPECT_NEAR(test::decoded_seconds(path), 6.0, 0.001) << job;
    }
    std::lock_guard lock(lines_mutex);
    EXPECT_NE(done_lines[2].find("\"parallel_segments\":6"), std::string::npos) << done_lines[2];
    EXPECT_NE(done_lines[2].find("\"overlap_frames_dropped\":"), std::string::npos) << "what the overlaps cost";
    EXPECT_NE(done_lines[0].find("\"parallel_segments\":0"), std::string::npos) << done_lines[0];
}

// TMPDIR (where the MP3 is made) on a full disk: a 16 KiB tmpfs. The job is not failed and spends no attempt: it waits
// for space, and once space is freed it is converted.
TEST_F(WorkerTest, AFullDiskMakesTheJobWaitForSpaceNotFail) {
    std::string why;
    auto disk = testing::Tmpfs::mount(dir_ / "tmp", 16 << 10, why);
    if (!disk) GTEST_SKIP() << why;
    start();
    std::string video = upload(sine_wav(), ".wav");
    std::string job = storage::new_id();
    send(message(job, video).dump());
    ASSERT_TRUE(eventually(
        [&] {
            return worker_->registry()->render().find("converter_jobs_total{result=\"no_space\"}") != std::string::npos;
        },
        60s));
    ASSERT_TRUE(disk->resize(8 << 20));  // space freed
    auto mp3_messages = take(topology_.mp3_queue, 1);
    ASSERT_EQ(mp3_messages.size(), 1u);
    EXPECT_EQ(mp3_messages[0]["job_id"], job);
    auto events = take(events_queue(), 1, 5s);
    EXPECT_EQ(find_status(events, "failed"), nullptr) << "a full disk is not the job's failure";
    auto metrics = worker_->registry()->render();
    EXPECT_EQ(metrics.find("converter_jobs_total{result=\"retried\"}"), std::string::npos) << metrics;
}

TEST_F(WorkerTest, OnGridFsTheSourceIsSpooledConvertedAndTheMp3StoredThere) {
    const char* uri = std::getenv("MONGODB_URI");
    if (uri == nullptr || *uri == '\0') GTEST_SKIP() << "MONGODB_URI is not set (scripts/with-servers sets it)";
    storage_url_ = uri;
    start();
    // An MP4 whose index (moov) is at the end, as cameras write them: reading it needs a seek to the end and back.
    std::string video =
        upload({"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=4", "-f", "lavfi", "-i",
                "sine=frequency=440:duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"},
               ".mp4");
    std::string job = storage::new_id();
    send(message(job, video).dump());
    auto mp3_messages = take(topology_.mp3_queue, 1);
    ASSERT_EQ(mp3_messages.size(), 1u);
    EXPECT_NEAR(mp3_messages[0]["duration_seconds"].get<double>(), 4.0, 0.1);
    auto mp3s = storage::open_store(storage_url_, "mp3s");  // outlives its reader
    auto mp3 = mp3s->open(job);
    ASSERT_NE(mp3, nullptr) << "the MP3 is in GridFS";
    EXPECT_GT(mp3->info().size, 30'000u);
    EXPECT_EQ(mp3->info().content_type, "audio/mpeg");
    EXPECT_FALSE(storage::open_store(storage_url_, "videos")->stat(video)) << "source deleted";
    EXPECT_TRUE(fs::is_empty(dir_ / "tmp")) << "no scratch file left";
    EXPECT_TRUE(eventually([&] {
        auto text = worker_->registry()->render();
        return text.find("converter_jobs_total{result=\"done\"} 1") != std::string::npos;
    }));
}

TEST_F(WorkerTest, CallbackUrlTravelsToTheMp3MessageAndTheStatusEvents) {
    start();
    std::string video = upload(sine_wav(), ".wav");
    auto m = message(storage::new_id(), video);
    m["callback_url"] = "https://hooks.example.com/x";
    send(m.dump());
    auto announced = take(topology_.mp3_queue, 1);
    ASSERT_EQ(announced.size(), 1u);
    EXPECT_EQ(announced[0]["callback_url"], "https://hooks.example.com/x");
    auto events = take(events_queue(), 2);  // take() returns once the queue has been quiet for a moment
    auto* done = find_status(events, "done");
    ASSERT_NE(done, nullptr);
    EXPECT_EQ((*done)["callback_url"], "https://hooks.example.com/x");
}

TEST_F(WorkerTest, RedeliveredJobIsAnnouncedAgainNotConvertedAgain) {
    start(/*keep_source=*/true);
    std::string video = upload(sine_wav(), ".wav");
    std::string job = storage::new_id();
    send(message(job, video).dump());
    ASSERT_EQ(take(topology_.mp3_queue, 1).size(), 1u);
    send(message(job, video).dump());  // as after a crash before the ack
    ASSERT_EQ(take(topology_.mp3_queue, 1).size(), 1u);
    // Announced again without converting, but whole: the waveform and duration come from the job's stored record.
    auto events = take(events_queue(), 3);
    std::vector<nlohmann::json> done;
    for (const auto& e : events)
        if (e["status"] == "done") done.push_back(e);
    ASSERT_EQ(done.size(), 2u);
    EXPECT_TRUE(done[1].contains("waveform"));
    EXPECT_EQ(done[1]["waveform"], done[0]["waveform"]);
    EXPECT_NEAR(done[1]["duration_seconds"].get<double>(), 3.0, 0.05);
    auto metrics = worker_->registry()->render();
    EXPECT_NE(metrics.find("converter_jobs_total{result=\"done\"} 1"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("converter_jobs_total{result=\"reannounced\"} 1"), std::string::npos) << metrics;
}

TEST_F(WorkerTest, ALoudnessTargetIsReachedAndReportedInTheDoneEvent) {
    start();
    std::string video = upload(sine_wav(), ".wav");
    auto m = message(storage::new_id(), video);
    m["options"]["loudness"] = -14;
    send(m.dump());
    auto events = take(events_queue(), 2);
    auto* done = find_status(events, "done");
    ASSERT_NE(done, nullptr);
    auto loudness = messages::Loudness::from_json((*done)["loudness"]);
    ASSERT_TRUE(loudness) << (*done).dump().substr(0, 400);
    EXPECT_EQ(loudness->target_lufs, -14);
    EXPECT_EQ(loudness->true_peak_ceiling_dbtp, -1) << "the default ceiling";
    EXPECT_NEAR(*loudness->output_lufs, -14, 0.5);
    EXPECT_LE(*loudness->output_true_peak_dbtp, -1.0);
    EXPECT_GT(loudness->gain_db, 0) << "a sine at 1/8 of full scale is quieter than -14 LUFS";
}

TEST_F(WorkerTest, InputWithoutAudioFailsTheJobWithAReason) {
    start();
    std::string video = upload({"-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1", "-c:v", "mpeg4"}, ".mp4");
    std::string job = storage::new_id();
    send(message(job, video).dump());
    auto events = take(events_queue(), 2);
    auto* failed = find_status(events, "failed");
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ((*failed)["error"], "the file has no audio track");
    EXPECT_EQ((*failed)["reason"], "no_audio");
    EXPECT_TRUE(take(topology_.video_queue, 0, 1s).empty()) << "acked: not redelivered";
}

TEST_F(WorkerTest, UploadOverTheSizeLimitFailsAtOnce) {
    start(false, 1000);
    std::string video = upload(sine_wav(), ".wav");
    std::string job = storage::new_id();
    send(message(job, video).dump());
    auto events = take(events_queue(), 1);
    auto* failed = find_status(events, "failed");
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ((*failed)["reason"], "too_large");
    EXPECT_NE((*failed)["error"].get<std::string>().find("larger than"), std::string::npos);
}

TEST_F(WorkerTest, PoisonMessagesAreDeadLettered) {
    start();
    send("{not json");
    send(R"({"job_id":"../x","video_fid":"y","username":"z"})");
    auto dead = take(amqp::names::dead_queue(topology_.video_queue), 2);
    EXPECT_EQ(dead.size(), 2u);
    EXPECT_TRUE(take(events_queue(), 0, 1s).empty()) << "no job named: nothing to fail";
}

TEST_F(WorkerTest, PoisonMessageThatNamesAJobFailsTheJob) {
    start();
    std::string in_body = storage::new_id(), in_header = storage::new_id();
    send(R"({"job_id":")" + in_body + R"(","username":"a@example.com","options":"loud"})");
    send("\x01\x02 damaged", in_header);  // the gateway sets the message id to the job id
    auto dead = take(amqp::names::dead_queue(topology_.video_queue), 2);
    EXPECT_EQ(dead.size(), 2u);
    auto events = take(events_queue(), 2);
    std::set<std::string> failed;
    for (const auto& e : events) {
        if (e.value("status", "") != "failed") continue;
        EXPECT_EQ(e["reason"], "invalid_message");
        failed.insert(e["job_id"].get<std::string>());
    }
    EXPECT_EQ(failed, (std::set<std::string>{in_body, in_header}));
}

TEST_F(WorkerTest, NoTemporaryFileOutlivesAJobEvenWhileItRuns) {
    start();
    std::string video = upload({"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60"}, ".flac");
    send(message(storage::new_id(), video).dump());
    // While the conversion runs its scratch file exists only as an open descriptor: a kill -9 leaves nothing.
    bool saw_processing = false;
    for (const auto& e : take(events_queue(), 3)) {
        if (e.value("status", "") == "processing") saw_processing = true;
        EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
    }
    EXPECT_TRUE(saw_processing);
    ASSERT_EQ(take(topology_.mp3_queue, 1).size(), 1u);
    EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

TEST_F(WorkerTest, JobWhoseUploadIsGoneIsSkipped) {
    start();
    send(message(storage::new_id(), storage::new_id()).dump());
    EXPECT_TRUE(eventually([&] {
        auto metrics = worker_->registry()->render();
        return metrics.find("converter_jobs_total{result=\"skipped\"} 1") != std::string::npos;
    }));
    EXPECT_TRUE(take(topology_.mp3_queue, 0, 1s).empty());
}

// Its owner cancels the job while it converts: the gateway deletes the upload, and the conversion stops within the
// check interval, storing nothing and announcing nothing (the gateway already recorded and announced the end).
// A 9 s tone in M4A with three chapters of 3 s ("Eins", "Zwei", "Drei").
std::vector<std::string> three_chapters(const fs::path& dir) {
    std::string metadata = ";FFMETADATA1\n";
    const char* titles[] = {"Eins", "Zwei", "Drei"};
    for (int i = 0; i < 3; ++i) {
        metadata += "[CHAPTER]\nTIMEBASE=1/1000\nSTART=" + std::to_string(i * 3000) +
                    "\nEND=" + std::to_string((i + 1) * 3000) + "\ntitle=" + titles[i] + "\n";
    }
    std::string path = (dir / "chapters.txt").string();
    std::ofstream(path) << metadata;
    return {"-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=9",
            "-f",
            "ffmetadata",
            "-i",
            path,
            "-map",
            "0:a",
            "-map_chapters",
            "1",
            "-c:a",
            "aac"};
}

TEST_F(WorkerTest, ASplitJobStoresEachPartAndAnnouncesThemEvenWhenAnnouncedAgain) {
    start(/*keep_source=*/true);
    std::string video = upload(three_chapters(dir_), ".m4a");
    std::string job = storage::new_id();
    auto m = message(job, video);
    m["options"]["chapters"] = "split";
    send(m.dump());
    auto announced = take(topology_.mp3_queue, 1);
    ASSERT_EQ(announced.size(), 1u);
    EXPECT_EQ(announced[0]["parts"], 3);
    // Announced again (a crash before the ack): the parts come from the job's record, not from a second conversion.
    send(m.dump());
    ASSERT_EQ(take(topology_.mp3_queue, 1)[0]["parts"], 3);
    // One take of the events: their test queue goes with its consumer.
    std::vector<nlohmann::json> done_events;
    for (const auto& e : take(events_queue(), 3))
        if (e.value("status", "") == "done") done_events.push_back(e);
    ASSERT_EQ(done_events.size(), 2u);
    EXPECT_EQ(done_events[1]["parts"], done_events[0]["parts"]);
    EXPECT_NE(worker_->registry()->render().find("converter_jobs_total{result=\"reannounced\"} 1"), std::string::npos);
    const nlohmann::json* done = &done_events[0];
    auto parts = messages::parts_from_json((*done)["parts"]);
    ASSERT_TRUE(parts && parts->size() == 3u) << (*done).dump().substr(0, 600);
    auto mp3s = storage::open_store(storage_url_, "mp3s");
    for (int i = 0; i < 3; ++i) {
        const auto& part = (*parts)[static_cast<size_t>(i)];
        EXPECT_EQ(part.fid, messages::part_id(job, i + 1));
        EXPECT_NEAR(part.start_seconds, 3.0 * i, 0.01);
        EXPECT_NEAR(part.duration_seconds, 3.0, 0.01);
        auto info = mp3s->stat(part.fid);
        ASSERT_TRUE(info) << "part " << i + 1 << " is stored";
        EXPECT_EQ(info->size, part.size);
        EXPECT_EQ(info->owner, "7");
        EXPECT_EQ(info->filename, i == 1 ? "02 - Zwei.mp3" : info->filename);
    }
    EXPECT_TRUE(mp3s->stat(job)) << "and the whole";
}

TEST_F(WorkerTest, ASplitJobWhosePartsDoNotFitFailsAndLeavesNoPart) {
    start(/*keep_source=*/true);
    std::string video = upload(three_chapters(dir_), ".m4a");
    std::string job = storage::new_id();
    auto m = message(job, video);
    m["options"]["chapters"] = "split";
    m["max_output_bytes"] = 9 * 128000 / 8 + 100'000;  // the whole and about two parts of three
    send(m.dump());
    auto events = take(events_queue(), 2);
    auto* failed = find_status(events, "failed");
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ((*failed)["reason"], "output_too_large");
    auto mp3s = storage::open_store(storage_url_, "mp3s");
    for (int i = 1; i <= 3; ++i) EXPECT_FALSE(mp3s->stat(messages::part_id(job, i))) << "part " << i;
    EXPECT_FALSE(mp3s->stat(messages::record_id(job)));
    EXPECT_FALSE(mp3s->stat(job));
    EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

TEST_F(WorkerTest, AJobCancelledWhileConvertingStopsAndLeavesNothing) {
    start(false, 1ull << 30, 200ms);
    std::string video =
        upload({"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1800"}, ".flac");  // 30 minutes
    std::string job = storage::new_id();
    // One consumer for the whole test: the events queue goes with its last consumer.
    amqp::Connection events(amqp_);
    events.consume(events_queue(), 100);
    send(message(job, video).dump());
    auto cancelled = [&] {
        return worker_->registry()->render().find("converter_jobs_total{result=\"cancelled\"} 1") != std::string::npos;
    };
    std::vector<std::string> statuses;
    bool removed = false;
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline && !(removed && cancelled())) {
        auto d = events.next(100ms);
        if (!d) continue;
        auto e = nlohmann::json::parse(d->body);
        events.ack(d->delivery_tag);
        statuses.push_back(e.value("status", ""));
        if (!removed && e.value("status", "") == "processing" && e.value("progress", 0) >= 1) {
            // Its owner cancels it: the gateway deletes the upload.
            storage::open_store(storage_url_, "videos")->remove(video);
            removed = true;
        }
    }
    ASSERT_TRUE(removed) << "the conversion was seen going";
    EXPECT_TRUE(cancelled()) << "stopped for the cancellation";
    while (auto d = events.next(500ms)) {  // what comes after
        statuses.push_back(nlohmann::json::parse(d->body).value("status", ""));
        events.ack(d->delivery_tag);
    }
    for (const auto& status : statuses) {
        EXPECT_NE(status, "failed") << "nothing is reported for a cancelled job";
        EXPECT_NE(status, "done");
    }
    EXPECT_TRUE(take(topology_.mp3_queue, 0, 1s).empty());
    EXPECT_FALSE(storage::open_store(storage_url_, "mp3s")->stat(job)) << "no MP3 stored";
    EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

}  // namespace
}  // namespace mp3c::converter
