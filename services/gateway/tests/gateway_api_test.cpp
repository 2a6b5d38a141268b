// The gateway's API against real MariaDB and RabbitMQ and the filesystem store. The tests play the converter: they
// read the `video` queue and publish status events.
#include <future>
#include <set>

#include "gateway_fixture.hpp"
#include "mp3c/storage.hpp"
#include "mp3c/testing/tmpfs.hpp"

namespace mp3c::gateway::test {
namespace {

void expect_error(const HttpResponse& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    auto body = r.json();
    EXPECT_EQ(body["error"], code) << r.body;
    EXPECT_TRUE(body["message"].is_string()) << r.body;
}

// Stores an MP3 as the converter would, for download tests.
std::string store_mp3(const std::filesystem::path& dir, const std::string& content) {
    auto store = storage::open_store("file://" + dir.string(), "mp3s");
    auto writer = store->create({.owner = "1", .filename = "x.mp3", .content_type = "audio/mpeg"});
    writer->write(content);
    return writer->commit().id;
}

class GatewayApiTest : public GatewayTest {
  protected:
    void SetUp() override { start(); }

    // Uploads a file for `user` and finishes its conversion with an MP3 of `mp3` bytes.
    std::pair<std::string, std::string> finished_job(const std::string& tok, const std::string& mp3,
                                                     const std::string& filename = "Holiday Video.mp4") {
        auto r = upload(tok, pattern(1000), filename);
        EXPECT_EQ(r.status, 202) << r.body;
        std::string job_id = r.json()["job_id"];
        std::string mp3_fid = store_mp3(storage_dir_, mp3);
        publish_event({{"job_id", job_id},
                       {"status", "done"},
                       {"mp3_fid", mp3_fid},
                       {"mp3_size", mp3.size()},
                       {"duration_seconds", 12.5}});
        EXPECT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["status"] == "done"; }));
        return {job_id, mp3_fid};
    }
};

TEST_F(GatewayApiTest, UploadStoresTheFileQueuesAJobAndPublishesTheOriginalsMessage) {
    auto tok = token(7, "alice@example.com");
    std::string content = pattern(3 << 20);
    auto r =
        upload(tok, content, "My Clip.mp4",
               {{"bitrate", "128"}, {"channels", "1"}, {"start", "0:05"}, {"title", "Nuit étoilée"}, {"track", "2/9"}});
    ASSERT_EQ(r.status, 202) << r.body;
    auto body = r.json();
    std::string job_id = body["job_id"], video_fid = body["video_fid"];
    EXPECT_TRUE(storage::is_valid_id(job_id));
    EXPECT_TRUE(storage::is_valid_id(video_fid));
    EXPECT_EQ(body["status"], "queued");
    EXPECT_EQ(body["status_url"], "/jobs/" + job_id);

    auto store = storage::open_store("file://" + storage_dir_.string(), "videos");
    auto info = store->stat(video_fid);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->size, content.size());
    EXPECT_EQ(info->owner, "7");
    EXPECT_EQ(info->filename, "My Clip.mp4");

    auto messages = drain_at_least(topology_.video_queue, 1);
    ASSERT_EQ(messages.size(), 1u);
    auto& m = messages[0];
    EXPECT_EQ(m["video_fid"], video_fid);
    EXPECT_TRUE(m["mp3_fid"].is_null());
    EXPECT_EQ(m["username"], "alice@example.com");
    EXPECT_EQ(m["job_id"], job_id);
    EXPECT_EQ(m["user_id"], "7");
    EXPECT_EQ(m["options"]["bitrate"], 128);
    EXPECT_EQ(m["options"]["channels"], 1);
    EXPECT_EQ(m["options"]["tags"], (nlohmann::json{{"title", "Nuit étoilée"}, {"track", "2/9"}}));
    EXPECT_EQ(m["options"]["start"], 5.0);
    EXPECT_FALSE(m["options"].contains("end"));
    EXPECT_EQ(m["trace_id"], r.header("x-request-id"));

    auto job = get("/jobs/" + job_id, tok);
    ASSERT_EQ(job.status, 200);
    EXPECT_EQ(job.json()["status"], "queued");
    EXPECT_EQ(job.json()["filename"], "My Clip.mp4");
    EXPECT_EQ(job.json()["options"]["tags"]["title"], "Nuit étoilée");
    EXPECT_EQ(job.json()["size"], content.size());
    EXPECT_EQ(temporary_files("videos"), 0u);
}

TEST_F(GatewayApiTest, CallbackUrlIsKeptWithTheJobAndPassedToTheConverter) {
    auto tok = token(7, "alice@example.com");
    auto r = upload(tok, pattern(1000), "a.mp4", {{"callback_url", "https://hooks.example.com/mp3?user=7"}});
    ASSERT_EQ(r.status, 202) << r.body;
    std::string job_id = r.json()["job_id"];
    auto messages = drain_at_least(topology_.video_queue, 1);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0]["callback_url"], "https://hooks.example.com/mp3?user=7");
    EXPECT_EQ(get("/jobs/" + job_id, tok).json()["callback_url"], "https://hooks.example.com/mp3?user=7");

    std::string no_hook = upload(tok, pattern(1000)).json()["job_id"];
    EXPECT_TRUE(get("/jobs/" + no_hook, tok).json()["callback_url"].is_null());
    EXPECT_FALSE(drain_at_least(topology_.video_queue, 1).at(0).contains("callback_url"));

    for (const char* bad : {"ftp://example.com/x", "https://user:pw@example.com/", "javascript:alert(1)", "hooks"}) {
        auto refused = upload(tok, pattern(1000), "a.mp4", {{"callback_url", bad}});
        EXPECT_EQ(refused.status, 400) << bad;
        EXPECT_EQ(refused.json()["error"], "invalid_callback_url") << bad;
    }
    EXPECT_EQ(stored_files("videos"), 2u) << "nothing kept for the refused uploads";
    EXPECT_EQ(temporary_files("videos"), 0u);
}

