// The gateway's handlers over in-memory backends: every route's logic without servers. The same routes run against
// MariaDB, RabbitMQ and the real token issuer in tests/gateway_api_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "auth_proxy.hpp"
#include "dispatcher.hpp"
#include "download_handlers.hpp"
#include "job_events.hpp"
#include "job_handlers.hpp"
#include "mp3c/amqp.hpp"
#include "mp3c/messages.hpp"
#include "status_event_handler.hpp"
#include "sweeper.hpp"
#include "upload_handler.hpp"

namespace mp3c::gateway {
namespace {

namespace fs = std::filesystem;
using http::Request;
using http::Response;

const std::string kSecret(40, 's');

// The job records as a map; status events move a job with the same rules the event streams use.
class MemoryJobs final : public Jobs {
  public:
    bool is_ready = true;
    std::map<std::string, Job> rows;
    std::map<std::string, std::string> waveforms;

    bool ready() const override { return is_ready; }
    void create(const Job& job) override {
        rows[job.id] = job;
        if (job.reused_from && waveforms.count(*job.reused_from)) waveforms[job.id] = waveforms[*job.reused_from];
    }
    std::optional<std::string> waveform(const std::string& id) override {
        auto it = waveforms.find(id);
        if (it == waveforms.end()) return std::nullopt;
        return it->second;
    }
    std::optional<Job> find(const std::string& id) override {
        auto it = rows.find(id);
        if (it == rows.end()) return std::nullopt;
        return it->second;
    }
    std::optional<Job> find_by_mp3(const std::string& mp3_fid) override {
        for (const auto& [id, job] : rows) {
            if (job.mp3_fid == mp3_fid) return job;
        }
        return std::nullopt;
    }
    std::vector<Job> list(const JobQuery& q) override {
        std::vector<Job> all;
        for (const auto& [id, job] : rows) {
            if ((!q.owner_id || job.owner_id == *q.owner_id) && (!q.status || job.status == *q.status)) {
                all.push_back(job);
            }
        }
        std::vector<Job> page;
        for (size_t i = q.offset; i < all.size() && page.size() < q.limit; ++i) page.push_back(all[i]);
        return page;
    }
    uint64_t stored_bytes(uint64_t owner_id) override {
        uint64_t total = 0;
        for (const auto& [id, job] : rows) {
            if (job.owner_id == owner_id) {
                total += (job.video_fid.empty() ? 0 : job.size) + (job.mp3_fid ? job.mp3_size.value_or(0) : 0);
            }
        }
        return total;
    }
    bool apply(const StatusEvent& event) override {
        auto it = rows.find(event.job_id);
        if (it == rows.end() || !advances(it->second, event)) return false;
        apply_to(it->second, event);
        if (event.status == JobStatus::done && event.waveform) waveforms[event.job_id] = *event.waveform;
        return true;
    }
    bool cancel_unfinished(const std::string& id) override {
        auto it = rows.find(id);
        if (it == rows.end() || is_terminal(it->second.status)) return false;
        it->second.status = JobStatus::cancelled;
        return true;
    }
    void forget_video(const std::string& id) override { rows.at(id).video_fid.clear(); }
    bool remove(const std::string& id) override {
        waveforms.erase(id);
        return rows.erase(id) == 1;
    }
    uint64_t active_jobs(uint64_t owner_id) override {
        uint64_t n = 0;
        for (const auto& [id, job] : rows) n += job.owner_id == owner_id && !is_terminal(job.status);
        return n;
    }
    // The same rule as JobStore's query: per owner, FIFO turns after what is dispatched; everyone's turn 1 first.
    std::vector<Job> dispatchable(uint64_t per_owner, size_t limit) override {
        std::map<uint64_t, uint64_t> running;
        std::vector<const Job*> waiting;
        for (const auto& [id, job] : rows) {
            if (job.status == JobStatus::processing || (job.status == JobStatus::queued && job.dispatched)) {
                ++running[job.owner_id];
            } else if (job.status == JobStatus::queued) {
                waiting.push_back(&job);
            }
        }
        std::sort(waiting.begin(), waiting.end(), [](const Job* a, const Job* b) {
            return std::tie(a->created_ms, a->id) < std::tie(b->created_ms, b->id);
        });
        std::vector<std::pair<uint64_t, const Job*>> turns;
        std::map<uint64_t, uint64_t> seen;
        for (const Job* job : waiting) {
            uint64_t turn = ++seen[job->owner_id];
            if (turn + running[job->owner_id] <= per_owner) turns.emplace_back(turn, job);
        }
        std::stable_sort(turns.begin(), turns.end(), [](auto& a, auto& b) { return a.first < b.first; });
        std::vector<Job> out;
        for (auto& [turn, job] : turns) {
            if (out.size() < limit) out.push_back(*job);
        }
        return out;
    }
    Waiting waiting() override {
        Waiting w;
        for (const auto& [id, job] : rows) w.jobs += job.status == JobStatus::queued && !job.dispatched;
        return w;  // no clock: nothing has waited
    }
    // The fake has no clock: a job was dispatched "long ago" only for an age of 0.
    uint64_t requeue_unstarted(std::chrono::seconds age) override {
        uint64_t n = 0;
        for (auto& [id, job] : rows) {
            if (job.status == JobStatus::queued && job.dispatched && age.count() == 0) {
                job.dispatched = false;
                ++n;
            }
        }
        return n;
    }
    bool dispatch(const std::string& id, const std::function<void()>& publish) override {
        auto it = rows.find(id);
        if (it == rows.end() || it->second.status != JobStatus::queued || it->second.dispatched) return false;
        publish();
        it->second.dispatched = true;
        return true;
    }
    std::optional<uint64_t> reserve(const std::string& reservation, uint64_t owner_id, uint64_t bytes,
                                    uint64_t quota) override {
        uint64_t others = stored_bytes(owner_id);
        for (const auto& [id, held] : reservations) {
            if (id != reservation && held.first == owner_id) others += held.second;
        }
        uint64_t mine = reservations.contains(reservation) ? reservations[reservation].second : 0;
        if (others + mine + bytes > quota) return std::nullopt;
        reservations[reservation] = {owner_id, mine + bytes};
        return others;
    }
    void release(const std::string& reservation) override { reservations.erase(reservation); }
    void renew(const std::string& reservation) override { ++renewals[reservation]; }
    std::map<std::string, int> renewals;
    uint64_t reserved_bytes(uint64_t owner_id) override {
        uint64_t n = 0;
        for (const auto& [id, held] : reservations) n += held.first == owner_id ? held.second : 0;
        return n;
    }
    std::map<std::string, std::pair<uint64_t, uint64_t>> reservations;  // id: owner, bytes

