#include "job_events.hpp"

#include <gtest/gtest.h>

namespace mp3c::gateway {
namespace {

StatusEvent event(JobStatus status, int progress = 0) {
    StatusEvent e;
    e.job_id = "0123456789abcdef01234567";
    e.status = status;
    e.progress = progress;
    if (status == JobStatus::done) e.mp3_fid = "aaaaaaaaaaaaaaaaaaaaaaaa";
    return e;
}

Job queued_job() {
    Job j;
    j.id = "0123456789abcdef01234567";
    j.status = JobStatus::queued;
    return j;
}

TEST(JobEvents, StatusOnlyMovesForward) {
    Job j = queued_job();
    EXPECT_TRUE(advances(j, event(JobStatus::processing, 0)));
    j.status = JobStatus::processing;
    j.progress = 40;
    EXPECT_FALSE(advances(j, event(JobStatus::processing, 30)));
    EXPECT_TRUE(advances(j, event(JobStatus::processing, 41)));
    EXPECT_TRUE(advances(j, event(JobStatus::done)));
    j.status = JobStatus::done;
    EXPECT_FALSE(advances(j, event(JobStatus::processing, 99)));
    EXPECT_FALSE(advances(j, event(JobStatus::failed)));
}

TEST(JobEvents, HubKeepsTheMostAdvancedState) {
    JobEventHub hub;
    hub.update(event(JobStatus::processing, 50));
    hub.update(event(JobStatus::processing, 20));  // late, out of order
    EXPECT_EQ(hub.latest(event(JobStatus::queued).job_id)->progress, 50);
    hub.update(event(JobStatus::done));
    hub.update(event(JobStatus::processing, 90));
    EXPECT_EQ(hub.latest(event(JobStatus::queued).job_id)->status, JobStatus::done);
    EXPECT_FALSE(hub.latest("ffffffffffffffffffffffff"));
}

TEST(JobEvents, HubIsBounded) {
    JobEventHub hub(10);
    for (int i = 0; i < 100; ++i) {
        auto e = event(JobStatus::processing, 1);
        e.job_id = std::to_string(i);
        hub.update(e);
    }
    EXPECT_FALSE(hub.latest("0"));
    EXPECT_TRUE(hub.latest("99"));
}

TEST(JobEvents, StreamSendsCurrentStateThenChangesThenEnds) {
    using namespace std::chrono_literals;
    JobEventHub hub;
    Slots slots(1);
    JobEventStream stream(hub, queued_job(), slots.acquire("7"), 1h);
    int woken = 0;
    stream.on_wake([&] { ++woken; });
    auto first = stream.poll();
    ASSERT_TRUE(first);
    EXPECT_NE(first->find("id: queued.0\nevent: status\ndata: {"), std::string::npos) << *first;
    EXPECT_NE(first->find("\"status\":\"queued\""), std::string::npos);
    EXPECT_EQ(stream.poll(), "");  // nothing new
    hub.update(event(JobStatus::processing, 10));
    EXPECT_EQ(woken, 1) << "the hub pushes: the stream's server is woken";
    auto progress = stream.poll();
    ASSERT_TRUE(progress);
    EXPECT_NE(progress->find("id: processing.10\n"), std::string::npos);
    EXPECT_NE(progress->find("\"progress\":10"), std::string::npos);
    hub.update(event(JobStatus::processing, 5));  // behind: no change, no wake-up
    EXPECT_EQ(woken, 1);
    hub.update(event(JobStatus::done));
    auto done = stream.poll();
    ASSERT_TRUE(done);
    EXPECT_NE(done->find("\"status\":\"done\""), std::string::npos);
    EXPECT_NE(done->find("\"download_url\":\"/jobs/0123456789abcdef01234567/mp3\""), std::string::npos);
    EXPECT_FALSE(stream.poll()) << "the stream ends after a final state";
    EXPECT_FALSE(slots.acquire("7")) << "the slot is held while the stream object lives";
}

TEST(JobEvents, ADoneEventBringsASplitJobsPartsToTheStream) {
    using namespace std::chrono_literals;
    JobEventHub hub;
    Slots slots(1);
    JobEventStream stream(hub, queued_job(), slots.acquire("7"), 1h);
    ASSERT_TRUE(stream.poll());
    auto done = event(JobStatus::done);
    messages::Part part{.index = 1, .title = "Intro", .duration_seconds = 2, .size = 9, .fid = std::string(24, 'b')};
    done.parts = messages::parts_to_json({part}).dump();
    hub.update(done);
    auto sent = stream.poll();
    ASSERT_TRUE(sent);
    EXPECT_NE(sent->find("\"download_url\":\"/jobs/0123456789abcdef01234567/parts/1\""), std::string::npos) << *sent;
    EXPECT_NE(sent->find("\"title\":\"Intro\""), std::string::npos);
}

TEST(JobEvents, StreamEndsAfterItsLifetimeAndResumesFromLastEventId) {
    using namespace std::chrono_literals;
    JobEventHub hub;
    Slots slots(2);
    {
        JobEventStream stream(hub, queued_job(), slots.acquire("7"), 0ms);
        ASSERT_TRUE(stream.poll());  // the state now, always
        EXPECT_FALSE(stream.poll()) << "lifetime over: the client reconnects";
    }
    EXPECT_EQ(slots.held("7"), 0u) << "an ended stream gives its slot back";
    // Reconnecting with the state already seen: nothing is repeated until the job moves.
    JobEventStream again(hub, queued_job(), slots.acquire("7"), 1h, "queued.0");
    auto first = again.poll();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->find("event: status"), std::string::npos) << *first;
    EXPECT_EQ(again.poll(), "");
    hub.update(event(JobStatus::processing, 30));
    auto next = again.poll();
    ASSERT_TRUE(next);
    EXPECT_NE(next->find("id: processing.30"), std::string::npos);
}

TEST(JobEvents, ASubscriptionEndsWithItsStream) {
    JobEventHub hub;
    int woken = 0;
    {
        auto subscription = hub.subscribe(queued_job().id, [&] { ++woken; });
        hub.update(event(JobStatus::processing, 1));
    }
    hub.update(event(JobStatus::processing, 2));
    EXPECT_EQ(woken, 1);
}

TEST(StatusEventParsing, RejectsInvalidEvents) {
    EXPECT_FALSE(StatusEvent::parse("not json"));
    EXPECT_FALSE(StatusEvent::parse("[]"));
    EXPECT_FALSE(StatusEvent::parse(R"({"status":"done"})"));
    EXPECT_FALSE(StatusEvent::parse(R"({"job_id":"../x","status":"failed"})")) << "ids are 24 hex characters";
    EXPECT_FALSE(StatusEvent::parse(
        R"({"job_id":"0123456789abcdef01234567","status":"done","mp3_fid":"0123456789abcdef0123456789"})"));
    auto long_error = StatusEvent::parse(R"({"job_id":"0123456789abcdef01234567","status":"failed","error":")" +
                                         std::string(999, 'x') + "Ã©" + R"("})");
    ASSERT_TRUE(long_error);
    EXPECT_EQ(long_error->error->size(), 999u) << "cut before a character, not inside it";
    EXPECT_FALSE(StatusEvent::parse(R"({"job_id":"0123456789abcdef01234567","status":"exploded"})"));
    EXPECT_FALSE(StatusEvent::parse(R"({"job_id":"0123456789abcdef01234567","status":"done"})"))
        << "done without its mp3";
    // A failure's reason is a word for programs; anything else is left out, the event still counts.
    auto reasoned = StatusEvent::parse(
        R"({"job_id":"0123456789abcdef01234567","status":"failed","error":"x","reason":"unsupported_format"})");
    ASSERT_TRUE(reasoned);
    EXPECT_EQ(reasoned->reason, "unsupported_format");
    for (const char* bad : {R"("Unsupported")", R"("a b")", R"("")", R"(42)", R"("<script>")"}) {
        auto odd = StatusEvent::parse(R"({"job_id":"0123456789abcdef01234567","status":"failed","reason":)" +
                                      std::string(bad) + "}");
        ASSERT_TRUE(odd) << bad;
        EXPECT_FALSE(odd->reason) << bad;
    }
    auto long_reason = StatusEvent::parse(R"({"job_id":"0123456789abcdef01234567","status":"failed","reason":")" +
                                          std::string(65, 'x') + R"("})");
    ASSERT_TRUE(long_reason);
    EXPECT_FALSE(long_reason->reason);
    auto ok = StatusEvent::parse(R"({"job_id":"0123456789abcdef01234567","status":"processing","progress":150.5})");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->progress, 100);
}

}  // namespace
}  // namespace mp3c::gateway