TEST_F(GatewayApiTest, StatusEventsMoveTheJobAndStreamAsServerSentEvents) {
    auto tok = token(1, "a@example.com");
    auto r = upload(tok, pattern(5000));
    std::string job_id = r.json()["job_id"];
    auto stream = std::async(std::launch::async, [&] { return get("/jobs/" + job_id + "/events", tok); });

    publish_event({{"job_id", job_id}, {"status", "processing"}, {"progress", 0}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["status"] == "processing"; }));
    publish_event({{"job_id", job_id}, {"status", "processing"}, {"progress", 60}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["progress"] == 60; }));
    publish_event({{"job_id", job_id}, {"status", "processing"}, {"progress", 30}});  // late: ignored
    std::string mp3_fid = store_mp3(storage_dir_, "ID3 mp3 bytes");
    publish_event({{"job_id", job_id},
                   {"status", "done"},
                   {"mp3_fid", mp3_fid},
                   {"mp3_size", 13},
                   {"duration_seconds", 2.5},
                   {"source_deleted", true}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["status"] == "done"; }));
    auto job = get("/jobs/" + job_id, tok).json();
    EXPECT_EQ(job["progress"], 100);
    EXPECT_EQ(job["mp3_fid"], mp3_fid);
    EXPECT_EQ(job["duration_seconds"], 2.5);
    EXPECT_TRUE(job["video_fid"].is_null()) << "the converter deleted the upload";
    EXPECT_EQ(job["download_url"], "/jobs/" + job_id + "/mp3");

    ASSERT_EQ(stream.wait_for(30s), std::future_status::ready) << "the event stream ends with the job";
    auto events = stream.get();
    EXPECT_EQ(events.status, 200);
    EXPECT_EQ(events.header("content-type"), "text/event-stream; charset=utf-8");
    EXPECT_NE(events.body.find("\"status\":\"queued\""), std::string::npos) << events.body;
    EXPECT_NE(events.body.find("\"status\":\"done\""), std::string::npos) << events.body;
    EXPECT_EQ(events.body.find("\"progress\":30"), std::string::npos) << "no step backwards";
    auto last = events.body.rfind("event: status");
    EXPECT_NE(events.body.find("\"status\":\"done\"", last), std::string::npos) << "done is the last event";
}

TEST_F(GatewayApiTest, FailedJobKeepsItsReason) {
    auto tok = token(1, "a@example.com");
    std::string job_id = upload(tok, pattern(100)).json()["job_id"];
    publish_event(
        {{"job_id", job_id}, {"status", "failed"}, {"error", "the file has no audio track"}, {"reason", "no_audio"}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["status"] == "failed"; }));
    EXPECT_EQ(get("/jobs/" + job_id, tok).json()["error"], "the file has no audio track");
    EXPECT_EQ(get("/jobs/" + job_id, tok).json()["reason"], "no_audio") << "kept in the database";
    EXPECT_TRUE(get("/jobs", tok).json()["jobs"][0]["reason"] == "no_audio");
    publish_event({{"job_id", job_id}, {"status", "processing"}, {"progress", 50}});  // too late: stays failed
    auto events = get("/jobs/" + job_id + "/events", tok);  // a finished job's stream ends at once
    EXPECT_NE(events.body.find("\"status\":\"failed\""), std::string::npos);
}

TEST_F(GatewayApiTest, InvalidStatusEventIsDeadLettered) {
    amqp::Options o;
    o.url = amqp_url();
    amqp::Publisher(o, topology_).publish(topology_.status_exchange, "job.done", {.body = "{not json"});
    EXPECT_TRUE(eventually([&] { return !drain(amqp::names::dead_queue(topology_.gateway_status_queue)).empty(); }));
}

TEST_F(GatewayApiTest, DownloadIsForTheOwnerWithRangesAndEtag) {
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    auto admin = token(3, "root@example.com", true);
    std::string mp3 = pattern(100000, 7);
    auto [job_id, mp3_fid] = finished_job(alice, mp3, "Zürich trip.mov");

    auto r = get("/jobs/" + job_id + "/mp3", alice);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, mp3);
    EXPECT_EQ(r.header("content-type"), "audio/mpeg");
    EXPECT_EQ(r.header("accept-ranges"), "bytes");
    EXPECT_EQ(r.header("content-disposition"),
              "attachment; filename=\"Zurich trip.mp3\"; filename*=UTF-8''Z%C3%BCrich%20trip.mp3");
    std::string etag = r.header("etag");
    EXPECT_EQ(etag.size(), 66u);

    auto original_route = get("/download?fid=" + mp3_fid, alice);
    EXPECT_EQ(original_route.status, 200);
    EXPECT_EQ(original_route.body, mp3);

    auto headers = bearer(alice);
    headers["Range"] = "bytes=100-199";
    auto part = testing::http_request(port_, "GET", "/jobs/" + job_id + "/mp3", headers);
    EXPECT_EQ(part.status, 206);
    EXPECT_EQ(part.body, mp3.substr(100, 100));
    EXPECT_EQ(part.header("content-range"), "bytes 100-199/100000");
    headers["Range"] = "bytes=-10";
    EXPECT_EQ(testing::http_request(port_, "GET", "/jobs/" + job_id + "/mp3", headers).body, mp3.substr(99990));
    headers["Range"] = "bytes=100000-";
    auto unsatisfiable = testing::http_request(port_, "GET", "/jobs/" + job_id + "/mp3", headers);
    EXPECT_EQ(unsatisfiable.status, 416);
    EXPECT_EQ(unsatisfiable.header("content-range"), "bytes */100000");
    headers.erase("Range");
    headers["If-None-Match"] = etag;
    EXPECT_EQ(testing::http_request(port_, "GET", "/jobs/" + job_id + "/mp3", headers).status, 304);

    expect_error(get("/jobs/" + job_id + "/mp3", bob), 404, "job_not_found");
    expect_error(get("/download?fid=" + mp3_fid, bob), 404, "file_not_found");
    EXPECT_EQ(get("/download?fid=" + mp3_fid, admin).status, 200) << "admins may";
    expect_error(get("/download", alice), 400, "fid_required");
    EXPECT_EQ(get("/download", alice).json()["message"], "fid is required");
    expect_error(get("/download?fid=../../etc/passwd", alice), 400, "invalid_id");
    expect_error(get("/download?fid=ffffffffffffffffffffffff", alice), 404, "file_not_found");
    expect_error(get("/jobs/not-an-id/mp3", alice), 400, "invalid_id");
}

