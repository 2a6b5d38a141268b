// What users keep (issue 16), against real MariaDB and RabbitMQ and the filesystem store: the mail's signed link,
// retention and the sweeper, retries, ZIPs of many MP3s, and no second conversion of the same upload. The tests play
// the converter: they read the `video` queue, store MP3s named after their job, and publish status events.
#include <fcntl.h>
#include <sys/stat.h>

#include <ctime>
#include <fstream>

#include "gateway_fixture.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/storage.hpp"
#include "mp3c/testing/process.hpp"
#include "sweeper.hpp"

namespace mp3c::gateway::test {
namespace {

const std::string kTicketSecret(40, 't');

void expect_error(const HttpResponse& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.json()["error"], code) << r.body;
}

class GatewayResultsTest : public GatewayTest {
  protected:
    void SetUp() override { start(); }

    void start(std::function<void(GatewayConfig&)> adjust = nullptr) {
        GatewayTest::start([adjust](GatewayConfig& c) {
            c.job_ticket_secret = kTicketSecret;
            c.retention = std::chrono::hours(24 * 7);
            c.source_retention = std::chrono::hours(24);
            if (adjust) adjust(c);
        });
    }

    std::unique_ptr<storage::BlobStore> store(const std::string& bucket) {
        return storage::open_store("file://" + storage_dir_.string(), bucket);
    }

    // Converts the job as the converter does: its MP3 named after it, its upload deleted, a done event.
    void convert(const std::string& job_id, const std::string& mp3, const std::string& tok,
                 const nlohmann::json& extra = nlohmann::json::object()) {
        auto writer =
            store("mp3s")->create({.owner = "1", .filename = "x.mp3", .content_type = "audio/mpeg", .id = job_id});
        writer->write(mp3);
        writer->commit();
        auto job = get("/jobs/" + job_id, tok).json();
        store("videos")->remove(job["video_fid"]);
        nlohmann::json done = {{"job_id", job_id},       {"status", "done"},        {"mp3_fid", job_id},
                               {"mp3_size", mp3.size()}, {"duration_seconds", 3.5}, {"source_deleted", true}};
        done.update(extra);  // more of what a converter's done event carries (waveform, loudness)
        publish_event(done);
        ASSERT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["status"] == "done"; }));
    }

    // Each upload's bytes differ unless `video` is given: the same bytes would be served by the earlier job's MP3.
    std::string finished_job(const std::string& tok, const std::string& mp3, const std::string& filename = "clip.mp4",
                             std::optional<std::string> video = std::nullopt) {
        auto r = upload(tok, video.value_or(pattern(1000, ++uploads_)), filename);
        EXPECT_EQ(r.status, 202) << r.body;
        std::string job_id = r.json()["job_id"];
        convert(job_id, mp3, tok);
        return job_id;
    }

    std::string failed_job(const std::string& tok, const std::string& filename = "broken.mp4") {
        auto r = upload(tok, pattern(700, ++uploads_), filename);
        EXPECT_EQ(r.status, 202) << r.body;
        std::string job_id = r.json()["job_id"];
        publish_event({{"job_id", job_id},
                       {"status", "failed"},
                       {"error", "the file has no audio track"},
                       {"reason", "no_audio"}});
        EXPECT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["status"] == "failed"; }));
        return job_id;
    }

    HttpResponse post(const std::string& target, const std::string& tok, const std::string& body = "") {
        auto headers = bearer(tok);
        if (!body.empty()) headers["Content-Type"] = "application/json";
        return testing::http_request(port_, "POST", target, headers, body);
    }

    unsigned uploads_ = 1000;

    uint64_t stored(const std::string& tok) {
        return get("/account", tok).json()["usage"]["stored_bytes"].get<uint64_t>();
    }
};

TEST_F(GatewayResultsTest, TheMailsLinkDownloadsWithoutSigningInUntilTheJobIsDeleted) {
    auto alice = token(1, "alice@example.com");
    std::string mp3 = pattern(40000, 5);
    std::string job = finished_job(alice, mp3, "talk.mp4");
    std::string link = messages::mail_link_path(kTicketSecret, job);

    auto r = testing::http_request(port_, "GET", link, {});  // a mail client's browser: no token
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, mp3);
    EXPECT_EQ(r.header("content-disposition").rfind("attachment; filename=\"talk.mp3\"", 0), 0u);
    EXPECT_EQ(testing::http_request(port_, "GET", link, {{"Range", "bytes=0-9"}}).status, 206);

    // Bound to the job: another job's id, a tampered signature, or one made with another key are refused.
    std::string other = finished_job(alice, pattern(100, 6));
    std::string signature = link.substr(link.find("signature=") + 10);
    expect_error(testing::http_request(port_, "GET", "/jobs/" + other + "/mp3?signature=" + signature, {}), 403,
                 "invalid_link");
    std::string tampered = link;
    tampered.back() = tampered.back() == 'a' ? 'b' : 'a';
    expect_error(testing::http_request(port_, "GET", tampered, {}), 403, "invalid_link");
    expect_error(testing::http_request(port_, "GET", messages::mail_link_path(std::string(40, 'x'), job), {}), 403,
                 "invalid_link");

    // Deleting the job ends the link.
    EXPECT_EQ(testing::http_request(port_, "DELETE", "/jobs/" + job, bearer(alice)).status, 204);
    expect_error(testing::http_request(port_, "GET", link, {}), 404, "job_not_found");
}