    // Retention against `now` (the test's clock moves it).
    int64_t now = 0;
    std::vector<Job> expired(size_t limit) override {
        std::vector<Job> due;
        for (const auto& [id, job] : rows) {
            bool kept = job.status == JobStatus::done || job.status == JobStatus::failed;
            if (kept && job.expires_ms && *job.expires_ms <= now && due.size() < limit) due.push_back(job);
        }
        return due;
    }
    bool mark_expired(const std::string& id) override {
        auto it = rows.find(id);
        if (it == rows.end() || !it->second.expires_ms || *it->second.expires_ms > now) return false;
        if (it->second.status != JobStatus::done && it->second.status != JobStatus::failed) return false;
        it->second.status = JobStatus::expired;
        it->second.video_fid.clear();
        it->second.mp3_fid.reset();
        return true;
    }
    uint64_t adopt_retention() override { return 0; }
    bool lock_held_elsewhere = false;
    bool exclusively(const std::string&, const std::function<void()>& f) override {
        if (lock_held_elsewhere) return false;
        f();
        return true;
    }
    bool set_expiry(const std::string& id, int64_t expires_ms) override {
        auto it = rows.find(id);
        if (it == rows.end()) return false;
        const Job& j = it->second;
        if (!(j.status == JobStatus::done && j.mp3_fid) && !j.retryable()) return false;
        it->second.expires_ms = expires_ms;
        return true;
    }
    bool requeue_failed(const std::string& id, const nlohmann::json& options) override {
        auto it = rows.find(id);
        if (it == rows.end() || !it->second.retryable()) return false;
        Job& j = it->second;
        j.status = JobStatus::queued;
        j.progress = 0;
        j.error.reset();
        j.reason.reset();
        j.expires_ms.reset();
        j.dispatched = false;
        j.options = options;
        return true;
    }
    std::optional<Job> find_reusable(uint64_t owner_id, const std::string& sha256,
                                     const nlohmann::json& options) override {
        for (const auto& [id, job] : rows) {
            if (job.owner_id == owner_id && job.source_sha256 == sha256 && job.options == options &&
                job.status == JobStatus::done && job.mp3_fid) {
                return job;
            }
        }
        return std::nullopt;
    }
};

class CountingDispatch final : public JobDispatch {
  public:
    void wake() override { ++woken; }
    int woken = 0;
};

class RecordingQueue final : public JobQueue {
  public:
    std::vector<messages::VideoJob> submitted;
    std::vector<messages::StatusEvent> announced;
    std::optional<uint32_t> waiting = 0;
    bool broker_down = false;

    void submit(const messages::VideoJob& job) override {
        if (broker_down) throw amqp::Error("not confirmed");
        submitted.push_back(job);
    }
    void announce(const messages::StatusEvent& event) override {
        if (broker_down) throw amqp::Error("not confirmed");
        announced.push_back(event);
    }
    std::vector<messages::Mp3Ready> finished_jobs;
    void finished(const messages::Mp3Ready& ready) override {
        if (broker_down) throw amqp::Error("not confirmed");
        finished_jobs.push_back(ready);
    }
    std::optional<uint32_t> depth() override { return waiting; }
};

class FixedClock final : public Clock {
  public:
    int64_t now = 1'780'000'000'000;
    int64_t now_ms() const override { return now; }
};

// Real file stores in a directory of the test's own.
class HandlersTest : public ::testing::Test {
  protected:
    HandlersTest()
        : dir_(fs::temp_directory_path() / ("mp3c-handlers-" + storage::new_id())),
          videos_(storage::open_store("file://" + dir_.string() + "?direct_io=off", "videos")),
          mp3s_(storage::open_store("file://" + dir_.string() + "?direct_io=off", "mp3s")),
          auth_(kSecret) {}
    ~HandlersTest() override { fs::remove_all(dir_); }

    Backends backends() {
        return {.jobs = jobs_,
                .videos = *videos_,
                .mp3s = *mp3s_,
                .queue = queue_,
                .dispatch = dispatch_,
                .clock = clock_,
                .auth = auth_,
                .events = &hub_};
    }

    std::string token(uint64_t user_id, bool admin = false) {
        messages::AccessClaims claims{
            .username = "user" + std::to_string(user_id) + "@example.com", .user_id = user_id, .admin = admin};
        return token::Signer(kSecret).issue(claims.to_json(), token::Clock::now() + std::chrono::hours(1));
    }

    Request request(std::string method, std::string target, std::optional<uint64_t> user = 1, bool admin = false) {
        Request r;
        r.method = std::move(method);
        r.target = target;
        auto q = target.find('?');
        r.path = target.substr(0, q);
        if (q != std::string::npos) r.query = target.substr(q + 1);
        if (user) r.headers.set("Authorization", "Bearer " + token(*user, admin));
        r.request_id = "req-1";
        return r;
    }
    Request job_request(std::string method, const std::string& id, std::string suffix = "",
                        std::optional<uint64_t> user = 1) {
        Request r = request(std::move(method), "/jobs/" + id + suffix, user);
        r.path_params["id"] = id;
        return r;
    }