TEST_F(GatewayApiTest, SignedLinkServesOneMp3ForAShortTimeWithoutTheToken) {
    auto alice = token(1, "alice@example.com"), bob = token(2, "bob@example.com");
    std::string mp3 = pattern(50000, 3);
    auto [job_id, mp3_fid] = finished_job(alice, mp3, "song.mp4");
    auto other = finished_job(alice, pattern(100, 4), "other.mp4").first;

    auto link = testing::http_request(port_, "POST", "/jobs/" + job_id + "/link", bearer(alice));
    ASSERT_EQ(link.status, 200) << link.body;
    std::string url = link.json()["url"];
    EXPECT_EQ(url.rfind("/jobs/" + job_id + "/mp3?expires=", 0), 0u) << url;
    EXPECT_EQ(url.find("eyJ"), std::string::npos) << "no token in the URL";
    EXPECT_TRUE(link.json()["expires_at"].is_string());

    auto r = testing::http_request(port_, "GET", url, {});  // no Authorization: an <audio> element or a download
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, mp3);
    EXPECT_EQ(r.header("content-type"), "audio/mpeg");
    auto part = testing::http_request(port_, "GET", url, {{"Range", "bytes=0-9"}});
    EXPECT_EQ(part.status, 206) << "players seek with ranges";
    EXPECT_EQ(part.body, mp3.substr(0, 10));

    std::string query = url.substr(url.find('?'));
    expect_error(testing::http_request(port_, "GET", "/jobs/" + other + "/mp3" + query, {}), 403, "invalid_link");
    std::string tampered = url;
    tampered.back() = tampered.back() == '0' ? '1' : '0';
    expect_error(testing::http_request(port_, "GET", tampered, {}), 403, "invalid_link");
    std::string later = url;
    later.replace(later.find("expires=") + 8, 1, "9");
    expect_error(testing::http_request(port_, "GET", later, {}), 403, "invalid_link");  // the expiry is signed
    // A correctly signed link whose time is over (signed here with the key the gateway derives from the secret).
    std::string key = crypto::hmac_sha256(kSecret, "mp3converter download links");
    std::string old = crypto::to_hex(crypto::hmac_sha256(key, "mp3\n" + job_id + "\n1000"));
    expect_error(testing::http_request(port_, "GET", "/jobs/" + job_id + "/mp3?expires=1000&signature=" + old, {}), 403,
                 "link_expired");

    expect_error(testing::http_request(port_, "POST", "/jobs/" + job_id + "/link", bearer(bob)), 404, "job_not_found");
    expect_error(testing::http_request(port_, "POST", "/jobs/" + job_id + "/link", {}), 401, "missing_credentials");
    std::string queued = upload(alice, pattern(100)).json()["job_id"];
    EXPECT_EQ(testing::http_request(port_, "POST", "/jobs/" + queued + "/link", bearer(alice)).status, 409);
}

TEST_F(GatewayApiTest, WebPageIsServedWithAStrictContentSecurityPolicy) {
    auto page = testing::http_request(port_, "GET", "/", {});
    ASSERT_EQ(page.status, 200);
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(page.header("content-security-policy").find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(page.header("content-security-policy").find("unsafe-inline"), std::string::npos);
    EXPECT_EQ(page.header("x-content-type-options"), "nosniff");
    EXPECT_NE(page.body.find("app.js"), std::string::npos);
    EXPECT_EQ(testing::http_request(port_, "GET", "/index.html", {}).body, page.body);
    auto script = testing::http_request(port_, "GET", "/app.js", {});
    EXPECT_EQ(script.status, 200);
    EXPECT_EQ(script.header("content-type"), "text/javascript; charset=utf-8");
    EXPECT_EQ(testing::http_request(port_, "GET", "/app.css", {}).header("content-type"), "text/css; charset=utf-8");
    EXPECT_EQ(testing::http_request(port_, "GET", "/", {{"If-None-Match", page.header("etag")}}).status, 304);
    EXPECT_EQ(testing::http_request(port_, "GET", "/nothing.js", {}).status, 404);
}

TEST_F(GatewayApiTest, Mp3OfAnUnfinishedJobIsNotReady) {
    auto tok = token(1, "a@example.com");
    std::string job_id = upload(tok, pattern(100)).json()["job_id"];
    auto r = get("/jobs/" + job_id + "/mp3", tok);
    EXPECT_EQ(r.status, 409);
    EXPECT_EQ(r.json()["status"], "queued");
}

TEST_F(GatewayApiTest, ThreeUsersSeeOnlyTheirOwnJobs) {
    std::vector<std::string> tokens = {token(1, "u1@example.com"), token(2, "u2@example.com"),
                                       token(3, "u3@example.com")};
    std::vector<std::vector<std::string>> ids(3);
    for (int round = 0; round < 2; ++round) {
        for (int u = 0; u < 3; ++u) ids[u].push_back(upload(tokens[u], pattern(100 + u)).json()["job_id"]);
    }
    for (int u = 0; u < 3; ++u) {
        auto list = get("/jobs", tokens[u]).json();
        ASSERT_EQ(list["jobs"].size(), 2u);
        for (const auto& job : list["jobs"]) {
            EXPECT_TRUE(job["job_id"] == ids[u][0] || job["job_id"] == ids[u][1]);
            EXPECT_EQ(job["owner"], "u" + std::to_string(u + 1) + "@example.com");
        }
        int other = (u + 1) % 3;
        expect_error(get("/jobs/" + ids[other][0], tokens[u]), 404, "job_not_found");
        expect_error(testing::http_request(port_, "DELETE", "/jobs/" + ids[other][0], bearer(tokens[u])), 404,
                     "job_not_found");
        expect_error(get("/jobs/" + ids[other][0] + "/events", tokens[u]), 404, "job_not_found");
    }
    auto admin = token(9, "root@example.com", true);
    EXPECT_EQ(get("/jobs?all=true", admin).json()["jobs"].size(), 6u);
    expect_error(get("/jobs?all=true", tokens[0]), 403, "admin_only");
}

TEST_F(GatewayApiTest, JobListIsNewestFirstPaginatedAndFiltered) {
    auto tok = token(1, "a@example.com");
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(upload(tok, pattern(10 + i)).json()["job_id"]);
    publish_event({{"job_id", ids[0]}, {"status", "failed"}, {"error", "x"}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + ids[0], tok).json()["status"] == "failed"; }));

    auto page1 = get("/jobs?limit=2", tok).json();
    ASSERT_EQ(page1["jobs"].size(), 2u);
    EXPECT_EQ(page1["jobs"][0]["job_id"], ids[4]);
    EXPECT_EQ(page1["jobs"][1]["job_id"], ids[3]);
    EXPECT_EQ(page1["next_offset"], 2);
    auto page3 = get("/jobs?limit=2&offset=4", tok).json();
    ASSERT_EQ(page3["jobs"].size(), 1u);
    EXPECT_TRUE(page3["next_offset"].is_null());
    auto failed = get("/jobs?status=failed", tok).json();
    ASSERT_EQ(failed["jobs"].size(), 1u);
    EXPECT_EQ(failed["jobs"][0]["job_id"], ids[0]);
    expect_error(get("/jobs?status=exploded", tok), 400, "invalid_status");
    expect_error(get("/jobs?limit=0", tok), 400, "invalid_limit");
    expect_error(get("/jobs?limit=101", tok), 400, "invalid_limit");
    expect_error(get("/jobs?offset=-1", tok), 400, "invalid_offset");
}