TEST_F(GatewayResultsTest, WithoutAJobTicketSecretTheMailLinksAreRefused) {
    start([](GatewayConfig& c) { c.job_ticket_secret.clear(); });
    auto alice = token(1, "alice@example.com");
    std::string job = finished_job(alice, pattern(100));
    expect_error(testing::http_request(port_, "GET", messages::mail_link_path("", job), {}), 403, "invalid_link");
}

TEST_F(GatewayResultsTest, TheSweeperDeletesExpiredMp3sAndUploadsAndTheQuotaDrops) {
    start([](GatewayConfig& c) {
        c.retention = 2s;
        c.source_retention = 1h;
        c.sweep_interval = 100ms;
    });
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    std::string failed = failed_job(alice);                             // its upload is kept for a day: untouched
    std::string queued = upload(alice, pattern(300)).json()["job_id"];  // not finished: untouched
    uint64_t before = stored(alice);
    std::string mp3 = pattern(5000, 8);
    std::string done = finished_job(alice, mp3);
    auto job = get("/jobs/" + done, alice).json();
    ASSERT_TRUE(job["expires_at"].is_string()) << job;
    auto finished = parse_iso8601(job["finished_at"].get<std::string>());
    auto expires = parse_iso8601(job["expires_at"].get<std::string>());
    ASSERT_TRUE(finished && expires);
    EXPECT_NEAR(static_cast<double>(*expires - *finished), 2000.0, 50.0) << "RETENTION after the MP3 was made";
    EXPECT_EQ(stored(alice), before + mp3.size());
    std::string link = messages::mail_link_path(kTicketSecret, done);
    ASSERT_EQ(testing::http_request(port_, "GET", link, {}).status, 200);

    ASSERT_TRUE(eventually([&] { return get("/jobs/" + done, alice).json()["status"] == "expired"; }, 20s));
    job = get("/jobs/" + done, alice).json();
    EXPECT_TRUE(job["mp3_fid"].is_null()) << job;
    EXPECT_FALSE(store("mp3s")->stat(done).has_value()) << "the MP3 is deleted";
    EXPECT_EQ(stored(alice), before) << "the quota no longer counts it";
    expect_error(get("/jobs/" + done + "/mp3", alice), 410, "expired");
    expect_error(testing::http_request(port_, "GET", link, {}), 410, "expired");
    // Nothing else was touched.
    auto kept = get("/jobs/" + failed, alice).json();
    EXPECT_EQ(kept["status"], "failed");
    EXPECT_TRUE(kept["retryable"].get<bool>());
    EXPECT_TRUE(store("videos")->stat(kept["video_fid"]).has_value());
    EXPECT_EQ(get("/jobs/" + queued, alice).json()["status"], "queued");
    EXPECT_GE(metric("gateway_expired_jobs_total{deleted=\"mp3\"}"), 1.0);
    EXPECT_EQ(get("/jobs/" + done, bob).status, 404) << "still only its owner's";
}

TEST_F(GatewayResultsTest, AFailedJobsUploadExpiresAfterSourceRetention) {
    start([](GatewayConfig& c) {
        c.source_retention = 1s;
        c.sweep_interval = 100ms;
    });
    auto alice = token(1, "alice@example.com");
    std::string failed = failed_job(alice);
    std::string video_fid = get("/jobs/" + failed, alice).json()["video_fid"];
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + failed, alice).json()["status"] == "expired"; }, 20s));
    auto job = get("/jobs/" + failed, alice).json();
    EXPECT_EQ(job["reason"], "no_audio") << "why it failed stays";
    EXPECT_FALSE(job["retryable"].get<bool>());
    EXPECT_FALSE(store("videos")->stat(video_fid).has_value());
    EXPECT_EQ(stored(alice), 0u);
    expect_error(post("/jobs/" + failed + "/retry", alice), 410, "source_gone");
}

TEST_F(GatewayResultsTest, TheSweeperRemovesWhatAnUploadCutShortLeftBehind) {
    start([](GatewayConfig& c) {
        c.sweep_interval = 100ms;
        c.abandoned_sweep_interval = 100ms;
    });
    // A converter killed while storing an MP3 leaves its partial file; nothing writes to it any more.
    auto tmp = storage_dir_ / "mp3s" / "tmp";
    auto part = tmp / "0123456789abcdef01234567.dddd.part";
    std::ofstream(part) << "half an MP3";
    timespec two_hours_ago[2] = {{std::time(nullptr) - 7200, 0}, {std::time(nullptr) - 7200, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, part.c_str(), two_hours_ago, 0), 0);
    auto fresh = tmp / "fedcba9876543210fedcba98.eeee.part";
    std::ofstream(fresh) << "an MP3 being stored right now";
    ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(part); }, 20s));
    EXPECT_TRUE(std::filesystem::exists(fresh));
    EXPECT_TRUE(eventually([&] { return metric("gateway_abandoned_uploads_removed_total{store=\"mp3s\"}") == 1.0; }));
}

