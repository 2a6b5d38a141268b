// The converter binary as operators run it (separate processes) behind a real gateway, against the harness's
// MariaDB and RabbitMQ: a kill -9 mid-job, SIGTERM, a poison message, two converters on one backlog.
#include "converter_system_fixture.hpp"

namespace mp3c::gateway::test {
namespace {

TEST_F(ConverterSystemTest, KilledMidJobTheJobCompletesExactlyOnceAfterARestart) {
    auto tok = token(1, "a@example.com");
    std::string id = submit(tok, media(600));
    size_t first = start_converter();
    ASSERT_TRUE(eventually([&] { return job(tok, id).value("progress", 0) >= 4; }, 60s)) << job(tok, id).dump();
    converters_[first]->signal(SIGKILL);
    EXPECT_EQ(converters_[first]->wait(10s), 128 + SIGKILL);
    EXPECT_EQ(job(tok, id)["status"], "processing") << "killed before it could finish";
    EXPECT_TRUE(scratch_empty()) << "a killed converter leaves no scratch file";

    size_t second = start_converter();
    ASSERT_TRUE(eventually([&] { return job(tok, id)["status"] == "done"; }, 120s)) << job(tok, id).dump();
    EXPECT_EQ(count(first, "\"job done\""), 0u);
    EXPECT_EQ(count(second, "\"job done\""), 1u) << converters_[second]->output();

    auto mp3_messages = drain(topology_.mp3_queue);
    ASSERT_EQ(mp3_messages.size(), 1u) << "announced once";
    EXPECT_EQ(mp3_messages[0]["job_id"], id);
    EXPECT_EQ(mp3_messages[0]["mp3_fid"], id);
    EXPECT_TRUE(messages::valid_job_ticket(kJobTicketKey, mp3_messages[0].value("ticket", ""), id, "a@example.com",
                                           std::nullopt))
        << "the gateway's ticket, passed on unchanged: " << mp3_messages[0].dump();
    EXPECT_NEAR(mp3_messages[0]["duration_seconds"].get<double>(), 600.0, 0.1);

    auto mp3 = get("/jobs/" + id + "/mp3", tok);
    EXPECT_EQ(mp3.status, 200);
    EXPECT_EQ(mp3.header("content-type"), "audio/mpeg");
    EXPECT_GT(mp3.body.size(), 600u * 192000 / 8 * 99 / 100) << "the whole ten minutes at 192 kb/s";
    EXPECT_TRUE(scratch_empty());
    EXPECT_EQ(stored_files("videos"), 0u) << "the upload is deleted once converted";
    EXPECT_EQ(stored_files("mp3s"), 1u);
}

TEST_F(ConverterSystemTest, SigtermLetsTheCurrentJobFinishThenExitsZero) {
    auto tok = token(1, "a@example.com");
    std::string id = submit(tok, media(600));
    size_t c = start_converter({{"SHUTDOWN_GRACE", "120s"}});
    ASSERT_TRUE(eventually([&] { return job(tok, id).value("progress", 0) >= 4; }, 60s)) << job(tok, id).dump();
    converters_[c]->signal(SIGTERM);
    EXPECT_EQ(converters_[c]->wait(120s), 0) << converters_[c]->output();
    EXPECT_TRUE(eventually([&] { return job(tok, id)["status"] == "done"; })) << job(tok, id).dump();
    EXPECT_EQ(count(c, "\"job done\""), 1u);
}

TEST_F(ConverterSystemTest, SigtermPastTheGraceAbandonsTheJobForAnotherConverter) {
    auto tok = token(1, "a@example.com");
    std::string first_job = submit(tok, media(600));
    std::string second_job = submit(tok, media(2));
    size_t c = start_converter({{"SHUTDOWN_GRACE", "0s"}});
    ASSERT_TRUE(eventually([&] { return job(tok, first_job).value("progress", 0) >= 4; }, 60s));
    converters_[c]->signal(SIGTERM);
    EXPECT_EQ(converters_[c]->wait(30s), 0) << converters_[c]->output();
    EXPECT_EQ(count(c, "\"job done\""), 0u);
    EXPECT_EQ(job(tok, second_job)["status"], "queued") << "no new job taken after SIGTERM";
    EXPECT_TRUE(scratch_empty());

    size_t next = start_converter();
    EXPECT_TRUE(eventually([&] { return job(tok, first_job)["status"] == "done"; }, 120s));
    EXPECT_TRUE(eventually([&] { return job(tok, second_job)["status"] == "done"; }, 60s));
    EXPECT_EQ(count(next, "\"job done\""), 2u);
}

TEST_F(ConverterSystemTest, PoisonMessageIsDeadLetteredAndItsJobFailed) {
    auto tok = token(1, "a@example.com");
    std::string id = submit(tok, media(2));
    // Damage the job's message on its way: take the gateway's and put back a broken one, as a buggy producer would.
    auto queued = drain(topology_.video_queue);
    ASSERT_EQ(queued.size(), 1u);
    amqp::Options o;
    o.url = amqp_url();
    amqp::Publisher(o, topology_).publish("", topology_.video_queue, {.body = "{\"job_id\": 42", .message_id = id});

    size_t c = start_converter();
    ASSERT_TRUE(eventually([&] { return job(tok, id)["status"] == "failed"; })) << job(tok, id).dump();
    EXPECT_NE(job(tok, id)["error"].get<std::string>().find("damaged"), std::string::npos);
    auto dead = drain(amqp::names::dead_queue(topology_.video_queue));
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0], "{\"job_id\": 42") << "kept as it came, for an operator to look at";
    EXPECT_TRUE(eventually([&] { return count(c, "invalid video message dead-lettered") == 1; }));
    EXPECT_EQ(converters_[c]->wait(0ms), -1) << "still running";
}

TEST_F(ConverterSystemTest, TwoConvertersShareABacklog) {
    auto tok = token(1, "a@example.com");
    std::string bytes = media(240);
    constexpr size_t kJobs = 8;
    std::vector<std::string> ids;
    for (size_t i = 0; i < kJobs; ++i) ids.push_back(submit(tok, bytes));

    size_t a = start_converter();
    // Prefetch 1: the first converter holds one job, the rest of the backlog stays in the queue for others (the
    // original had no prefetch: one replica took every message at once).
    ASSERT_TRUE(eventually([&] { return count(a, "\"converting\"") >= 1; }));
    amqp::Options o;
    o.url = amqp_url();
    {
        amqp::Connection probe(o);
        uint32_t ready = probe.queue_depth(topology_.video_queue);
        EXPECT_GE(ready, kJobs - 2) << "one job in hand (perhaps a second just taken), the rest waiting";
    }
    size_t b = start_converter();
    ASSERT_TRUE(eventually(
        [&] {
            for (const auto& id : ids)
                if (job(tok, id)["status"] != "done") return false;
            return true;
        },
        180s));
    size_t by_a = count(a, "\"job done\""), by_b = count(b, "\"job done\"");
    RecordProperty("converted_by_first", static_cast<int>(by_a));
    RecordProperty("converted_by_second", static_cast<int>(by_b));
    EXPECT_EQ(by_a + by_b, kJobs) << "each job converted once";
    EXPECT_GE(by_b, kJobs / 2 - 2) << "the second converter took its share: a " << by_a << ", b " << by_b;
    EXPECT_GE(by_a, kJobs / 2 - 1);
    EXPECT_EQ(drain(topology_.mp3_queue).size(), kJobs);
}

}  // namespace
}  // namespace mp3c::gateway::test