TEST_F(GatewayApiTest, DeletingCancelsQueuedJobsAndRemovesFinishedOnes) {
    auto tok = token(1, "a@example.com");
    std::string queued = upload(tok, pattern(100)).json()["job_id"];
    ASSERT_EQ(stored_files("videos"), 1u);
    auto cancelled = testing::http_request(port_, "DELETE", "/jobs/" + queued, bearer(tok));
    ASSERT_EQ(cancelled.status, 200) << cancelled.body;
    EXPECT_EQ(cancelled.json()["status"], "cancelled");
    EXPECT_EQ(stored_files("videos"), 0u) << "the upload is removed";
    // The converter, arriving late, is ignored and its MP3 cleaned up.
    std::string late_mp3 = store_mp3(storage_dir_, "late");
    publish_event({{"job_id", queued}, {"status", "done"}, {"mp3_fid", late_mp3}, {"mp3_size", 4}});
    EXPECT_TRUE(eventually([&] { return stored_files("mp3s") == 0; }));
    EXPECT_EQ(get("/jobs/" + queued, tok).json()["status"], "cancelled");

    EXPECT_EQ(testing::http_request(port_, "DELETE", "/jobs/" + queued, bearer(tok)).status, 204);
    expect_error(get("/jobs/" + queued, tok), 404, "job_not_found");

    auto [done_id, mp3_fid] = finished_job(tok, "mp3 data");
    EXPECT_EQ(stored_files("mp3s"), 1u);
    EXPECT_EQ(testing::http_request(port_, "DELETE", "/jobs/" + done_id, bearer(tok)).status, 204);
    EXPECT_EQ(stored_files("mp3s"), 0u);
    EXPECT_EQ(stored_files("videos"), 0u);

    std::string running = upload(tok, pattern(100)).json()["job_id"];
    publish_event({{"job_id", running}, {"status", "processing"}, {"progress", 5}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + running, tok).json()["status"] == "processing"; }));
    auto stopped = testing::http_request(port_, "DELETE", "/jobs/" + running, bearer(tok));
    ASSERT_EQ(stopped.status, 200) << "a job being converted is cancelled too: " << stopped.body;
    EXPECT_EQ(stopped.json()["status"], "cancelled");
    EXPECT_EQ(stored_files("videos"), 0u) << "its upload is gone: the converter stops when it sees that";
    // Progress the converter reports before it notices does not bring the job back.
    publish_event({{"job_id", running}, {"status", "processing"}, {"progress", 50}});
    publish_event({{"job_id", running}, {"status", "failed"}, {"error", "the upload is gone"}});
    std::string other = upload(tok, pattern(101)).json()["job_id"];  // a later event on the same queue, to wait on
    publish_event({{"job_id", other}, {"status", "processing"}, {"progress", 1}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + other, tok).json()["status"] == "processing"; }));
    EXPECT_EQ(get("/jobs/" + running, tok).json()["status"], "cancelled");
}

TEST_F(GatewayApiTest, CancellingAJobEndsItsEventStream) {
    auto tok = token(1, "a@example.com");
    std::string job_id = upload(tok, pattern(100)).json()["job_id"];
    auto stream = std::async(std::launch::async, [&] { return get("/jobs/" + job_id + "/events", tok); });
    ASSERT_EQ(testing::http_request(port_, "DELETE", "/jobs/" + job_id, bearer(tok)).status, 200);
    ASSERT_EQ(stream.wait_for(30s), std::future_status::ready);
    EXPECT_NE(stream.get().body.find("\"status\":\"cancelled\""), std::string::npos);
}

TEST_F(GatewayApiTest, LongRequestIdBecomesTheTraceId) {
    auto tok = token(1, "a@example.com");
    std::string id(128, 't');
    std::string boundary = "traceBoundary";
    auto headers = bearer(tok);
    headers["Content-Type"] = "multipart/form-data; boundary=" + boundary;
    headers["X-Request-Id"] = id;
    auto r =
        testing::http_request(port_, "POST", "/upload", headers, multipart_body({{"file", "data", "a.mp4"}}, boundary));
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(drain_at_least(topology_.video_queue, 1).at(0)["trace_id"], id);
}

TEST_F(GatewayApiTest, AuthenticationIsRequired) {
    expect_error(testing::http_request(port_, "GET", "/jobs"), 401, "missing_credentials");
    expect_error(testing::http_request(port_, "GET", "/jobs", {{"Authorization", "Basic abc"}}), 403, "not_authorized");
    auto bad = testing::http_request(port_, "GET", "/jobs", {{"Authorization", "Bearer nonsense"}});
    expect_error(bad, 403, "not_authorized");
    EXPECT_EQ(bad.json()["reason"], "malformed token");
    token::Signer signer(kSecret);
    auto past = std::chrono::system_clock::now() - 2h;
    auto expired = signer.issue({{"username", "a@b.c"}, {"sub", "1"}}, past + 1h, past);
    EXPECT_EQ(get("/jobs", expired).json()["reason"], "token expired");
    token::Signer other("another-secret-another-secret-another-secret");
    EXPECT_EQ(get("/jobs", other.issue({{"username", "a@b.c"}, {"sub", "1"}}, std::chrono::system_clock::now() + 1h))
                  .json()["reason"],
              "invalid token signature");
    // An upload without a token is refused before its body is read.
    expect_error(testing::http_request(port_, "POST", "/upload", {{"Content-Type", "multipart/form-data; boundary=x"}},
                                       std::string(100000, 'x')),
                 401, "missing_credentials");
    EXPECT_EQ(stored_files("videos") + temporary_files("videos"), 0u);
}