TEST_F(GatewayResultsTest, OneReplicaSweepsAtATime) {
    start([](GatewayConfig& c) {
        c.retention = 1s;
        c.sweep_interval = 100ms;
    });
    auto alice = token(1, "alice@example.com");
    mysql::Pool other_replica(database_.options());
    std::string other = mysql::new_lease_holder();
    other_replica.with([&](mysql::Connection& c) {
        // Another replica is sweeping: this one skips its rounds, and the expired job waits. (This replica's own
        // sweeps, every 100 ms, hold the lease for a moment each: the other takes it between two.)
        ASSERT_TRUE(eventually([&] { return mysql::try_lease(c, Sweeper::kLockName, other, 60s); }));
        std::string done = finished_job(alice, pattern(100));
        auto expires = parse_iso8601(get("/jobs/" + done, alice).json()["expires_at"].get<std::string>());
        ASSERT_TRUE(eventually([&] {
            return std::chrono::system_clock::now().time_since_epoch() > std::chrono::milliseconds(*expires + 200);
        }));
        double skipped = metric("gateway_sweeps_total{result=\"skipped\"}");
        ASSERT_TRUE(eventually([&] { return metric("gateway_sweeps_total{result=\"skipped\"}") >= skipped + 2; }));
        EXPECT_EQ(get("/jobs/" + done, alice).json()["status"], "done") << "not swept while another replica holds it";
        mysql::release_lease(c, Sweeper::kLockName, other);
        EXPECT_TRUE(eventually([&] { return get("/jobs/" + done, alice).json()["status"] == "expired"; }, 20s));
    });
}