    std::string stored(storage::BlobStore& store, std::string_view bytes) {
        auto writer = store.create({.owner = "1", .filename = "x"});
        writer->write(bytes);
        return writer->commit().id;
    }

    Job& add_job(uint64_t owner, JobStatus status, std::string_view mp3 = "") {
        Job job;
        job.id = storage::new_id();
        job.owner_id = owner;
        job.owner_email = "user" + std::to_string(owner) + "@example.com";
        job.filename = "holiday.mp4";
        job.video_fid = stored(*videos_, "video bytes");
        job.size = 11;
        job.status = status;
        if (status == JobStatus::done) {
            job.mp3_fid = stored(*mp3s_, mp3);
            job.mp3_size = mp3.size();
        }
        return jobs_.rows[job.id] = job;
    }

    // Files in a bucket (a blob is its bytes and its metadata; a partial upload is a file too).
    size_t blobs(const char* bucket) {
        size_t n = 0;
        for (const auto& e : fs::recursive_directory_iterator(dir_ / bucket)) {
            n += e.is_regular_file() && e.path().extension() != ".json" ? 1 : 0;
        }
        return n;
    }

    static std::string body_of(const Response& r) {
        if (!r.source) return r.body;
        std::string out;
        char buffer[4096];
        while (size_t n = r.source->read(buffer, sizeof buffer)) out.append(buffer, n);
        return out;
    }
    static std::string error_of(const Response& r) { return nlohmann::json::parse(r.body).value("error", ""); }