TEST_F(GatewayApiTest, MalformedUploadsAreRefusedAndLeaveNothing) {
    auto tok = token(1, "a@example.com");
    auto send = [&](const std::string& content_type, const std::string& body) {
        auto headers = bearer(tok);
        if (!content_type.empty()) headers["Content-Type"] = content_type;
        return testing::http_request(port_, "POST", "/upload", headers, body);
    };
    const std::string b = "XyZb0undary";
    const std::string mp = "multipart/form-data; boundary=" + b;
    expect_error(send("", "x"), 415, "unsupported_media_type");
    expect_error(send("application/json", "{}"), 415, "unsupported_media_type");
    expect_error(send("multipart/form-data", "x"), 400, "malformed_multipart");
    expect_error(send("multipart/form-data; boundary=" + std::string(80, 'a'), "x"), 400, "malformed_multipart");
    // Truncated: no closing boundary.
    expect_error(send(mp, multipart_body({{"file", pattern(100000), "a.mp4"}}, b, false)), 400, "malformed_multipart");
    // Two files.
    expect_error(send(mp, multipart_body({{"file", "1", "a.mp4"}, {"file2", "2", "b.mp4"}}, b)), 400,
                 "exactly_one_file");
    // A part without a file.
    auto no_file = send(mp, multipart_body({{"bitrate", "128"}}, b));
    expect_error(no_file, 400, "exactly_one_file");
    EXPECT_EQ(no_file.json()["message"], "exactly 1 file required (a multipart field with a filename)");
    // A part header line over the limit.
    std::string long_header = "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
                              std::string(10000, 'n') + "\"\r\n\r\nx\r\n--" + b + "--\r\n";
    expect_error(send(mp, long_header), 400, "malformed_multipart");
    // No Content-Disposition.
    expect_error(send(mp, "--" + b + "\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + b + "--\r\n"), 400,
                 "malformed_multipart");
    expect_error(send(mp, multipart_body({{"file", "", "empty.mp4"}}, b)), 400, "empty_file");
    expect_error(send(mp, multipart_body({{"bitrate", "100"}, {"file", "data", "a.mp4"}}, b)), 400, "invalid_option");
    expect_error(send(mp, multipart_body({{"quality", "2"}, {"bitrate", "128"}, {"file", "data", "a.mp4"}}, b)), 400,
                 "invalid_option");
    auto bad_track = send(mp, multipart_body({{"track", "13/12"}, {"file", "data", "a.mp4"}}, b));
    expect_error(bad_track, 400, "invalid_option");
    EXPECT_EQ(bad_track.json()["message"].get<std::string>().rfind("track ", 0), 0u) << bad_track.body;
    expect_error(send(mp, multipart_body({{"title", "two\nlines"}, {"file", "data", "a.mp4"}}, b)), 400,
                 "invalid_option");
    auto backwards = send(mp, multipart_body({{"start", "1:00"}, {"end", "30"}, {"file", "data", "a.mp4"}}, b));
    expect_error(backwards, 400, "invalid_option");
    EXPECT_EQ(backwards.json()["message"], "end (30 s) must be after start (60 s)");
    expect_error(send(mp, multipart_body({{"notes", std::string(3000, 'x')}, {"file", "data", "a.mp4"}}, b)), 400,
                 "field_too_long");

    EXPECT_EQ(stored_files("videos"), 0u);
    EXPECT_EQ(temporary_files("videos"), 0u);
    EXPECT_EQ(job_rows(), 0u);
    EXPECT_TRUE(drain(topology_.video_queue).empty());
}

TEST_F(GatewayApiTest, UnknownRoutesAndMethods) {
    auto tok = token(1, "a@example.com");
    expect_error(get("/nothing", tok), 404, "not_found");
    expect_error(testing::http_request(port_, "PUT", "/upload", bearer(tok)), 405, "method_not_allowed");
    expect_error(testing::http_request(port_, "GET", "/upload", bearer(tok)), 405, "method_not_allowed");
}

TEST_F(GatewayApiTest, TooLargeUploadIs413AndKeepsNothing) {
    start([](GatewayConfig& c) { c.max_upload_bytes = 1 << 20; });
    auto tok = token(1, "a@example.com");
    // Announced too large: refused from the header.
    expect_error(upload(tok, pattern(3 << 20)), 413, "file_too_large");
    // Chunked, so only counting finds out.
    std::string boundary = "chunkyBoundary";
    std::string body = multipart_body({{"file", pattern((1 << 20) + 10), "big.mp4"}}, boundary);
    testing::HttpConnection c("127.0.0.1", port_);
    std::string request = "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
                          "\r\nContent-Type: multipart/form-data; boundary=" + boundary +
                          "\r\nTransfer-Encoding: chunked\r\n\r\n";
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", body.size());
    c.send_raw(request + size_line + body + "\r\n0\r\n\r\n");
    auto r = c.read_response();
    ASSERT_TRUE(r);
    expect_error(testing::HttpResponse{r->status, r->headers, r->body}, 413, "file_too_large");
    EXPECT_TRUE(eventually([&] { return temporary_files("videos") == 0; }));
    EXPECT_EQ(stored_files("videos"), 0u);
    EXPECT_EQ(job_rows(), 0u);
    EXPECT_EQ(upload(tok, pattern(1 << 20)).status, 202) << "exactly the limit is fine";
}

TEST_F(GatewayApiTest, InterruptedUploadLeavesNothingBehind) {
    auto tok = token(1, "a@example.com");
    std::string boundary = "interruptedBoundary";
    std::string body = multipart_body({{"file", pattern(4 << 20), "a.mp4"}}, boundary);
    {
        testing::HttpConnection c("127.0.0.1", port_);
        c.send_raw("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
                   "\r\nContent-Type: multipart/form-data; boundary=" + boundary +
                   "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, body.size() / 2));
        // The server has started writing the file: wait until a temporary file exists.
        ASSERT_TRUE(eventually([&] { return temporary_files("videos") == 1; }));
    }  // the client goes away
    EXPECT_TRUE(eventually([&] { return temporary_files("videos") == 0; })) << "the partial file is removed";
    EXPECT_EQ(stored_files("videos"), 0u);
    EXPECT_EQ(job_rows(), 0u);
    EXPECT_TRUE(drain(topology_.video_queue).empty());
}

TEST_F(GatewayApiTest, TwentyConcurrentUploadsAllComplete) {
    std::vector<std::future<HttpResponse>> uploads;
    for (int i = 0; i < 20; ++i) {
        uploads.push_back(std::async(std::launch::async, [this, i] {
            return upload(token(1 + i % 3, "user" + std::to_string(i % 3) + "@example.com"), pattern(200000, i),
                          "clip" + std::to_string(i) + ".mp4");
        }));
    }
    std::set<std::string> ids;
    for (auto& u : uploads) {
        auto r = u.get();
        ASSERT_EQ(r.status, 202) << r.body;
        ids.insert(r.json()["job_id"]);
    }
    EXPECT_EQ(ids.size(), 20u);
    EXPECT_EQ(stored_files("videos"), 20u);
    EXPECT_EQ(job_rows(), 20u);
    EXPECT_EQ(drain_at_least(topology_.video_queue, 20).size(), 20u);
}

TEST_F(GatewayApiTest, BackpressureAnswers429WhileTheQueueIsFull) {
    start([](GatewayConfig& c) { c.max_queued_jobs = 2; });
    auto tok = token(1, "a@example.com");
    for (int i = 0; i < 3; ++i) ASSERT_EQ(upload(tok, pattern(100)).status, 202);
    HttpResponse refused;
    ASSERT_TRUE(eventually([&] {  // the queue depth is sampled at most once a second
        refused = upload(tok, pattern(100));
        return refused.status == 429;
    }));
    expect_error(refused, 429, "too_many_queued_jobs");
    EXPECT_EQ(refused.header("retry-after"), "30");
    drain(topology_.video_queue);
    EXPECT_TRUE(eventually([&] { return upload(tok, pattern(100)).status == 202; }));
}

TEST_F(GatewayApiTest, QuotaLimitsStoredBytesPerUser) {
    start([](GatewayConfig& c) { c.user_quota_bytes = 1500000; });
    auto tok = token(1, "a@example.com");
    ASSERT_EQ(upload(tok, pattern(1000000)).status, 202);
    auto over = upload(tok, pattern(1000000));
    expect_error(over, 413, "quota_exceeded");
    EXPECT_NE(over.json()["message"].get<std::string>().find("quota"), std::string::npos);
    EXPECT_TRUE(eventually([&] { return temporary_files("videos") == 0; }));
    EXPECT_EQ(stored_files("videos"), 1u);
    EXPECT_EQ(upload(token(2, "b@example.com"), pattern(1000000)).status, 202) << "quotas are per user";

    // The MP3 counts too: each job's message tells the converter what the quota left when its upload began.
    auto messages = drain_at_least(topology_.video_queue, 2);
    ASSERT_EQ(messages.size(), 2u);
    for (const auto& m : messages) EXPECT_EQ(m["max_output_bytes"], 1500000u) << m.dump();
}

TEST_F(GatewayApiTest, WithoutAQuotaTheConverterIsNotToldOne) {
    ASSERT_EQ(upload(token(1, "a@example.com"), pattern(1000)).status, 202);
    auto messages = drain_at_least(topology_.video_queue, 1);
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_FALSE(messages[0].contains("max_output_bytes")) << messages[0].dump();
}

TEST_F(GatewayApiTest, LoginAndRegisterArePassedToAuthWhichMayBeDown) {
    expect_error(testing::http_request(port_, "POST", "/login", {{"Authorization", "Basic dTpw"}}), 503,
                 "auth_unavailable");
    EXPECT_EQ(testing::http_request(port_, "GET", "/readyz").status, 200) << "auth is not a dependency of readiness";
}

TEST_F(GatewayApiTest, ReadinessAndMetrics) {
    EXPECT_EQ(testing::http_request(port_, "GET", "/readyz").status, 200);
    // One connection: a request's metrics are recorded after its answer is sent, before the next is read.
    testing::HttpConnection c("127.0.0.1", port_);
    std::string boundary = "metricsBoundary";
    auto headers = bearer(token(1, "a@example.com"));
    headers["Content-Type"] = "multipart/form-data; boundary=" + boundary;
    ASSERT_EQ(c.request("POST", "/upload", headers, multipart_body({{"file", "data", "a.mp4"}}, boundary)).status, 202);
    auto metrics = c.request("GET", "/metrics").body;
    EXPECT_NE(metrics.find("gateway_uploads_total{result=\"accepted\"} 1"), std::string::npos) << metrics;
    EXPECT_NE(metrics.find("http_requests_total{route=\"/upload\",method=\"POST\",status=\"202\"} 1"),
              std::string::npos);
}

// Fair scheduling: the jobs table is the waiting room, each user has at most JOBS_IN_FLIGHT_PER_USER jobs on the
// `video` queue, and a restart of the gateway neither loses nor repeats one.
TEST_F(GatewayApiTest, OneUsersBacklogDoesNotDelayAnotherUsersNewJob) {
    start([](GatewayConfig& c) { c.jobs_in_flight_per_user = 1; });
    auto alice = token(1, "alice@example.com");
    auto bob = token(2, "bob@example.com");
    std::vector<std::string> backlog;
    for (int i = 0; i < 4; ++i) backlog.push_back(upload(alice, pattern(1000, i)).json()["job_id"]);
    std::string bobs = upload(bob, pattern(1000, 9)).json()["job_id"];

    auto first = drain_at_least(topology_.video_queue, 2);
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0]["job_id"], backlog[0]);
    EXPECT_EQ(first[1]["job_id"], bobs) << "Bob's job goes behind one of Alice's, not behind all four";
    EXPECT_EQ(get("/jobs/" + backlog[1], alice).json()["status"], "queued") << "waiting is still queued to users";
    EXPECT_TRUE(eventually([&] { return metric("gateway_jobs_waiting") == 3.0; })) << "Alice's other three";
    EXPECT_GT(metric("gateway_oldest_waiting_job_seconds"), 0.0);

    start([](GatewayConfig& c) { c.jobs_in_flight_per_user = 1; });  // a restart while three jobs wait
    EXPECT_TRUE(drain(topology_.video_queue).empty()) << "nothing is published twice";
    publish_event({{"job_id", backlog[0]}, {"status", "failed"}, {"error", "test"}});  // Alice's first ends
    auto next = drain_at_least(topology_.video_queue, 1);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0]["job_id"], backlog[1]) << "then Alice's next, in her order";
}