TEST_F(GatewayResultsTest, AJobCanBeKeptLongerUpToTheMaximum) {
    start([](GatewayConfig& c) { c.max_retention = std::chrono::hours(24 * 30); });
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    std::string done = finished_job(alice, pattern(100));
    auto patch = [&](const std::string& tok, const std::string& id, const std::string& body) {
        auto headers = bearer(tok);
        headers["Content-Type"] = "application/json";
        return testing::http_request(port_, "PATCH", "/jobs/" + id, headers, body);
    };
    auto in_days = [](int days) {
        return iso8601(std::chrono::duration_cast<std::chrono::milliseconds>(
                           (std::chrono::system_clock::now() + std::chrono::hours(24 * days)).time_since_epoch())
                           .count());
    };
    std::string later = in_days(20);
    auto r = patch(alice, done, nlohmann::json{{"expires_at", later}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["expires_at"], later);
    EXPECT_EQ(get("/jobs/" + done, alice).json()["expires_at"], later);
    expect_error(patch(alice, done, nlohmann::json{{"expires_at", in_days(31)}}.dump()), 400, "invalid_expires_at");
    expect_error(patch(alice, done, R"({"expires_at":"2001-01-01T00:00:00Z"})"), 400, "invalid_expires_at");
    expect_error(patch(alice, done, R"({"expires_at":"soon"})"), 400, "invalid_expires_at");
    expect_error(patch(alice, done, R"([1])"), 400, "invalid_json");
    expect_error(patch(bob, done, nlohmann::json{{"expires_at", later}}.dump()), 404, "job_not_found");
    std::string queued = upload(alice, pattern(100)).json()["job_id"];
    expect_error(patch(alice, queued, nlohmann::json{{"expires_at", later}}.dump()), 409, "nothing_kept");
}

TEST_F(GatewayResultsTest, RetryQueuesAFailedJobAgainWithTheSameOrNewOptions) {
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    std::string failed = failed_job(alice);
    drain(topology_.video_queue);
    auto job = get("/jobs/" + failed, alice).json();
    EXPECT_TRUE(job["retryable"].get<bool>());
    EXPECT_TRUE(job["expires_at"].is_string()) << "the upload is kept SOURCE_RETENTION for a retry";

    expect_error(post("/jobs/" + failed + "/retry", bob), 404, "job_not_found");
    expect_error(post("/jobs/" + failed + "/retry", alice, R"({"bitrate": 100})"), 400, "invalid_option");
    auto r = post("/jobs/" + failed + "/retry", alice, R"({"bitrate": 128, "channels": 1})");
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.json()["status"], "queued");
    EXPECT_TRUE(r.json()["error"].is_null());
    EXPECT_TRUE(r.json()["expires_at"].is_null());
    auto messages = drain_at_least(topology_.video_queue, 1);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0]["job_id"], failed);
    EXPECT_EQ(messages[0]["video_fid"], job["video_fid"]) << "the same upload";
    EXPECT_EQ(messages[0]["options"]["bitrate"], 128);
    EXPECT_EQ(messages[0]["options"]["channels"], 1);
    expect_error(post("/jobs/" + failed + "/retry", alice), 409, "not_failed");

    // Fails again; retried with no body: the options it had.
    publish_event({{"job_id", failed}, {"status", "failed"}, {"error", "still no audio"}, {"reason", "no_audio"}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + failed, alice).json()["status"] == "failed"; }));
    ASSERT_EQ(post("/jobs/" + failed + "/retry", alice).status, 202);
    EXPECT_EQ(drain_at_least(topology_.video_queue, 1).at(0)["options"]["bitrate"], 128);
    EXPECT_EQ(get("/jobs/" + failed, alice).json()["status"], "queued") << "the failure heard before is forgotten";

    // Tags and audio options are two groups: giving one keeps the other.
    auto fail_again = [&] {
        publish_event({{"job_id", failed}, {"status", "failed"}, {"error", "again"}, {"reason", "no_audio"}});
        ASSERT_TRUE(eventually([&] { return get("/jobs/" + failed, alice).json()["status"] == "failed"; }));
    };
    fail_again();
    expect_error(post("/jobs/" + failed + "/retry", alice, R"({"year": 24})"), 400, "invalid_option");
    expect_error(post("/jobs/" + failed + "/retry", alice, R"({"year": "24"})"), 400, "invalid_option");
    ASSERT_EQ(post("/jobs/" + failed + "/retry", alice, R"({"title": "Zoë live", "year": "2024"})").status, 202);
    auto options = drain_at_least(topology_.video_queue, 1).at(0)["options"];
    EXPECT_EQ(options["bitrate"], 128) << "the audio options kept";
    EXPECT_EQ(options["tags"], (nlohmann::json{{"title", "Zoë live"}, {"year", "2024"}}));
    fail_again();
    ASSERT_EQ(post("/jobs/" + failed + "/retry", alice, R"({"quality": 2})").status, 202);
    options = drain_at_least(topology_.video_queue, 1).at(0)["options"];
    EXPECT_TRUE(options["bitrate"].is_null()) << "the audio options replaced together";
    EXPECT_EQ(options["quality"], 2);
    EXPECT_EQ(options["tags"]["title"], "Zoë live") << "the tags kept";
    fail_again();
    expect_error(post("/jobs/" + failed + "/retry", alice, R"({"start": 30, "end": "0:20"})"), 400, "invalid_option");
    ASSERT_EQ(post("/jobs/" + failed + "/retry", alice, R"({"start": 12.5, "end": "1:00"})").status, 202);
    options = drain_at_least(topology_.video_queue, 1).at(0)["options"];
    EXPECT_EQ(options["start"], 12.5);
    EXPECT_EQ(options["end"], 60.0);
    EXPECT_EQ(options["quality"], 2) << "the audio options kept";
    fail_again();
    expect_error(post("/jobs/" + failed + "/retry", alice, R"({"chapters": "parts"})"), 400, "invalid_option");
    ASSERT_EQ(post("/jobs/" + failed + "/retry", alice, R"({"chapters": "none"})").status, 202);
    options = drain_at_least(topology_.video_queue, 1).at(0)["options"];
    EXPECT_EQ(options["chapters"], "none");
    EXPECT_EQ(options["start"], 12.5) << "the trim kept";
    fail_again();
    expect_error(post("/jobs/" + failed + "/retry", alice, R"({"loudness": -40})"), 400, "invalid_option");
    expect_error(post("/jobs/" + failed + "/retry", alice, R"({"true_peak": -1})"), 400, "invalid_option");
    ASSERT_EQ(post("/jobs/" + failed + "/retry", alice, R"({"loudness": -16, "true_peak": "-1.5"})").status, 202);
    options = drain_at_least(topology_.video_queue, 1).at(0)["options"];
    EXPECT_EQ(options["loudness"], -16.0);
    EXPECT_EQ(options["true_peak"], -1.5);
    EXPECT_EQ(options["chapters"], "none") << "the chapters kept";
    fail_again();
    expect_error(post("/jobs/" + failed + "/retry", alice, R"({"cover": "frame"})"), 400, "invalid_option");
    ASSERT_EQ(post("/jobs/" + failed + "/retry", alice, R"({"cover": "none"})").status, 202);
    options = drain_at_least(topology_.video_queue, 1).at(0)["options"];
    EXPECT_EQ(options["cover"], "none");
    EXPECT_EQ(options["loudness"], -16.0) << "the loudness kept";
    fail_again();
    ASSERT_EQ(post("/jobs/" + failed + "/retry", alice, R"({"loudness": "off"})").status, 202);
    options = drain_at_least(topology_.video_queue, 1).at(0)["options"];
    EXPECT_FALSE(options.contains("loudness")) << "ended, with its ceiling";
    EXPECT_FALSE(options.contains("true_peak"));

    std::string done = finished_job(alice, pattern(100));
    expect_error(post("/jobs/" + done + "/retry", alice), 409, "not_failed");

    // An upload that is gone (deleted from storage behind the gateway's back) cannot be retried.
    std::string gone = failed_job(alice);
    store("videos")->remove(get("/jobs/" + gone, alice).json()["video_fid"]);
    expect_error(post("/jobs/" + gone + "/retry", alice), 410, "source_gone");
}

// Reads a ZIP with Python's zipfile: {"names": [...], "sizes": {...}, "sha256": {...}, "ok": testzip() is None}.
nlohmann::json read_zip(const std::string& bytes) {
    auto path = std::filesystem::temp_directory_path() / ("mp3c-zip-" + crypto::random_hex(6) + ".zip");
    std::ofstream(path, std::ios::binary) << bytes;
    auto python =
        testing::run_command("/usr/bin/python3",
                             {"-c",
                              "import hashlib, json, sys, zipfile\n"
                              "z = zipfile.ZipFile(sys.argv[1])\n"
                              "print(json.dumps({'names': z.namelist(), 'ok': z.testzip() is None,"
                              " 'sha256': {i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()},"
                              " 'stored': all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())}))",
                              path.string()},
                             {});
    const std::string& out = python.out;
    std::filesystem::remove(path);
    return nlohmann::json::parse(out, nullptr, false);
}