    fs::path dir_;
    std::unique_ptr<storage::BlobStore> videos_, mp3s_;
    Authenticator auth_;
    MemoryJobs jobs_;
    RecordingQueue queue_;
    CountingDispatch dispatch_;
    FixedClock clock_;
    JobEventHub hub_;
    metrics::Registry registry_;
};

TEST_F(HandlersTest, RequestsWithoutAValidTokenAreRefused) {
    JobHandlers handlers(backends(), hub_);
    Response missing = handlers.list(request("GET", "/jobs", std::nullopt));
    EXPECT_EQ(missing.status, 401);
    EXPECT_TRUE(missing.headers.get("WWW-Authenticate"));
    Request forged = request("GET", "/jobs", std::nullopt);
    forged.headers.set("Authorization",
                       "Bearer " + token::Signer(std::string(40, 'x'))
                                       .issue(messages::AccessClaims{.username = "a@b.c", .user_id = 1}.to_json(),
                                              token::Clock::now() + std::chrono::hours(1)));
    Response refused = handlers.list(forged);
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(error_of(refused), "not_authorized");
}

TEST_F(HandlersTest, AUserSeesOnlyTheirOwnJobsAndAnotherUsersJobIsLikeAMissingOne) {
    JobHandlers handlers(backends(), hub_);
    Job mine = add_job(1, JobStatus::queued);
    Job theirs = add_job(2, JobStatus::queued);
    auto listed = nlohmann::json::parse(handlers.list(request("GET", "/jobs")).body);
    ASSERT_EQ(listed["jobs"].size(), 1u);
    EXPECT_EQ(listed["jobs"][0]["job_id"], mine.id);

    Response other = handlers.get(job_request("GET", theirs.id));
    Response missing = handlers.get(job_request("GET", storage::new_id()));
    EXPECT_EQ(other.status, 404);
    EXPECT_EQ(other.body, missing.body);
    EXPECT_EQ(handlers.get(job_request("GET", "../etc/passwd")).status, 400);

    EXPECT_EQ(handlers.list(request("GET", "/jobs?all=true")).status, 403);
    auto everyone = nlohmann::json::parse(handlers.list(request("GET", "/jobs?all=true", 9, true)).body);
    EXPECT_EQ(everyone["jobs"].size(), 2u);
}

TEST_F(HandlersTest, JobListsArePagedAndCheckTheirParameters) {
    JobHandlers handlers(backends(), hub_);
    for (int i = 0; i < 5; ++i) add_job(1, JobStatus::queued);
    auto first = nlohmann::json::parse(handlers.list(request("GET", "/jobs?limit=2")).body);
    EXPECT_EQ(first["jobs"].size(), 2u);
    EXPECT_EQ(first["next_offset"], 2);
    auto last = nlohmann::json::parse(handlers.list(request("GET", "/jobs?limit=2&offset=4")).body);
    EXPECT_EQ(last["jobs"].size(), 1u);
    EXPECT_TRUE(last["next_offset"].is_null());
    EXPECT_EQ(error_of(handlers.list(request("GET", "/jobs?limit=0"))), "invalid_limit");
    EXPECT_EQ(error_of(handlers.list(request("GET", "/jobs?limit=101"))), "invalid_limit");
    EXPECT_EQ(error_of(handlers.list(request("GET", "/jobs?offset=-1"))), "invalid_offset");
    EXPECT_EQ(error_of(handlers.list(request("GET", "/jobs?status=lost"))), "invalid_status");
}

TEST_F(HandlersTest, WhileTheRecordsCannotBeUsedTheAnswerIs503WithRetryAfter) {
    JobHandlers handlers(backends(), hub_);
    Job job = add_job(1, JobStatus::queued);
    jobs_.is_ready = false;
    Response r = handlers.get(job_request("GET", job.id));
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(error_of(r), "database_unavailable");
    EXPECT_TRUE(r.headers.get("Retry-After"));
}

TEST_F(HandlersTest, DeletingAQueuedJobCancelsItAnnouncesItAndDeletesTheUpload) {
    JobHandlers handlers(backends(), hub_);
    Job job = add_job(1, JobStatus::queued);
    ASSERT_EQ(blobs("videos"), 1u);
    Response r = handlers.remove(job_request("DELETE", job.id));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(nlohmann::json::parse(r.body)["status"], "cancelled");
    EXPECT_EQ(jobs_.rows.at(job.id).status, JobStatus::cancelled);  // the row stays, to show what happened
    EXPECT_EQ(blobs("videos"), 0u);
    ASSERT_EQ(queue_.announced.size(), 1u);
    EXPECT_EQ(queue_.announced[0].status, messages::JobState::cancelled);
    EXPECT_EQ(queue_.announced[0].at, clock_.now);
}

TEST_F(HandlersTest, AConvertingJobIsCancelledAndAFinishedOneGoesWithItsFiles) {
    JobHandlers handlers(backends(), hub_);
    Job running = add_job(1, JobStatus::processing);
    Response cancelled = handlers.remove(job_request("DELETE", running.id));
    EXPECT_EQ(cancelled.status, 200) << cancelled.body;
    EXPECT_EQ(jobs_.rows[running.id].status, JobStatus::cancelled);
    EXPECT_EQ(blobs("videos"), 0u) << "the converter finds its upload gone and stops";
    ASSERT_EQ(queue_.announced.size(), 1u);
    EXPECT_EQ(queue_.announced[0].status, messages::JobState::cancelled);
    Job done = add_job(1, JobStatus::done, "mp3 bytes");
    EXPECT_EQ(handlers.remove(job_request("DELETE", done.id)).status, 204);
    EXPECT_FALSE(jobs_.rows.contains(done.id));
    EXPECT_EQ(blobs("mp3s"), 0u);
    EXPECT_EQ(handlers.remove(job_request("DELETE", done.id, "", 2)).status, 404);
}

TEST_F(HandlersTest, AnMp3IsServedWithRangesAndValidators) {
    DownloadHandlers downloads(backends(), {.link_secret = kSecret, .link_ttl = std::chrono::seconds(600)});
    Job job = add_job(1, JobStatus::done, "0123456789");
    Response whole = downloads.job_mp3(job_request("GET", job.id, "/mp3"));
    EXPECT_EQ(whole.status, 200);
    EXPECT_EQ(body_of(whole), "0123456789");
    EXPECT_EQ(whole.headers.get("Content-Type"), "audio/mpeg");

    Request ranged = job_request("GET", job.id, "/mp3");
    ranged.headers.set("Range", "bytes=2-4");
    Response part = downloads.job_mp3(ranged);
    EXPECT_EQ(part.status, 206);
    EXPECT_EQ(body_of(part), "234");
    EXPECT_EQ(part.headers.get("Content-Range"), "bytes 2-4/10");

    Request cached = job_request("GET", job.id, "/mp3");
    cached.headers.set("If-None-Match", std::string(*whole.headers.get("ETag")));
    EXPECT_EQ(downloads.job_mp3(cached).status, 304);

    Job waiting = add_job(1, JobStatus::processing);
    EXPECT_EQ(error_of(downloads.job_mp3(job_request("GET", waiting.id, "/mp3"))), "not_ready");
    EXPECT_EQ(downloads.job_mp3(job_request("GET", job.id, "/mp3", 2)).status, 404);
}

TEST_F(HandlersTest, AJobTheStreamsCallDoneIsDoneHereBeforeItsRecordCatchesUp) {
    DownloadHandlers downloads(backends(), {.link_secret = kSecret, .link_ttl = std::chrono::seconds(600)});
    JobHandlers jobs(backends(), hub_);
    Job job = add_job(1, JobStatus::processing);
    StatusEvent done;
    done.job_id = job.id;
    done.status = JobStatus::done;
    done.mp3_fid = stored(*mp3s_, "the mp3");
    done.mp3_size = 7;
    hub_.update(done);  // heard by this replica's event streams; the record is still `processing`
    EXPECT_EQ(nlohmann::json::parse(jobs.get(job_request("GET", job.id)).body)["status"], "done");
    Response mp3 = downloads.job_mp3(job_request("GET", job.id, "/mp3"));
    EXPECT_EQ(mp3.status, 200);
    EXPECT_EQ(body_of(mp3), "the mp3");
    EXPECT_EQ(downloads.job_mp3(job_request("GET", job.id, "/mp3", 2)).status, 404) << "still only for its owner";
}

// The links that need no token read the record by the job's id: they too must not say "not ready" after the streams
// said done (a CI run once got 409 from a mail's link 4 ms after GET /jobs/{id} said done).
TEST_F(HandlersTest, TheLinksWithoutATokenServeAJobTheStreamsCallDoneBeforeItsRecordCatchesUp) {
    const std::string mail_secret = "mail link secret";
    DownloadHandlers downloads(backends(), {.link_secret = kSecret, .mail_link_secret = mail_secret});
    Job job = add_job(1, JobStatus::processing);
    auto without_token = [&](const std::string& target) {
        Request r = request("GET", target, std::nullopt);
        r.path_params["id"] = job.id;
        return downloads.job_mp3(r);
    };
    std::string mail_link = "/jobs/" + job.id + "/mp3?signature=" + messages::mail_link_signature(mail_secret, job.id);
    EXPECT_EQ(error_of(without_token(mail_link)), "not_ready") << "the record says processing, and so does the link";

    StatusEvent done;
    done.job_id = job.id;
    done.status = JobStatus::done;
    done.mp3_fid = stored(*mp3s_, "the mp3");
    done.mp3_size = 7;
    hub_.update(done);  // the record is still `processing`
    EXPECT_EQ(body_of(without_token(mail_link)), "the mp3");
    Response link = downloads.create_link(job_request("POST", job.id, "/link"));
    ASSERT_EQ(link.status, 200);
    EXPECT_EQ(body_of(without_token(nlohmann::json::parse(link.body)["url"])), "the mp3");
    EXPECT_EQ(body_of(downloads.download(request("GET", "/download?fid=" + job.id))), "the mp3");
    EXPECT_EQ(downloads.download(request("GET", "/download?fid=" + job.id, 2)).status, 404) << "the owner's only";
}

TEST_F(HandlersTest, TheSweeperExpiresWhatIsDueOnlyAndSkipsWhileAnotherReplicaSweeps) {
    Sweeper sweeper(jobs_, *videos_, *mp3s_, registry_, {.batch = 1});
    Job& due = add_job(1, JobStatus::done, "mp3");
    due.expires_ms = 1000;
    Job& failed = add_job(1, JobStatus::failed);
    failed.expires_ms = 2000;
    Job& later = add_job(1, JobStatus::done, "mp3");
    later.expires_ms = 5000;
    add_job(1, JobStatus::queued);
    const std::string later_id = later.id, due_id = due.id, failed_id = failed.id;
    jobs_.now = 3000;
    jobs_.lock_held_elsewhere = true;
    EXPECT_EQ(sweeper.sweep_once(), std::nullopt) << "another replica is sweeping";
    EXPECT_EQ(jobs_.rows[due_id].status, JobStatus::done);
    jobs_.lock_held_elsewhere = false;
    EXPECT_EQ(sweeper.sweep_once(), 2u) << "in batches of one until none is due";
    EXPECT_EQ(jobs_.rows[due_id].status, JobStatus::expired);
    EXPECT_EQ(jobs_.rows[failed_id].status, JobStatus::expired);
    EXPECT_EQ(jobs_.rows[later_id].status, JobStatus::done);
    EXPECT_EQ(blobs("mp3s"), 1u) << "only the due MP3 was deleted";
    EXPECT_EQ(blobs("videos"), 2u) << "the expired jobs' uploads went; the others' stay";
    EXPECT_EQ(jobs_.stored_bytes(1), 2 * 11u + 3u);
    EXPECT_EQ(sweeper.sweep_once(), 0u);
}

TEST_F(HandlersTest, ARetryQueuesAFailedJobAgainAndTheHubForgetsTheFailure) {
    JobHandlers handlers(backends(), hub_, {}, {.max_waiting_jobs_per_user = 1});
    Job failed = add_job(1, JobStatus::failed);
    hub_.update({.job_id = failed.id, .status = JobStatus::failed, .at_ms = 1});
    Request retry = job_request("POST", failed.id, "/retry");
    retry.body = R"({"quality": 2})";
    Response r = handlers.retry(retry);
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(jobs_.rows[failed.id].status, JobStatus::queued);
    EXPECT_EQ(jobs_.rows[failed.id].options["quality"], 2);
    EXPECT_EQ(hub_.latest(failed.id)->status, JobStatus::queued);
    ASSERT_EQ(queue_.announced.size(), 1u);
    EXPECT_EQ(queue_.announced[0].status, messages::JobState::queued);
    EXPECT_EQ(dispatch_.woken, 1);
    EXPECT_EQ(error_of(handlers.retry(job_request("POST", failed.id, "/retry"))), "not_failed");
    // One job waiting already: the next retry is over MAX_WAITING_JOBS_PER_USER.
    Job another = add_job(1, JobStatus::failed);
    EXPECT_EQ(handlers.retry(job_request("POST", another.id, "/retry")).status, 429);
    Job gone = add_job(2, JobStatus::failed);
    jobs_.rows[gone.id].video_fid.clear();
    EXPECT_EQ(error_of(handlers.retry(job_request("POST", gone.id, "/retry", 2))), "source_gone");
}

TEST_F(HandlersTest, AUserHasAtMostMaxZipsPerUserZipDownloadsRunning) {
    DownloadHandlers downloads(backends(), {.link_secret = kSecret, .max_zips_per_user = 2});
    Job a = add_job(1, JobStatus::done, "first"), b = add_job(1, JobStatus::done, "second");
    Job other = add_job(2, JobStatus::done, "theirs");
    auto zip = [&](uint64_t user, const Job& job) {
        return downloads.zip(request("GET", "/jobs.zip?ids=" + job.id, user));
    };
    std::optional<Response> one = zip(1, a), two = zip(1, b);
    ASSERT_EQ(one->status, 200) << one->body;
    ASSERT_EQ(two->status, 200);
    Response third = zip(1, a);
    EXPECT_EQ(third.status, 429);
    EXPECT_EQ(error_of(third), "too_many_zips");
    EXPECT_EQ(zip(2, other).status, 200) << "another user is not held up";
    one.reset();  // the first ZIP's response is over
    EXPECT_EQ(zip(1, a).status, 200);
}

TEST_F(HandlersTest, TheOriginalsDownloadByFidIsForTheOwnerOnly) {
    DownloadHandlers downloads(backends(), {.link_secret = kSecret, .link_ttl = std::chrono::seconds(600)});
    Job job = add_job(1, JobStatus::done, "abc");
    EXPECT_EQ(body_of(downloads.download(request("GET", "/download?fid=" + *job.mp3_fid))), "abc");
    EXPECT_EQ(error_of(downloads.download(request("GET", "/download?fid=" + *job.mp3_fid, 2))), "file_not_found");
    EXPECT_EQ(error_of(downloads.download(request("GET", "/download"))), "fid_required");
    EXPECT_EQ(error_of(downloads.download(request("GET", "/download?fid=xyz"))), "invalid_id");
}

TEST_F(HandlersTest, ASignedLinkWorksWithoutATokenUntilItExpires) {
    DownloadHandlers downloads(backends(), {.link_secret = kSecret, .link_ttl = std::chrono::seconds(600)});
    Job job = add_job(1, JobStatus::done, "abc");
    Response link = downloads.create_link(job_request("POST", job.id, "/link"));
    ASSERT_EQ(link.status, 200);
    std::string url = nlohmann::json::parse(link.body)["url"];
    EXPECT_NE(url.find("expires=" + std::to_string(clock_.now / 1000 + 600)), std::string::npos);

    auto follow = [&](const std::string& target) {
        Request r = request("GET", target, std::nullopt);
        r.path_params["id"] = job.id;
        return downloads.job_mp3(r);
    };
    EXPECT_EQ(body_of(follow(url)), "abc");
    std::string tampered = url;
    tampered.back() = tampered.back() == '0' ? '1' : '0';
    EXPECT_EQ(error_of(follow(tampered)), "invalid_link");
    std::string extended = url;
    extended.replace(extended.find("expires=") + 8, 1, "9");
    EXPECT_EQ(error_of(follow(extended)), "invalid_link");
    clock_.now += 601'000;
    EXPECT_EQ(error_of(follow(url)), "link_expired");

    Job waiting = add_job(1, JobStatus::queued);
    EXPECT_EQ(downloads.create_link(job_request("POST", waiting.id, "/link")).status, 409);
}

// Feeds a multipart body to the upload route, as the HTTP server would, in pieces.
class UploadTest : public HandlersTest {
  protected:
    Response upload(UploadHandler& handler, const std::string& file, std::map<std::string, std::string> fields = {}) {
        std::string body;
        for (const auto& [name, value] : fields) {
            body += "--B\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
        }
        body +=
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../clip.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n" +
            file + "\r\n--B--\r\n";
        Request r = request("POST", "/upload");
        r.headers.set("Content-Type", "multipart/form-data; boundary=B");
        auto begun = handler.begin(r);
        if (auto* refused = std::get_if<Response>(&begun)) return *refused;
        auto& consumer = std::get<std::unique_ptr<http::BodyConsumer>>(begun);
        for (size_t at = 0; at < body.size(); at += 7) {
            if (auto early = consumer->on_data(std::string_view(body).substr(at, 7))) return *early;
        }
        return consumer->on_end();
    }
};

TEST_F(UploadTest, AnUploadIsStoredRecordedAndWaitsForTheDispatcher) {
    UploadHandler handler(backends(), {.max_upload_bytes = 1000, .max_queued_jobs = 10}, registry_);
    Response r = upload(handler, "some video", {{"bitrate", "192"}});
    ASSERT_EQ(r.status, 202) << r.body;
    std::string id = nlohmann::json::parse(r.body)["job_id"];
    ASSERT_TRUE(jobs_.rows.contains(id));
    EXPECT_EQ(jobs_.rows[id].filename, "clip.mp4");
    EXPECT_FALSE(jobs_.rows[id].dispatched);
    EXPECT_EQ(dispatch_.woken, 1);
    EXPECT_TRUE(queue_.submitted.empty()) << "the dispatcher publishes, not the upload";

    jobs_.rows[id].created_ms = clock_.now;  // the database's default
    Dispatcher dispatcher(jobs_, queue_, registry_, {});
    EXPECT_EQ(dispatcher.dispatch_once(), 1u);
    ASSERT_EQ(queue_.submitted.size(), 1u);
    const messages::VideoJob& message = queue_.submitted[0];
    EXPECT_EQ(message.job_id, id);
    EXPECT_EQ(message.username, "user1@example.com");
    EXPECT_EQ(message.user_id, "1");
    EXPECT_EQ(message.submitted_at, clock_.now);
    EXPECT_EQ(message.options.bitrate_kbps, 192);
    EXPECT_TRUE(jobs_.rows[id].dispatched);
    auto reader = videos_->open(message.video_fid);
    std::string stored(10, '\0');
    ASSERT_EQ(reader->read(stored.data(), stored.size()), 10u);
    EXPECT_EQ(stored, "some video");
    EXPECT_EQ(dispatcher.dispatch_once(), 0u) << "published once";
}

TEST_F(UploadTest, WithATicketKeyEachJobMessageCarriesItsTicket) {
    const std::string key(40, 't');
    UploadHandler handler(backends(), {.max_upload_bytes = 1000}, registry_);
    ASSERT_EQ(upload(handler, "some video", {{"callback_url", "https://hooks.example.com/x"}}).status, 202);
    Dispatcher dispatcher(jobs_, queue_, registry_, {.ticket_key = key});
    ASSERT_EQ(dispatcher.dispatch_once(), 1u);
    const messages::VideoJob& m = queue_.submitted.at(0);
    EXPECT_TRUE(
        messages::valid_job_ticket(key, m.ticket, m.job_id, "user1@example.com", "https://hooks.example.com/x"));
    EXPECT_FALSE(video_message(jobs_.rows.begin()->second).ticket) << "no key, no ticket";
}

TEST_F(UploadTest, AJobWaitsWhileTheBrokerIsDownAndGoesWhenItIsBack) {
    UploadHandler handler(backends(), {.max_upload_bytes = 1000, .max_queued_jobs = 0}, registry_);
    queue_.broker_down = true;
    Response r = upload(handler, "some video");
    ASSERT_EQ(r.status, 202) << "the upload is kept: nothing is lost while the broker is down";
    Dispatcher dispatcher(jobs_, queue_, registry_, {});
    EXPECT_THROW(dispatcher.dispatch_once(), amqp::Error);
    EXPECT_FALSE(jobs_.rows.begin()->second.dispatched);
    queue_.broker_down = false;
    EXPECT_EQ(dispatcher.dispatch_once(), 1u);
    EXPECT_EQ(queue_.submitted.size(), 1u);
}

TEST_F(UploadTest, OneUsersBacklogWaitsItsTurnsWhileAnotherUsersJobGoesNext) {
    Dispatcher dispatcher(jobs_, queue_, registry_, {.per_owner = 2});
    std::vector<std::string> backlog;
    for (int i = 0; i < 30; ++i) {
        Job& job = add_job(1, JobStatus::queued);
        job.created_ms = 1000 + i;
        backlog.push_back(job.id);
    }
    EXPECT_EQ(dispatcher.dispatch_once(), 2u) << "two of user 1's jobs go; 28 wait in the table";
    Job& late = add_job(2, JobStatus::queued);
    late.created_ms = 5000;
    EXPECT_EQ(dispatcher.dispatch_once(), 1u);
    ASSERT_EQ(queue_.submitted.size(), 3u);
    EXPECT_EQ(queue_.submitted[0].job_id, backlog[0]);
    EXPECT_EQ(queue_.submitted[1].job_id, backlog[1]);
    EXPECT_EQ(queue_.submitted[2].job_id, late.id) << "behind at most per_owner of the backlog";
    // One of user 1's jobs ends: their next, in order.
    jobs_.rows[backlog[0]].status = JobStatus::done;
    EXPECT_EQ(dispatcher.dispatch_once(), 1u);
    EXPECT_EQ(queue_.submitted[3].job_id, backlog[2]);
}

TEST_F(UploadTest, AJobWhoseMessageWasLostIsDispatchedAgainOnlyWhenTheQueueIsEmpty) {
    Dispatcher dispatcher(jobs_, queue_, registry_, {.per_owner = 1, .lost_after = std::chrono::seconds(0)});
    Job& job = add_job(1, JobStatus::queued);
    queue_.waiting = 1;  // its message waits on the queue
    EXPECT_EQ(dispatcher.dispatch_once(), 1u);
    EXPECT_EQ(dispatcher.dispatch_once(), 0u) << "messages are ready on the queue: nothing is lost";
    queue_.waiting = 0;  // the queue was purged, and the job never started
    EXPECT_EQ(dispatcher.dispatch_once(), 1u);
    EXPECT_EQ(queue_.submitted.size(), 2u);
    EXPECT_EQ(queue_.submitted[1].job_id, job.id);
    queue_.waiting.reset();  // the broker cannot be asked: nothing is presumed lost
    jobs_.rows[job.id].dispatched = true;
    EXPECT_EQ(dispatcher.dispatch_once(), 0u);
}

TEST_F(UploadTest, PerUserLimitsAreRefusedWith429NamingTheLimit) {
    UploadHandler handler(
        backends(), {.max_upload_bytes = 1000, .max_uploads_per_user = 2, .max_waiting_jobs_per_user = 3}, registry_);
    auto begin = [&](uint64_t user) {
        Request r = request("POST", "/upload", user);
        r.headers.set("Content-Type", "multipart/form-data; boundary=B");
        return handler.begin(r);
    };
    auto first = begin(1);
    auto second = begin(1);
    ASSERT_TRUE(std::holds_alternative<std::unique_ptr<http::BodyConsumer>>(first));
    ASSERT_TRUE(std::holds_alternative<std::unique_ptr<http::BodyConsumer>>(second));
    auto third = begin(1);
    ASSERT_TRUE(std::holds_alternative<Response>(third));
    const Response& refused = std::get<Response>(third);
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(refused.headers.get("Retry-After"), "2");
    auto body = nlohmann::json::parse(refused.body);
    EXPECT_EQ(body["error"], "too_many_uploads");
    EXPECT_EQ(body["limit"]["name"], "MAX_UPLOADS_PER_USER");
    EXPECT_EQ(body["limit"]["value"], 2);
    EXPECT_TRUE(std::holds_alternative<std::unique_ptr<http::BodyConsumer>>(begin(2))) << "others are not limited";
    std::get<std::unique_ptr<http::BodyConsumer>>(first).reset();  // an upload ends (here: abandoned)
    EXPECT_TRUE(std::holds_alternative<std::unique_ptr<http::BodyConsumer>>(begin(1)));

    for (int i = 0; i < 3; ++i) add_job(3, JobStatus::queued);
    auto waiting = begin(3);
    ASSERT_TRUE(std::holds_alternative<Response>(waiting));
    EXPECT_EQ(error_of(std::get<Response>(waiting)), "too_many_waiting_jobs");
}

TEST_F(UploadTest, AnUploadStillArrivingRenewsItsReservation) {
    UploadHandler handler(
        backends(),
        {.max_upload_bytes = 1000, .user_quota_bytes = 100, .reservation_renewal = std::chrono::milliseconds(0)},
        registry_);
    ASSERT_EQ(upload(handler, "some video").status, 202);
    ASSERT_EQ(jobs_.renewals.size(), 1u);
    EXPECT_GT(jobs_.renewals.begin()->second, 1) << "renewed as the bytes came (each time: the interval is 0 here)";
    EXPECT_TRUE(jobs_.reservations.empty());
}

TEST_F(UploadTest, ParallelUploadsCannotPassTheQuotaTogether) {
    UploadHandler handler(backends(), {.max_upload_bytes = 1000, .user_quota_bytes = 100, .max_uploads_per_user = 10},
                          registry_);
    // Ten uploads of 40 bytes begin before any ends: only what fits in 100 bytes may be reserved.
    std::vector<std::unique_ptr<http::BodyConsumer>> open;
    int refused = 0;
    for (int i = 0; i < 10; ++i) {
        Request r = request("POST", "/upload");
        r.headers.set("Content-Type", "multipart/form-data; boundary=B");
        r.headers.set("Content-Length", "40");
        auto begun = handler.begin(r);
        if (std::holds_alternative<Response>(begun)) {
            EXPECT_EQ(error_of(std::get<Response>(begun)), "quota_exceeded");
            ++refused;
        } else {
            open.push_back(std::move(std::get<std::unique_ptr<http::BodyConsumer>>(begun)));
        }
    }
    EXPECT_EQ(open.size(), 2u);
    EXPECT_EQ(refused, 8);
    EXPECT_TRUE(jobs_.renewals.empty()) << "nothing arrived yet";
    EXPECT_EQ(jobs_.reserved_bytes(1), 80u);
    open.clear();
    EXPECT_EQ(jobs_.reserved_bytes(1), 0u) << "an upload that ends gives its reservation back";
}

TEST_F(UploadTest, LimitsAreCheckedBeforeAndWhileTheFileArrives) {
    UploadHandler handler(backends(), {.max_upload_bytes = 20, .max_queued_jobs = 3, .user_quota_bytes = 30},
                          registry_);
    EXPECT_EQ(error_of(upload(handler, std::string(21, 'x'))), "file_too_large");
    EXPECT_EQ(blobs("videos"), 0u);  // the partial file is not kept

    add_job(1, JobStatus::queued);  // 11 of the 30 bytes of quota
    EXPECT_EQ(error_of(upload(handler, std::string(20, 'x'))), "quota_exceeded");
    EXPECT_EQ(upload(handler, std::string(19, 'x')).status, 202);
    EXPECT_EQ(error_of(upload(handler, "x")), "quota_exceeded");  // refused before reading: nothing left

    queue_.waiting = 4;
    EXPECT_EQ(error_of(upload(handler, "x")), "too_many_queued_jobs");
    queue_.waiting.reset();
    EXPECT_EQ(error_of(upload(handler, "x")), "queue_unavailable");
}

TEST_F(UploadTest, BadFormsAreRefusedWithTheirReason) {
    UploadHandler handler(backends(), {.max_upload_bytes = 1000}, registry_);
    EXPECT_EQ(error_of(upload(handler, "")), "empty_file");
    EXPECT_EQ(error_of(upload(handler, "x", {{"bitrate", "7"}})), "invalid_option");
    EXPECT_EQ(error_of(upload(handler, "x", {{"callback_url", "ftp://example.com/"}})), "invalid_callback_url");
    Request plain = request("POST", "/upload");
    plain.headers.set("Content-Type", "text/plain");
    auto refused = handler.begin(plain);
    ASSERT_TRUE(std::holds_alternative<Response>(refused));
    EXPECT_EQ(std::get<Response>(refused).status, 415);
    EXPECT_TRUE(jobs_.rows.empty());
    EXPECT_EQ(blobs("videos"), 0u);
}

TEST_F(HandlersTest, StatusEventsMoveJobsForwardAndBadOnesAreDeadLettered) {
    StatusEventHandler events(jobs_, *mp3s_, hub_, dispatch_, clock_, registry_);
    using Outcome = amqp::Consumer::Outcome;
    Job job = add_job(1, JobStatus::queued);
    EXPECT_EQ(events.handle("{not json", true), Outcome::dead_letter);

    messages::StatusEvent done;
    done.job_id = job.id;
    done.status = messages::JobState::done;
    done.mp3_fid = stored(*mp3s_, "mp3");
    done.mp3_size = 3;
    done.source_deleted = true;
    EXPECT_EQ(events.handle(done.to_body(), true), Outcome::ack);
    EXPECT_EQ(jobs_.rows[job.id].status, JobStatus::done);
    EXPECT_EQ(jobs_.rows[job.id].video_fid, "");  // forgotten: the converter deleted it
    EXPECT_EQ(dispatch_.woken, 1) << "a job ended: its owner's next job may go";
    EXPECT_EQ(hub_.latest(job.id)->status, JobStatus::done);

    // A conversion that finished after its job was deleted: its MP3, a split's parts and the converter's record of
    // it belong to nobody and go.
    done.job_id = storage::new_id();
    done.mp3_fid = stored(*mp3s_, "orphan");
    for (int i = 0; i <= 2; ++i) {
        auto writer = mp3s_->create({.owner = "1", .filename = "p", .id = messages::part_id(done.job_id, i)});
        writer->write("part");
        writer->commit();
        if (i > 0)
            done.parts.push_back({.index = i, .title = "P", .size = 4, .fid = messages::part_id(done.job_id, i)});
    }
    ASSERT_EQ(blobs("mp3s"), 5u);
    EXPECT_EQ(events.handle(done.to_body(), true), Outcome::ack);
    EXPECT_EQ(blobs("mp3s"), 1u) << "only the done job's MP3 is left";
    done.parts.clear();

    jobs_.is_ready = false;  // thrown: requeued until the records can be used
    EXPECT_THROW(events.handle(done.to_body(), true), std::runtime_error);
    EXPECT_EQ(events.handle(done.to_body(), false), Outcome::ack);  // event streams need no records
}

TEST(AuthProxyPolicy, RefusalsAreHeldUpToASecondAndAnswersAreNot) {
    auto auth = http::Upstream::from_url("auth", "http://127.0.0.1:1", std::chrono::seconds(1), 4);
    TokenBuckets buckets(1, std::chrono::minutes(1));
    AddressLimit limit{&buckets, "login_rate_limited", "LOGIN_RATE_PER_MINUTE"};
    http::Forward f = AuthProxy(auth).to("/login", &limit);
    http::Request q;
    q.client_address = "203.0.113.9";
    EXPECT_FALSE(f.before(q)) << "the first is passed on";
    auto refused = f.before(q);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 429);
    EXPECT_EQ(refused->headers.get("Retry-After"), "60");
    EXPECT_EQ(refused->delay, std::chrono::seconds(1)) << "held a second, not the minute it must wait";

    http::Response throttled = http::Response::error(429, "too_many_attempts", "auth's own throttle");
    throttled.headers.set("Retry-After", "30");
    EXPECT_EQ(f.after(q, throttled).delay, std::chrono::seconds(1));
    EXPECT_EQ(f.after(q, http::Response::text(200, "token")).delay, std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace mp3c::gateway