TEST_F(GatewayApiTest, AJobWhoseMessageWasLostIsDispatchedAgain) {
    start([](GatewayConfig& c) { c.dispatch_lost_after = 1s; });
    auto tok = token(1, "a@example.com");
    std::string job_id = upload(tok, pattern(100)).json()["job_id"];
    ASSERT_EQ(drain_at_least(topology_.video_queue, 1).at(0)["job_id"], job_id);  // taken, never started: lost
    auto again = drain_at_least(topology_.video_queue, 1);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0]["job_id"], job_id) << "the queue is empty and the job never started: dispatched again";
}

TEST_F(GatewayApiTest, TenParallelUploadsCannotPassTheQuotaTogether) {
    start([](GatewayConfig& c) {
        c.user_quota_bytes = 100000;
        c.max_uploads_per_user = 10;
    });
    auto tok = token(1, "a@example.com");
    std::vector<std::future<HttpResponse>> uploads;
    for (int i = 0; i < 10; ++i) {
        uploads.push_back(std::async(std::launch::async, [&, i] { return upload(tok, pattern(40000, i)); }));
    }
    int accepted = 0, over_quota = 0;
    for (auto& u : uploads) {
        auto r = u.get();
        if (r.status == 202) ++accepted;
        if (r.status == 413 && r.json()["error"] == "quota_exceeded") ++over_quota;
        if (r.status != 202 && r.status != 413) ADD_FAILURE() << r.status << " " << r.body;
    }
    EXPECT_EQ(accepted, 2) << "each reserves its declared 40 kB: two fit in 100 kB, whatever the interleaving";
    EXPECT_EQ(over_quota, 8);
    EXPECT_EQ(stored_files("videos"), 2u);
    EXPECT_TRUE(eventually([&] { return temporary_files("videos") == 0; }));
    auto account = get("/account", tok).json();
    EXPECT_EQ(account["usage"]["stored_bytes"], 80000u);
    EXPECT_EQ(account["usage"]["reserved_bytes"], 0u) << "every reservation ended with its upload";
    EXPECT_EQ(account["limits"]["quota_bytes"], 100000u);
}