// Issue 17's API points: the upload announces its MP3's id, so the original's GET /download?fid= needs no status
// call first; a job shows the options its MP3 is made with, defaults filled in.
TEST_F(GatewayResultsTest, TheUploadAnnouncesItsMp3IdAndTheJobItsEffectiveOptions) {
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    auto r = upload(alice, pattern(500, 123), "Café déjà vu 🎵.mp4");
    ASSERT_EQ(r.status, 202) << r.body;
    std::string job_id = r.json()["job_id"], mp3_fid = r.json()["mp3_fid"];
    EXPECT_EQ(mp3_fid, job_id);
    expect_error(get("/download?fid=" + mp3_fid, alice), 409, "not_ready");
    expect_error(get("/download?fid=" + mp3_fid, bob), 404, "file_not_found");
    auto options = get("/jobs/" + job_id, alice).json()["options"];
    EXPECT_EQ(options["bitrate"], 192);
    EXPECT_EQ(options["sample_rate"], 44100);
    EXPECT_TRUE(options["quality"].is_null());
    EXPECT_TRUE(options["channels"].is_null()) << "the source's, known once converted";
    convert(job_id, "mp3 bytes", alice);
    auto download = get("/download?fid=" + mp3_fid, alice);
    ASSERT_EQ(download.status, 200);
    EXPECT_EQ(download.body, "mp3 bytes");
    EXPECT_EQ(download.header("content-disposition"),
              "attachment; filename=\"Cafe deja vu.mp3\"; "
              "filename*=UTF-8''Caf%C3%A9%20d%C3%A9j%C3%A0%20vu%20%F0%9F%8E%B5.mp3");
    auto vbr = upload(alice, pattern(500, 124), "v.mp4", {{"quality", "2"}});
    auto vbr_options = get("/jobs/" + vbr.json()["job_id"].get<std::string>(), alice).json()["options"];
    EXPECT_TRUE(vbr_options["bitrate"].is_null()) << "VBR: no bitrate";
    EXPECT_EQ(vbr_options["quality"], 2);
}

TEST_F(GatewayResultsTest, ManyMp3sDownloadAsOneStreamedZip) {
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    std::string a = pattern(30000, 1), b = pattern(20000, 2), c = pattern(10, 3);
    std::string first = finished_job(alice, a, "Meeting.mp4");
    std::string second = finished_job(alice, b, "meeting.mov");  // the same MP3 name, but for case
    std::string third = finished_job(alice, c, "Zoë.webm");

    auto r = get("/jobs.zip?ids=" + first + "," + second + "," + third, alice);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/zip");
    EXPECT_EQ(r.header("content-disposition").rfind("attachment; filename=\"mp3converter-", 0), 0u);
    EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
    auto zip = read_zip(r.body);
    ASSERT_FALSE(zip.is_discarded()) << "python could not read it";
    EXPECT_TRUE(zip["ok"].get<bool>()) << "every CRC matches";
    EXPECT_TRUE(zip["stored"].get<bool>()) << "MP3s are stored, not deflated";
    EXPECT_EQ(zip["names"], nlohmann::json({"Meeting.mp3", "meeting (2).mp3", "Zoë.mp3"}));
    EXPECT_EQ(zip["sha256"]["Meeting.mp3"], crypto::to_hex(crypto::sha256(a)));
    EXPECT_EQ(zip["sha256"]["meeting (2).mp3"], crypto::to_hex(crypto::sha256(b)));
    EXPECT_EQ(zip["sha256"]["Zoë.mp3"], crypto::to_hex(crypto::sha256(c)));

    auto all = get("/jobs.zip?status=done", alice);
    ASSERT_EQ(all.status, 200);
    EXPECT_EQ(read_zip(all.body)["names"].size(), 3u);

    expect_error(get("/jobs.zip?ids=" + first, bob), 404, "job_not_found");  // another user's job
    expect_error(get("/jobs.zip?status=done", bob), 404, "nothing_to_zip");
    std::string queued = upload(alice, pattern(100)).json()["job_id"];
    expect_error(get("/jobs.zip?ids=" + first + "," + queued, alice), 409, "not_ready");
    expect_error(get("/jobs.zip?ids=" + first + ",nope", alice), 400, "invalid_ids");
    expect_error(get("/jobs.zip", alice), 400, "ids_required");
    std::string many;
    for (int i = 0; i < 101; ++i) many += (many.empty() ? "" : ",") + storage::new_id();
    expect_error(get("/jobs.zip?ids=" + many, alice), 400, "invalid_ids");  // at most 100 at once
    EXPECT_EQ(testing::http_request(port_, "GET", "/jobs.zip?ids=" + first, {}).status, 401);

    start([](GatewayConfig& c) { c.zip_max_bytes = 40000; });
    expect_error(get("/jobs.zip?ids=" + first + "," + second, alice), 413, "zip_too_large");
    EXPECT_EQ(get("/jobs.zip?ids=" + first + "," + third, alice).status, 200);
}

// ZIP64 end to end: an MP3 of more than 4 GiB (a sparse file put in the store's place, so the test costs no disk)
// and a small one after it, whose offset is past 4 GiB. Python streams the answer to a sparse file and reads it back:
// the big entry through to its end (zipfile checks the CRC-32 there), and the small one's bytes.
TEST_F(GatewayResultsTest, AZipOfMoreThan4GiBUsesZip64AndReadsBack) {
    start([](GatewayConfig& c) { c.zip_max_bytes = 5ull << 30; });
    auto alice = token(1, "alice@example.com");
    std::string big = finished_job(alice, "x", "big.mp4");
    std::string small_mp3 = pattern(5000, 77);
    std::string small = finished_job(alice, small_mp3, "small.mp4");
    const uint64_t big_size = (4ull << 30) + 4097;
    auto data = storage_dir_ / "mp3s" / big.substr(0, 2) / big;
    std::filesystem::remove(data);
    { std::ofstream(data, std::ios::binary); }
    std::filesystem::resize_file(data, big_size);
    auto meta_path = std::filesystem::path(data.string() + ".json");
    nlohmann::json meta;
    std::ifstream(meta_path) >> meta;
    meta["size"] = big_size;
    std::ofstream(meta_path, std::ios::trunc) << meta.dump();

    auto path = std::filesystem::temp_directory_path() / ("mp3c-zip64-" + crypto::random_hex(6) + ".zip");
    std::string script =
        "import json, sys, urllib.request, zipfile\n"
        "url, token, path = sys.argv[1:4]\n"
        "request = urllib.request.Request(url, headers={'Authorization': 'Bearer ' + token})\n"
        "total = 0\n"
        "with urllib.request.urlopen(request) as r, open(path, 'wb') as f:\n"
        "    while chunk := r.read(1 << 20):\n"
        "        if chunk.count(0) == len(chunk): f.seek(len(chunk), 1)\n"
        "        else: f.write(chunk)\n"
        "        total += len(chunk)\n"
        "    f.truncate(total)\n"
        "z = zipfile.ZipFile(path)\n"
        "read = 0\n"
        "with z.open('big.mp3') as e:\n"
        "    while block := e.read(1 << 22): read += len(block)\n"
        "print(json.dumps({'length': total, 'names': z.namelist(), 'big_read': read,\n"
        "                  'sizes': {i.filename: i.file_size for i in z.infolist()},\n"
        "                  'small': z.read('small.mp3').hex()}))\n";
    auto python = testing::run_command(
        "/usr/bin/python3",
        {"-c", script, "http://127.0.0.1:" + std::to_string(port_) + "/jobs.zip?ids=" + big + "," + small, alice,
         path.string()},
        {});
    const std::string& out = python.out;
    std::filesystem::remove(path);
    auto zip = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(zip.is_discarded()) << "python could not read the ZIP: " << out;
    EXPECT_EQ(zip["names"], nlohmann::json({"big.mp3", "small.mp3"}));
    EXPECT_EQ(zip["sizes"]["big.mp3"], big_size);
    EXPECT_EQ(zip["big_read"], big_size) << "read through: its CRC-32 matched";
    EXPECT_GT(zip["length"].get<uint64_t>(), big_size);
    EXPECT_EQ(zip["small"], crypto::to_hex(small_mp3)) << "the entry after the 4 GiB mark";
}

TEST_F(GatewayResultsTest, TheSameUploadWithTheSameOptionsIsDoneAtOnceWithACopyOfItsMp3) {
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    std::string video = pattern(3000, 42), mp3 = pattern(900, 43);
    std::string original = finished_job(alice, mp3, "lecture.mp4", video);
    drain(topology_.video_queue);

    auto again = upload(alice, video, "lecture (copy).mp4");
    ASSERT_EQ(again.status, 202) << again.body;
    EXPECT_EQ(again.json()["status"], "done");
    EXPECT_EQ(again.json()["reused_from"], original);
    std::string copy = again.json()["job_id"];
    EXPECT_TRUE(drain(topology_.video_queue).empty()) << "nothing to convert";
    auto job = get("/jobs/" + copy, alice).json();
    EXPECT_EQ(job["status"], "done");
    EXPECT_EQ(job["reused_from"], original);
    EXPECT_TRUE(job["expires_at"].is_string());
    EXPECT_EQ(get("/jobs/" + copy + "/mp3", alice).body, mp3);
    EXPECT_EQ(stored_files("videos"), 0u) << "the second upload is not kept";
    EXPECT_EQ(metric("gateway_reused_uploads_total{result=\"hit\"}"), 1.0);
    // Its owner is mailed (and called back) as for a converted job: the `mp3` message, with the job's ticket.
    auto ready = drain_at_least(topology_.mp3_queue, 1);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0]["job_id"], copy);
    EXPECT_EQ(ready[0]["username"], "alice@example.com");
    EXPECT_EQ(ready[0]["mp3_size"], mp3.size());
    EXPECT_EQ(ready[0]["ticket"], messages::job_ticket(kTicketSecret, copy, "alice@example.com", std::nullopt));

    // Other options, or another user with the same bytes: converted (one user never learns what another uploaded).
    auto other_options = upload(alice, video, "lecture.mp4", {{"bitrate", "96"}});
    EXPECT_EQ(other_options.json()["status"], "queued");
    auto other_user = upload(bob, video, "lecture.mp4");
    EXPECT_EQ(other_user.json()["status"], "queued");
    EXPECT_TRUE(other_user.json()["reused_from"].is_null());

    // Deleting one of the two keeps the other's MP3.
    EXPECT_EQ(testing::http_request(port_, "DELETE", "/jobs/" + original, bearer(alice)).status, 204);
    auto r = get("/jobs/" + copy + "/mp3", alice);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, mp3);
}