TEST_F(GatewayApiTest, AQuotaReservationLapsesUnlessRenewed) {
    mysql::Pool pool(database_.options());
    JobStore store(pool);
    ASSERT_TRUE(store.reserve("r1", 7, 500, 1000));
    EXPECT_EQ(store.reserved_bytes(7), 500u);
    auto age = [&] {  // as if its upload had stalled for an hour
        testing::mysql_admin(server_,
                             "UPDATE `" + database_.name() +
                                 "`.quota_reservations SET expires_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 HOUR");
    };
    age();
    EXPECT_EQ(store.reserved_bytes(7), 0u) << "a lapsed reservation holds nothing (its gateway died)";
    store.renew("r1");
    EXPECT_EQ(store.reserved_bytes(7), 500u) << "renewed: held again for 10 minutes";
    EXPECT_FALSE(store.reserve("r2", 7, 600, 1000)) << "and counted against the quota";
    age();
    EXPECT_EQ(store.reserve("r2", 7, 600, 1000), 0u) << "a lapsed one is cleared when another reserves";
    store.release("r2");
}

TEST_F(GatewayApiTest, AccountShowsUsageAndLimits) {
    auto tok = token(3, "c@example.com");
    ASSERT_EQ(upload(tok, pattern(1234)).status, 202);
    auto r = get("/account", tok);
    ASSERT_EQ(r.status, 200) << r.body;
    auto a = r.json();
    EXPECT_EQ(a["email"], "c@example.com");
    EXPECT_EQ(a["usage"]["stored_bytes"], 1234u);
    EXPECT_EQ(a["usage"]["active_jobs"], 1u);
    EXPECT_EQ(a["usage"]["uploads_in_progress"], 0u);
    EXPECT_EQ(a["usage"]["event_streams"], 0u);
    EXPECT_TRUE(a["limits"]["quota_bytes"].is_null()) << "no quota";
    EXPECT_EQ(a["limits"]["max_uploads_in_progress"], 100u);
    EXPECT_EQ(testing::http_request(port_, "GET", "/account").status, 401);
}

TEST_F(GatewayApiTest, WaitingJobsPerUserAreLimited) {
    start([](GatewayConfig& c) { c.max_waiting_jobs_per_user = 2; });
    auto tok = token(1, "a@example.com");
    ASSERT_EQ(upload(tok, pattern(100)).status, 202);
    ASSERT_EQ(upload(tok, pattern(100)).status, 202);
    auto refused = upload(tok, pattern(100));
    expect_error(refused, 429, "too_many_waiting_jobs");
    EXPECT_EQ(refused.json()["limit"]["name"], "MAX_WAITING_JOBS_PER_USER");
    EXPECT_FALSE(refused.header("retry-after").empty());
    EXPECT_EQ(upload(token(2, "b@example.com"), pattern(100)).status, 202) << "another user is not held back";
}

TEST_F(GatewayApiTest, EventStreamsPerUserAreLimitedAndEndAfterTheirLifetime) {
    start([](GatewayConfig& c) {
        c.max_event_streams_per_user = 2;
        c.event_stream_lifetime = 2s;
    });
    auto tok = token(1, "a@example.com");
    std::string job_id = upload(tok, pattern(100)).json()["job_id"];
    std::string target = "/jobs/" + job_id + "/events";
    std::vector<std::unique_ptr<testing::HttpConnection>> open;
    for (int i = 0; i < 2; ++i) {
        open.push_back(std::make_unique<testing::HttpConnection>("127.0.0.1", port_));
        open.back()->send_raw("GET " + target + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n");
    }
    ASSERT_TRUE(eventually([&] { return get("/account", tok).json()["usage"]["event_streams"] == 2; }));
    auto refused = get(target, tok);
    expect_error(refused, 429, "too_many_event_streams");
    EXPECT_EQ(refused.json()["limit"]["name"], "MAX_EVENT_STREAMS_PER_USER");
    EXPECT_EQ(refused.header("retry-after"), "5");
    auto other = token(2, "b@example.com");
    std::string others_job = upload(other, pattern(100)).json()["job_id"];
    EXPECT_EQ(get("/jobs/" + others_job + "/events", other).status, 200) << "another user's streams are their own";

    // The lifetime ends both streams (the client reconnects); their slots come back.
    for (auto& c : open) EXPECT_TRUE(c->wait_closed());
    ASSERT_TRUE(eventually([&] { return get("/account", tok).json()["usage"]["event_streams"] == 0; }));
    // Reconnecting with the state already seen: nothing is sent again until the job moves.
    auto resumed = testing::http_request(port_, "GET", target,
                                         {{"Authorization", "Bearer " + tok}, {"Last-Event-ID", "queued.0"}});
    EXPECT_EQ(resumed.status, 200);
    EXPECT_NE(resumed.body.find("retry:"), std::string::npos) << resumed.body;
    EXPECT_EQ(resumed.body.find("event: status"), std::string::npos) << resumed.body;
}

TEST_F(GatewayApiTest, EveryAnswerForbidsSniffing) {
    auto tok = token(1, "a@example.com");
    auto [job_id, mp3_fid] = finished_job(tok, "ID3 mp3");
    for (const auto& r : {get("/jobs", tok), get("/jobs/" + job_id + "/mp3", tok), get("/nope", tok),
                          testing::http_request(port_, "GET", "/")}) {
        EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
        EXPECT_FALSE(r.header("referrer-policy").empty());
    }
}

// The gateway's whole path on GridFS: the upload streamed in (several chunks), the MP3 downloaded whole and by
// ranges that start inside a later chunk, and both deleted with the job.
TEST_F(GatewayApiTest, OnGridFsUploadsDownloadsRangesAndDeletesWork) {
    const char* uri = std::getenv("MONGODB_URI");
    if (uri == nullptr || *uri == '\0') GTEST_SKIP() << "MONGODB_URI is not set (scripts/with-servers sets it)";
    start([&](GatewayConfig& c) { c.storage_url = uri; });
    auto tok = token(1, "a@example.com");
    std::string video = pattern(700 * 1024 + 3, 5);  // three chunks of 255 KiB
    auto r = upload(tok, video, "trip.mp4");
    ASSERT_EQ(r.status, 202) << r.body;
    std::string job_id = r.json()["job_id"], video_fid = r.json()["video_fid"];
    auto videos = storage::open_store(uri, "videos");
    auto stored = videos->open(video_fid);
    ASSERT_NE(stored, nullptr);
    EXPECT_EQ(stored->info().sha256, crypto::to_hex(crypto::sha256(video)));
    std::string back;
    std::string buffer(64 * 1024, '\0');
    while (size_t n = stored->read(buffer.data(), buffer.size())) back.append(buffer.data(), n);
    EXPECT_EQ(back, video);
    stored.reset();

    std::string mp3 = pattern(600 * 1024 + 7, 9);
    auto mp3s = storage::open_store(uri, "mp3s");  // as the converter stores it
    auto writer = mp3s->create({.owner = "1", .filename = "trip.mp3", .content_type = "audio/mpeg", .id = job_id});
    writer->write(mp3);
    writer->commit();
    publish_event({{"job_id", job_id}, {"status", "done"}, {"mp3_fid", job_id}, {"mp3_size", mp3.size()}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["status"] == "done"; }));
    EXPECT_EQ(get("/jobs/" + job_id + "/mp3", tok).body, mp3);
    auto headers = bearer(tok);
    headers["Range"] = "bytes=300000-300099";  // inside chunk 1
    auto part = testing::http_request(port_, "GET", "/jobs/" + job_id + "/mp3", headers);
    EXPECT_EQ(part.status, 206);
    EXPECT_EQ(part.body, mp3.substr(300000, 100));
    headers["Range"] = "bytes=-10";
    EXPECT_EQ(testing::http_request(port_, "GET", "/jobs/" + job_id + "/mp3", headers).body,
              mp3.substr(mp3.size() - 10));

    EXPECT_EQ(testing::http_request(port_, "DELETE", "/jobs/" + job_id, bearer(tok)).status, 204);
    EXPECT_FALSE(mp3s->stat(job_id)) << "the MP3 is deleted from GridFS";
    EXPECT_FALSE(videos->stat(video_fid)) << "and the upload";
}