TEST_F(GatewayResultsTest, ADoneJobsWaveformAndLoudnessAreShownToItsOwnerAndWithAReuseOfItsMp3) {
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    std::string video = pattern(2500, 77);
    auto r = upload(alice, video, "talk.mp4");
    ASSERT_EQ(r.status, 202) << r.body;
    std::string job_id = r.json()["job_id"];
    expect_error(get("/jobs/" + job_id + "/waveform", alice), 409, "not_ready");

    const auto waveform = nlohmann::json::parse(R"({"seconds_per_point":0.5,"peaks":[0,0.25,1,0.125]})");
    const auto loudness = nlohmann::json::parse(
        R"({"target_lufs":-16.0,"true_peak_ceiling_dbtp":-1.0,"input_lufs":-25.5,"input_true_peak_dbtp":-0.6,)"
        R"("output_lufs":-16.0,"output_true_peak_dbtp":-1.1,"gain_db":20.1,"limited":true})");
    convert(job_id, pattern(800, 78), alice, {{"waveform", waveform}, {"loudness", loudness}});
    EXPECT_EQ(get("/jobs/" + job_id, alice).json()["loudness"], loudness) << "what normalisation measured";
    auto w = get("/jobs/" + job_id + "/waveform", alice);
    ASSERT_EQ(w.status, 200) << w.body;
    EXPECT_EQ(w.json()["peaks"], waveform["peaks"]);
    EXPECT_EQ(w.json()["seconds_per_point"], 0.5);
    EXPECT_EQ(w.json()["points"], 4);
    EXPECT_EQ(w.json()["duration_seconds"], 3.5);
    EXPECT_EQ(w.json()["job_id"], job_id);
    EXPECT_EQ(w.header("cache-control"), "private, max-age=3600");
    expect_error(get("/jobs/" + job_id + "/waveform", bob), 404, "job_not_found");

    // The same upload again is done at once with a copy of the MP3, and shows the same waveform.
    drain(topology_.video_queue);
    auto again = upload(alice, video, "talk (copy).mp4");
    ASSERT_EQ(again.json()["status"], "done") << again.body;
    std::string copy = again.json()["job_id"];
    // The original goes (its waveform with it: the table follows the jobs); the copy keeps its own.
    EXPECT_EQ(testing::http_request(port_, "DELETE", "/jobs/" + job_id, bearer(alice)).status, 204);
    expect_error(get("/jobs/" + job_id + "/waveform", alice), 404, "job_not_found");
    auto kept = get("/jobs/" + copy + "/waveform", alice);
    ASSERT_EQ(kept.status, 200) << kept.body;
    EXPECT_EQ(kept.json()["peaks"], waveform["peaks"]);
    EXPECT_EQ(get("/jobs/" + copy, alice).json()["loudness"], loudness);

    // A job whose done event had none (an MP3 announced again after a restart, or made before waveforms were).
    std::string plain = finished_job(alice, pattern(600, 79));
    expect_error(get("/jobs/" + plain + "/waveform", alice), 404, "no_waveform");
    EXPECT_TRUE(get("/jobs/" + plain, alice).json()["loudness"].is_null()) << "not normalised";
}

// chapters=split: the tests store the parts and the job's record as the converter does (ids from messages) and
// announce them in the done event.
TEST_F(GatewayResultsTest, ASplitJobsPartsAreListedDownloadedZippedCountedAndDeletedWithIt) {
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    uint64_t before = stored(alice);
    std::string video = pattern(2500, 91);
    auto r = upload(alice, video, "Vorlesung Über.mp4", {{"chapters", "split"}});
    ASSERT_EQ(r.status, 202) << r.body;
    std::string job_id = r.json()["job_id"];
    EXPECT_EQ(get("/jobs/" + job_id, alice).json()["options"]["chapters"], "split");
    expect_error(get("/jobs/" + job_id + "/parts/1", alice), 409, "not_ready");

    std::vector<messages::Part> parts;
    const char* titles[] = {"Eins", "Zwei", "Drei/Vier"};
    auto mp3s = store("mp3s");
    for (int i = 1; i <= 3; ++i) {
        std::string bytes = pattern(1000 + i * 100, 91 + i);
        messages::Part part{.index = i,
                            .title = titles[i - 1],
                            .start_seconds = (i - 1) * 1.5,
                            .duration_seconds = 1.5,
                            .size = bytes.size(),
                            .fid = messages::part_id(job_id, i)};
        auto writer = mp3s->create({.owner = "1", .filename = "p.mp3", .content_type = "audio/mpeg", .id = part.fid});
        writer->write(bytes);
        writer->commit();
        parts.push_back(part);
    }
    auto record = mp3s->create({.owner = "1", .filename = "record.json", .id = messages::record_id(job_id)});
    record->write(messages::ConversionRecord{.parts = parts}.to_json_text());
    record->commit();
    std::string whole = pattern(4500, 95);
    convert(job_id, whole, alice, {{"parts", messages::parts_to_json(parts)}});

    auto job = get("/jobs/" + job_id, alice).json();
    ASSERT_EQ(job["parts"].size(), 3u) << job;
    EXPECT_EQ(job["parts"][1]["title"], "Zwei");
    EXPECT_EQ(job["parts"][1]["start_seconds"], 1.5);
    EXPECT_EQ(job["parts"][1]["duration_seconds"], 1.5);
    EXPECT_EQ(job["parts"][1]["size"], 1200);
    EXPECT_EQ(job["parts"][1]["filename"], "Vorlesung Über - 02 - Zwei.mp3");
    EXPECT_EQ(job["parts"][2]["filename"], "Vorlesung Über - 03 - Drei_Vier.mp3") << "no '/' in a file name";
    EXPECT_EQ(job["parts"][1]["download_url"], "/jobs/" + job_id + "/parts/2");
    EXPECT_FALSE(job["parts"][0].contains("fid")) << "stored ids stay inside";
    EXPECT_EQ(stored(alice), before + whole.size() + 1100 + 1200 + 1300) << "parts count toward the quota";

    auto second = get("/jobs/" + job_id + "/parts/2", alice);
    ASSERT_EQ(second.status, 200) << second.body;
    EXPECT_EQ(second.body, pattern(1200, 93));
    EXPECT_EQ(second.header("content-type"), "audio/mpeg");
    EXPECT_EQ(second.header("content-disposition"),
              "attachment; filename=\"Vorlesung Uber - 02 - Zwei.mp3\"; "
              "filename*=UTF-8''Vorlesung%20%C3%9Cber%20-%2002%20-%20Zwei.mp3");
    auto headers = bearer(alice);
    headers["Range"] = "bytes=10-19";
    auto range = testing::http_request(port_, "GET", "/jobs/" + job_id + "/parts/3", headers);
    EXPECT_EQ(range.status, 206);
    EXPECT_EQ(range.body, pattern(1300, 94).substr(10, 10));
    expect_error(get("/jobs/" + job_id + "/parts/4", alice), 404, "part_not_found");
    expect_error(get("/jobs/" + job_id + "/parts/0", alice), 404, "part_not_found");
    expect_error(get("/jobs/" + job_id + "/parts/x", alice), 404, "part_not_found");
    expect_error(get("/jobs/" + job_id + "/parts/1", bob), 404, "job_not_found");
    EXPECT_EQ(testing::http_request(port_, "GET", "/jobs/" + job_id + "/parts/1", {}).status, 401);
    std::string plain = finished_job(alice, pattern(700, 96), "Notiz.mp4");
    expect_error(get("/jobs/" + plain + "/parts/1", alice), 404, "part_not_found");
    EXPECT_TRUE(get("/jobs/" + plain, alice).json()["parts"].empty());

    // The ZIP holds a split job's parts, and another job's MP3.
    auto zip = read_zip(get("/jobs.zip?ids=" + job_id + "," + plain, alice).body);
    ASSERT_FALSE(zip.is_discarded());
    EXPECT_TRUE(zip["ok"].get<bool>());
    EXPECT_EQ(zip["names"], nlohmann::json({"Vorlesung Über - 01 - Eins.mp3", "Vorlesung Über - 02 - Zwei.mp3",
                                            "Vorlesung Über - 03 - Drei_Vier.mp3", "Notiz.mp3"}));
    EXPECT_EQ(zip["sha256"]["Vorlesung Über - 03 - Drei_Vier.mp3"], crypto::to_hex(crypto::sha256(pattern(1300, 94))));
    start([](GatewayConfig& c) { c.zip_max_entries = 3; });
    expect_error(get("/jobs.zip?ids=" + job_id + "," + plain, alice), 413, "zip_too_many_files");
    EXPECT_EQ(read_zip(get("/jobs.zip?status=done", alice).body)["names"], nlohmann::json({"Notiz.mp3"}))
        << "the newest jobs whose files fit";

    // The same upload with the same options is converted again: parts are not copied for a reuse.
    drain(topology_.video_queue);
    auto again = upload(alice, video, "Vorlesung Über.mp4", {{"chapters", "split"}});
    EXPECT_EQ(again.json()["status"], "queued") << again.body;

    // Deleting the job deletes its parts and its record.
    EXPECT_EQ(testing::http_request(port_, "DELETE", "/jobs/" + job_id, bearer(alice)).status, 204);
    for (int i = 0; i <= 3; ++i) EXPECT_FALSE(mp3s->stat(messages::part_id(job_id, i))) << "part " << i;
    EXPECT_FALSE(mp3s->stat(job_id));
}

TEST_F(GatewayResultsTest, AnExpiredSplitJobLosesItsParts) {
    start([](GatewayConfig& c) {
        c.retention = 5s;  // time enough to see the part served before it expires, on a busy machine too
        c.sweep_interval = 100ms;
    });
    auto alice = token(1, "alice@example.com");
    auto r = upload(alice, pattern(900, 97), "talk.mp4", {{"chapters", "split"}});
    std::string job_id = r.json()["job_id"];
    messages::Part part{
        .index = 1, .title = "All", .duration_seconds = 3.5, .size = 5, .fid = messages::part_id(job_id, 1)};
    auto mp3s = store("mp3s");
    for (int i = 0; i <= 1; ++i) {
        auto writer = mp3s->create({.owner = "1", .filename = "p", .id = messages::part_id(job_id, i)});
        writer->write("bytes");
        writer->commit();
    }
    convert(job_id, "whole", alice, {{"parts", messages::parts_to_json({part})}});
    ASSERT_EQ(get("/jobs/" + job_id + "/parts/1", alice).status, 200);
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + job_id, alice).json()["status"] == "expired"; }, 20s));
    EXPECT_FALSE(mp3s->stat(messages::part_id(job_id, 1)));
    EXPECT_FALSE(mp3s->stat(messages::part_id(job_id, 0))) << "the record too";
    expect_error(get("/jobs/" + job_id + "/parts/1", alice), 410, "expired");
}

}  // namespace
}  // namespace mp3c::gateway::test