// On GridFS, slow downloads hold pooled MongoDB clients: once all are out, the next request that needs one is refused
// (503) after the short pool wait, and everything that needs no client (probes, the job list) is answered meanwhile.
TEST_F(GatewayApiTest, OnGridFsAnExhaustedClientPoolIs503AndTheRestIsStillServed) {
    const char* uri = std::getenv("MONGODB_URI");
    if (uri == nullptr || *uri == '\0') GTEST_SKIP() << "MONGODB_URI is not set (scripts/with-servers sets it)";
    std::string url = uri;
    url += url.find('?') != std::string::npos ? "&" : (url.back() == '/' ? "?" : "/?");
    url += "maxPoolSize=3";  // and the store's own default wait for a free client (2 s)
    start([&](GatewayConfig& c) { c.storage_url = url; });
    auto tok = token(1, "a@example.com");
    auto r = upload(tok, pattern(1000));
    ASSERT_EQ(r.status, 202) << r.body;
    std::string job_id = r.json()["job_id"];
    std::string mp3 = pattern(16 << 20, 3);  // more than the sockets buffer: a client that does not read stalls it
    auto mp3s = storage::open_store(url, "mp3s");  // as the converter stores it
    auto writer = mp3s->create({.owner = "1", .filename = "x.mp3"});
    writer->write(mp3);
    std::string mp3_fid = writer->commit().id;
    publish_event({{"job_id", job_id}, {"status", "done"}, {"mp3_fid", mp3_fid}, {"mp3_size", mp3.size()}});
    ASSERT_TRUE(eventually([&] { return get("/jobs/" + job_id, tok).json()["status"] == "done"; }));

    std::vector<std::unique_ptr<testing::HttpConnection>> stalled;
    HttpResponse refused;
    ASSERT_TRUE(eventually([&] {
        if (stalled.size() < 3) {
            stalled.push_back(std::make_unique<testing::HttpConnection>("127.0.0.1", port_));
            stalled.back()->send_raw("GET /jobs/" + job_id + "/mp3 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                     tok + "\r\n\r\n");
        }
        refused = get("/jobs/" + job_id + "/mp3", tok);
        return refused.status == 503;
    }));
    EXPECT_EQ(refused.json()["error"], "storage_unavailable");
    EXPECT_FALSE(refused.header("retry-after").empty());
    EXPECT_EQ(testing::http_request(port_, "GET", "/healthz").status, 200);
    EXPECT_EQ(get("/jobs", tok).status, 200);

    stalled.clear();  // the slow clients go: their clients return to the pool
    HttpResponse again;
    EXPECT_TRUE(eventually([&] {
        again = get("/jobs/" + job_id + "/mp3", tok);
        return again.status == 200;
    }));
    EXPECT_EQ(again.body.size(), mp3.size());
}

// The file store on a full disk (a 1 MiB tmpfs over its directory): an upload that does not fit answers 507 with a
// JSON body and Retry-After, and leaves no file and no job; once space is freed the same upload is taken.
class GatewayFullDiskTest : public GatewayTest {};

TEST_F(GatewayFullDiskTest, AnUploadThatDoesNotFitIs507AndLeavesNothing) {
    std::string why;
    auto disk = testing::Tmpfs::mount(storage_dir_, 1 << 20, why);
    if (!disk) GTEST_SKIP() << why;
    start();
    std::string tok = token(7, "full@example.com");
    auto refused = upload(tok, pattern(3 << 20));
    EXPECT_EQ(refused.status, 507) << refused.body;
    EXPECT_EQ(refused.json()["error"], "insufficient_storage") << refused.body;
    EXPECT_EQ(refused.header("retry-after"), "60");
    EXPECT_EQ(stored_files("videos"), 0u);
    EXPECT_EQ(temporary_files("videos"), 0u) << "the partial upload is removed";
    EXPECT_EQ(job_rows(), 0u);
    EXPECT_EQ(drain(topology_.video_queue).size(), 0u);

    ASSERT_TRUE(disk->resize(16 << 20));  // space freed
    auto taken = upload(tok, pattern(3 << 20));
    EXPECT_EQ(taken.status, 202) << taken.body;
    EXPECT_EQ(stored_files("videos"), 1u);
}

}  // namespace
}  // namespace mp3c::gateway::test
