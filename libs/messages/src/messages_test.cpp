#include "mp3c/messages.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mp3c::messages {
namespace {

using json = nlohmann::json;

const std::string kJob = "665f1c2a9b1e4d0a1c000002";
const std::string kVideo = "665f1c2a9b1e4d0a1c000001";
const std::string kMp3 = "665f1c5e9b1e4d0a1c000007";

template <class T>
Problem problem_of(const Parsed<T>& parsed) {
    EXPECT_FALSE(parsed.ok());
    return parsed.ok() ? Problem{} : parsed.error();
}

VideoJob sample_video() {
    VideoJob m;
    m.job_id = kJob;
    m.video_fid = kVideo;
    m.username = "alice@example.com";
    m.user_id = "42";
    m.filename = "holiday.mp4";
    m.size = 73400320;
    m.options.bitrate_kbps = 128;
    m.options.channels = 1;
    m.trace_id = "9f2c4e1ab07d3356";
    m.submitted_at = 1717508138123;
    m.callback_url = "https://hooks.example.com/x";
    m.max_output_bytes = 1500000;
    return m;
}

TEST(VideoJob, RoundTripsEveryField) {
    VideoJob m = sample_video();
    m.attempt = 3;
    auto back = VideoJob::parse(m.to_body());
    ASSERT_TRUE(back.ok()) << back.error().describe();
    const VideoJob& b = back.value();
    EXPECT_EQ(b.job_id, m.job_id);
    EXPECT_EQ(b.video_fid, m.video_fid);
    EXPECT_EQ(b.username, m.username);
    EXPECT_EQ(b.user_id, m.user_id);
    EXPECT_EQ(b.filename, m.filename);
    EXPECT_EQ(b.size, m.size);
    EXPECT_EQ(b.options.bitrate_kbps, 128);
    EXPECT_EQ(b.options.channels, 1);
    EXPECT_FALSE(b.options.vbr_quality);
    EXPECT_EQ(b.trace_id, m.trace_id);
    EXPECT_EQ(b.submitted_at, m.submitted_at);
    EXPECT_EQ(b.callback_url, m.callback_url);
    EXPECT_EQ(b.max_output_bytes, m.max_output_bytes);
    EXPECT_EQ(b.attempt, 3);
}

TEST(VideoJob, WritesTheOriginalsFieldsAndTheVersion) {
    auto j = json::parse(sample_video().to_body());
    EXPECT_EQ(j["video_fid"], kVideo);
    EXPECT_TRUE(j.contains("mp3_fid") && j["mp3_fid"].is_null()) << "the original's field, null";
    EXPECT_EQ(j["username"], "alice@example.com");
    EXPECT_EQ(j["v"], kVersion);
    EXPECT_FALSE(j.contains("attempt")) << "the first delivery has no attempt: absent means 1";
    VideoJob plain = sample_video();
    plain.callback_url.reset();
    plain.max_output_bytes.reset();
    auto p = json::parse(plain.to_body());
    EXPECT_FALSE(p.contains("callback_url"));
    EXPECT_FALSE(p.contains("max_output_bytes"));
}

TEST(VideoJob, ReadsWhatEarlierProducersWrote) {
    // This system before "v", "options" and the other additions: the original's three fields plus a job id.
    auto old = VideoJob::parse(R"({"video_fid":"665f1c2a9b1e4d0a1c000001","mp3_fid":null,"username":"bob@example.com",)"
                               R"("job_id":"665f1c2a9b1e4d0a1c000002","unknown_field":{"ignored":true}})");
    ASSERT_TRUE(old.ok()) << old.error().describe();
    EXPECT_EQ(old.value().username, "bob@example.com");
    EXPECT_EQ(old.value().attempt, 1);
    EXPECT_FALSE(old.value().options.bitrate_kbps) << "no options: the converter's defaults";
    EXPECT_FALSE(old.value().max_output_bytes);
}

TEST(VideoJob, NamesTheFieldAtFault) {
    auto body = [](auto change) {
        auto j = json::parse(sample_video().to_body());
        change(j);
        return j.dump();
    };
    EXPECT_EQ(problem_of(VideoJob::parse("not json")).field, "");
    EXPECT_EQ(problem_of(VideoJob::parse("[1,2]")).field, "");
    EXPECT_EQ(problem_of(VideoJob::parse(body([](json& j) { j.erase("job_id"); }))).field, "job_id");
    EXPECT_EQ(problem_of(VideoJob::parse(body([](json& j) { j["job_id"] = 42; }))).what, "must be a string");
    EXPECT_EQ(problem_of(VideoJob::parse(body([](json& j) { j["video_fid"] = "../../etc/passwd"; }))).field,
              "video_fid");
    EXPECT_EQ(problem_of(VideoJob::parse(body([](json& j) { j.erase("username"); }))).describe(), "username: missing");
    EXPECT_EQ(problem_of(VideoJob::parse(body([](json& j) { j["options"] = {{"bitrate", 100}}; }))).field, "options");
    auto newer = problem_of(VideoJob::parse(body([](json& j) { j["v"] = kVersion + 1; })));
    EXPECT_EQ(newer.field, "v");
    EXPECT_NE(newer.what.find("newer"), std::string::npos);
    EXPECT_EQ(problem_of(VideoJob::parse(body([](json& j) { j["v"] = "1"; }))).field, "v");
    // Optional fields of the wrong type count as absent: additions never make a message invalid.
    auto lenient = VideoJob::parse(body([](json& j) {
        j["max_output_bytes"] = -5;
        j["callback_url"] = 7;
        j["attempt"] = "two";
    }));
    ASSERT_TRUE(lenient.ok());
    EXPECT_FALSE(lenient.value().max_output_bytes);
    EXPECT_FALSE(lenient.value().callback_url);
    EXPECT_EQ(lenient.value().attempt, 1);
}

TEST(Messages, WhatADamagedBodyStillSays) {
    auto named = job_named_in(R"({"job_id":"665f1c2a9b1e4d0a1c000002","video_fid":7,"username":"a@example.com"})");
    EXPECT_EQ(named.job_id, kJob);
    EXPECT_EQ(named.username, "a@example.com");
    EXPECT_FALSE(named.trace_id);
    EXPECT_FALSE(job_named_in(R"({"job_id":"nope"})").job_id);
    EXPECT_FALSE(job_named_in(R"({"job_id": 42)").job_id);
}

TEST(Messages, NextAttemptRaisesOnlyTheCount) {
    VideoJob m = sample_video();
    auto once = VideoJob::parse(next_attempt(m));
    ASSERT_TRUE(once.ok());
    EXPECT_EQ(once.value().attempt, 2);
    auto twice = VideoJob::parse(next_attempt(once.value()));
    EXPECT_EQ(twice.value().attempt, 3);
    EXPECT_EQ(twice.value().job_id, m.job_id);
}

TEST(Mp3Ready, RoundTripsAndKeepsTheOriginalsFields) {
    Mp3Ready m;
    m.job_id = kJob;
    m.video_fid = kVideo;
    m.mp3_fid = kMp3;
    m.username = "alice@example.com";
    m.user_id = "42";
    m.filename = "holiday.mp4";
    m.mp3_size = 5243904;
    m.duration_seconds = 327.6;
    m.trace_id = "t";
    m.callback_url = "https://hooks.example.com/x";
    auto j = json::parse(m.to_body());
    EXPECT_EQ(j["mp3_fid"], kMp3);
    EXPECT_EQ(j["video_fid"], kVideo);
    EXPECT_EQ(j["username"], "alice@example.com");
    auto back = Mp3Ready::parse(m.to_body());
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back.value().job_id, kJob);
    EXPECT_EQ(back.value().mp3_fid, kMp3);
    EXPECT_EQ(back.value().mp3_size, 5243904u);
    EXPECT_DOUBLE_EQ(back.value().duration_seconds, 327.6);
    EXPECT_EQ(back.value().callback_url, m.callback_url);

    // The original's message: mp3_fid and username only. Its MP3 id stands in for the job id.
    auto original = Mp3Ready::parse(R"({"video_fid":"665f1c2a9b1e4d0a1c000001","mp3_fid":"665f1c5e9b1e4d0a1c000007",)"
                                    R"("username":"carol@example.com"})");
    ASSERT_TRUE(original.ok()) << original.error().describe();
    EXPECT_EQ(original.value().job_id, kMp3);
    EXPECT_EQ(problem_of(Mp3Ready::parse(R"({"mp3_fid":"665f1c5e9b1e4d0a1c000007"})")).field, "username");
    EXPECT_EQ(problem_of(Mp3Ready::parse(R"({"username":"a@b.c"})")).field, "mp3_fid");
}

TEST(StatusEvent, RoundTripsEachState) {
    StatusEvent done;
    done.job_id = kJob;
    done.status = JobState::done;
    done.progress = 100;
    done.mp3_fid = kMp3;
    done.mp3_size = 10;
    done.duration_seconds = 2.5;
    done.source_deleted = true;
    done.at = 1717508201000;
    done.username = "alice@example.com";
    done.callback_url = "https://hooks.example.com/x";
    EXPECT_EQ(done.routing_key(), "job.done");
    auto back = StatusEvent::parse(done.to_body());
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back.value().status, JobState::done);
    EXPECT_EQ(back.value().mp3_fid, kMp3);
    EXPECT_EQ(back.value().duration_seconds, 2.5);
    EXPECT_TRUE(back.value().source_deleted);
    EXPECT_EQ(back.value().at, done.at);
    EXPECT_EQ(back.value().callback_url, done.callback_url);

    StatusEvent failed;
    failed.job_id = kJob;
    failed.status = JobState::failed;
    failed.error = "the file has no audio track";
    failed.reason = "no_audio";
    EXPECT_EQ(failed.routing_key(), "job.failed");
    auto f = StatusEvent::parse(failed.to_body());
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f.value().error, failed.error);
    EXPECT_EQ(f.value().reason, "no_audio");
    EXPECT_FALSE(json::parse(failed.to_body()).contains("progress"));
}

TEST(StatusEvent, RefusesWhatTheContractRefusesAndIgnoresTheRest) {
    EXPECT_EQ(problem_of(StatusEvent::parse(R"({"status":"done"})")).field, "job_id");
    EXPECT_EQ(problem_of(StatusEvent::parse(R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"lost"})")).field,
              "status");
    // queued: a failed job retried by its owner, announced so that every gateway forgets the failure.
    EXPECT_EQ(StatusEvent::parse(R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"queued"})").value().status,
              JobState::queued);
    EXPECT_EQ(problem_of(StatusEvent::parse(R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"done"})")).field,
              "mp3_fid");
    EXPECT_EQ(
        problem_of(StatusEvent::parse(R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"done","mp3_fid":"x"})")).field,
        "mp3_fid");
    auto odd = StatusEvent::parse(R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"processing","progress":150.5,)"
                                  R"("reason":"Not A Word","mp3_size":-1,"at":"yesterday"})");
    ASSERT_TRUE(odd.ok());
    EXPECT_EQ(odd.value().progress, 100);
    EXPECT_FALSE(odd.value().reason);
    EXPECT_FALSE(odd.value().mp3_size);
    EXPECT_EQ(odd.value().at, 0);
}

TEST(StatusEvent, CarriesADoneJobsWaveformAndDropsABadOne) {
    StatusEvent done;
    done.job_id = kJob;
    done.status = JobState::done;
    done.mp3_fid = kMp3;
    done.waveform = Waveform{.seconds_per_point = 0.05, .peaks = {0.0f, 0.12345f, 1.0f}};
    auto body = json::parse(done.to_body());
    EXPECT_EQ(body["waveform"]["peaks"], json::parse("[0.0, 0.123, 1.0]")) << "three decimals";
    auto back = StatusEvent::parse(done.to_body());
    ASSERT_TRUE(back.ok()) << back.error().describe();
    ASSERT_TRUE(back.value().waveform);
    EXPECT_DOUBLE_EQ(back.value().waveform->seconds_per_point, 0.05);
    EXPECT_EQ(back.value().waveform->peaks.size(), 3u);
    EXPECT_FLOAT_EQ(back.value().waveform->peaks[1], 0.123f);

    // A waveform that is not one counts as absent; the event itself stands.
    std::string too_many = "[0";
    for (size_t i = 0; i < Waveform::kMaxPoints; ++i) too_many += ",0";
    too_many += "]";
    for (const std::string& bad : {std::string(R"("loud")"), std::string(R"({"seconds_per_point":0.1,"peaks":[]})"),
                                   std::string(R"({"seconds_per_point":0,"peaks":[0.5]})"),
                                   std::string(R"({"seconds_per_point":0.1,"peaks":[1.5]})"),
                                   std::string(R"({"seconds_per_point":0.1,"peaks":[-0.1]})"),
                                   std::string(R"({"seconds_per_point":0.1,"peaks":["0.5"]})"),
                                   R"({"seconds_per_point":0.1,"peaks":)" + too_many + "}"}) {
        auto parsed = StatusEvent::parse(R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"done",)"
                                         R"("mp3_fid":"665f1c5e9b1e4d0a1c000007","waveform":)" +
                                         bad + "}");
        ASSERT_TRUE(parsed.ok()) << bad;
        EXPECT_FALSE(parsed.value().waveform) << bad;
    }
    std::string most = std::string(R"({"seconds_per_point":0.1,"peaks":[)");
    for (size_t i = 0; i < Waveform::kMaxPoints; ++i) most += i == 0 ? "0.5" : ",0.5";
    EXPECT_TRUE(Waveform::from_json(json::parse(most + "]}"))) << "kMaxPoints is allowed";
}

TEST(StatusEvent, CarriesWhatLoudnessNormalisationMeasured) {
    StatusEvent done;
    done.job_id = kJob;
    done.status = JobState::done;
    done.mp3_fid = kMp3;
    done.loudness = Loudness{.target_lufs = -16,
                             .true_peak_ceiling_dbtp = -1,
                             .input_lufs = -27.34,
                             .input_true_peak_dbtp = -3.01,
                             .output_lufs = -16.04,
                             .output_true_peak_dbtp = -1.2,
                             .gain_db = 11.34,
                             .limited = true};
    auto body = json::parse(done.to_body());
    EXPECT_EQ(body["loudness"]["input_lufs"], -27.3);
    EXPECT_EQ(body["loudness"]["gain_db"], 11.3);
    auto back = StatusEvent::parse(done.to_body());
    ASSERT_TRUE(back.ok() && back.value().loudness);
    EXPECT_EQ(back.value().loudness->output_lufs, -16.0);
    EXPECT_TRUE(back.value().loudness->limited);

    Loudness silent{.target_lufs = -16, .true_peak_ceiling_dbtp = -1};
    auto j = silent.to_json();
    EXPECT_TRUE(j["input_lufs"].is_null()) << "nothing to measure";
    EXPECT_FALSE(Loudness::from_json(j)->input_lufs);
    j["output_lufs"] = "loud";
    EXPECT_FALSE(Loudness::from_json(j));
    j = silent.to_json();
    j.erase("target_lufs");
    EXPECT_FALSE(Loudness::from_json(j));
}

TEST(StatusEvent, CarriesASplitJobsPartsInOrder) {
    StatusEvent done;
    done.job_id = kJob;
    done.status = JobState::done;
    done.mp3_fid = kMp3;
    for (int i = 1; i <= 3; ++i) {
        done.parts.push_back(Part{.index = i,
                                  .title = i == 2 ? "Zweites Kapitel — Über" : "Part " + std::to_string(i),
                                  .start_seconds = (i - 1) * 60.0004,
                                  .duration_seconds = 60,
                                  .size = 960000u + static_cast<uint64_t>(i),
                                  .fid = part_id(kJob, i)});
    }
    auto back = StatusEvent::parse(done.to_body());
    ASSERT_TRUE(back.ok()) << back.error().describe();
    ASSERT_EQ(back.value().parts.size(), 3u);
    EXPECT_EQ(back.value().parts[1].title, "Zweites Kapitel — Über");
    EXPECT_DOUBLE_EQ(back.value().parts[2].start_seconds, 120.001) << "milliseconds";
    EXPECT_EQ(back.value().parts[2].size, 960003u);
    EXPECT_FALSE(
        json::parse(StatusEvent{.job_id = kJob, .status = JobState::done, .mp3_fid = kMp3}.to_body()).contains("parts"))
        << "no parts, no field";

    // Part ids: 24 hex digits, the same for the same job and index, different otherwise.
    EXPECT_EQ(part_id(kJob, 1), done.parts[0].fid);
    EXPECT_EQ(part_id(kJob, 1).size(), 24u);
    EXPECT_NE(part_id(kJob, 1), part_id(kJob, 2));
    EXPECT_NE(part_id(kJob, 0), part_id(kMp3, 0));

    // Parts out of order, numbered from 0, too many, or with a bad fid are no parts; the event stands.
    json parts = parts_to_json(done.parts);
    std::swap(parts[0], parts[1]);
    EXPECT_FALSE(parts_from_json(parts));
    parts = parts_to_json(done.parts);
    parts[0]["fid"] = "../../etc/passwd";
    EXPECT_FALSE(parts_from_json(parts));
    parts = parts_to_json({done.parts[0]});
    parts[0]["index"] = 0;
    EXPECT_FALSE(parts_from_json(parts));
    json many = json::array();
    for (int i = 1; i <= Part::kMaxParts + 1; ++i) {
        Part p = done.parts[0];
        p.index = i;
        many.push_back(p.to_json());
    }
    EXPECT_FALSE(parts_from_json(many));
    many.erase(many.end() - 1);
    EXPECT_TRUE(parts_from_json(many)) << "kMaxParts is allowed";
    auto parsed = StatusEvent::parse(R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"done",)"
                                     R"("mp3_fid":"665f1c5e9b1e4d0a1c000007","parts":[{"index":1}]})");
    ASSERT_TRUE(parsed.ok());
    EXPECT_TRUE(parsed.value().parts.empty());

    // A part that names a blob other than the job's own part id (another user's MP3, say) drops the parts.
    StatusEvent forged = done;
    forged.parts[1].fid = kMp3;
    auto refused = StatusEvent::parse(forged.to_body());
    ASSERT_TRUE(refused.ok());
    EXPECT_TRUE(refused.value().parts.empty());

    EXPECT_EQ(part_filename(3, 12, "Chapter 3: Über/Unter?"), "03 - Chapter 3_ Über_Unter_.mp3");
    EXPECT_EQ(part_filename(7, 200, ".."), "007 - Part 7.mp3");
    EXPECT_EQ(part_filename(1, 1,
                            "a\x01"
                            "b"),
              "01 - a_b.mp3");

    ConversionRecord record{.duration_seconds = 12.5,
                            .waveform = Waveform{.seconds_per_point = 0.5, .peaks = {0.5f}},
                            .loudness = std::nullopt,
                            .parts = {done.parts[0]}};
    auto back_record = ConversionRecord::from_json_text(record.to_json_text());
    ASSERT_TRUE(back_record);
    EXPECT_EQ(back_record->duration_seconds, 12.5);
    EXPECT_EQ(back_record->parts.size(), 1u);
    EXPECT_TRUE(back_record->waveform);
    EXPECT_FALSE(back_record->loudness);
    EXPECT_FALSE(ConversionRecord::from_json_text("[1]"));
    EXPECT_FALSE(ConversionRecord::from_json_text(R"({"parts":[{"index":2}]})"));
    EXPECT_EQ(record_id(kJob), part_id(kJob, 0));

    Mp3Ready ready{.job_id = kJob, .mp3_fid = kMp3, .username = "a@example.com", .parts = 12};
    EXPECT_EQ(Mp3Ready::parse(ready.to_body()).value().parts, 12);
}

TEST(WebhookTask, RoundTripsAndSignsExactlyFourFields) {
    WebhookTask t;
    t.job_id = kJob;
    t.status = JobState::failed;
    t.error = "the file has no audio track";
    t.callback_url = "https://hooks.example.com/x";
    t.trace_id = "t";
    auto back = WebhookTask::parse(t.to_body());
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back.value().status, JobState::failed);
    EXPECT_EQ(back.value().error, t.error);
    EXPECT_FALSE(back.value().mp3_url);
    auto payload = json::parse(t.payload());
    EXPECT_EQ(payload.size(), 4u);
    EXPECT_TRUE(payload["mp3_url"].is_null());
    EXPECT_EQ(payload["status"], "failed");
    EXPECT_EQ(problem_of(WebhookTask::parse(R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"done"})")).field,
              "callback_url");
    EXPECT_EQ(problem_of(WebhookTask::parse(
                             R"({"job_id":"665f1c2a9b1e4d0a1c000002","status":"processing","callback_url":"x"})"))
                  .field,
              "status");
}

TEST(AccessClaims, RoundTripAndTheOriginalsClaims) {
    AccessClaims c{"alice@example.com", 42, true};
    auto j = c.to_json();
    EXPECT_EQ(j["username"], "alice@example.com") << "the original's claim";
    EXPECT_EQ(j["sub"], "42") << "a string, as JWT subjects are";
    EXPECT_EQ(j["admin"], true);
    auto back = AccessClaims::from_json(j);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value().user_id, 42u);
    EXPECT_TRUE(back.value().admin);
    EXPECT_EQ(problem_of(AccessClaims::from_json({{"sub", "42"}})).field, "username");
    EXPECT_EQ(problem_of(AccessClaims::from_json({{"username", "a"}, {"sub", 42}})).field, "sub");
    EXPECT_EQ(problem_of(AccessClaims::from_json({{"username", "a"}, {"sub", "-1"}})).field, "sub");
    EXPECT_EQ(problem_of(AccessClaims::from_json({{"username", "a"}, {"sub", "99999999999999999999"}})).field, "sub");
    auto plain = AccessClaims::from_json({{"username", "a"}, {"sub", "7"}, {"admin", "yes"}});
    ASSERT_TRUE(plain.ok());
    EXPECT_FALSE(plain.value().admin) << "only a true boolean makes an admin";
}

TEST(AccessClaims, TheTokensIdAndIssueTimeAreRead) {
    AccessClaims c{.username = "a@b.c", .user_id = 7, .admin = false, .jti = "0123456789abcdef0123456789abcdef"};
    auto j = c.to_json();
    EXPECT_EQ(j["jti"], c.jti);
    j["iat"] = 1'700'000'000;
    auto back = AccessClaims::from_json(j);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value().jti, c.jti);
    EXPECT_EQ(back.value().issued_at, 1'700'000'000);
    auto old = AccessClaims::from_json({{"username", "a"}, {"sub", "7"}, {"jti", 5}});  // before revocation existed
    ASSERT_TRUE(old.ok());
    EXPECT_EQ(old.value().jti, "");
    AccessClaims without_id{.username = "a", .user_id = 1};
    EXPECT_FALSE(without_id.to_json().contains("jti"));
}

TEST(Revocations, RoundTripAndRefusals) {
    Revocations r;
    r.cursor_ms = 1'700'000'000'123;
    r.cutoffs.push_back({.user_id = 42, .valid_after = 1'700'000'000});
    r.tokens.push_back({.jti = "0123456789abcdef0123456789abcdef", .expires_at = 1'700'086'400});
    auto back = Revocations::parse(r.to_body());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value().cursor_ms, r.cursor_ms);
    ASSERT_EQ(back.value().cutoffs.size(), 1u);
    EXPECT_EQ(back.value().cutoffs[0].user_id, 42u);
    EXPECT_EQ(back.value().cutoffs[0].valid_after, 1'700'000'000);
    ASSERT_EQ(back.value().tokens.size(), 1u);
    EXPECT_EQ(back.value().tokens[0].jti, r.tokens[0].jti);
    EXPECT_EQ(problem_of(Revocations::parse(R"({"v":2,"cursor_ms":1,"cutoffs":[],"tokens":[]})")).field, "v");
    EXPECT_EQ(problem_of(Revocations::parse(R"({"v":1,"cursor_ms":1,"cutoffs":[{"user_id":-1}],"tokens":[]})")).field,
              "cutoffs");
    EXPECT_EQ(problem_of(Revocations::parse(R"({"v":1,"cutoffs":[],"tokens":[]})")).field, "cursor_ms");
}

TEST(JobTicket, BindsTheJobItsOwnerAndItsWebhookAndTravelsWithTheMessages) {
    const std::string key(40, 'k');
    const std::string job = "0123456789abcdef01234567";
    std::string ticket = job_ticket(key, job, "alice@example.com", "https://hooks.example.com/a");
    EXPECT_EQ(ticket.size(), 64u);
    EXPECT_TRUE(valid_job_ticket(key, ticket, job, "alice@example.com", "https://hooks.example.com/a"));
    EXPECT_FALSE(valid_job_ticket(key, ticket, job, "mallory@example.com", "https://hooks.example.com/a"));
    EXPECT_FALSE(valid_job_ticket(key, ticket, job, "alice@example.com", "https://evil.example.com/"));
    EXPECT_FALSE(valid_job_ticket(key, ticket, job, "alice@example.com", std::nullopt));
    EXPECT_FALSE(
        valid_job_ticket(key, ticket, "0123456789abcdef01234568", "alice@example.com", "https://hooks.example.com/a"));
    EXPECT_FALSE(
        valid_job_ticket(std::string(40, 'x'), ticket, job, "alice@example.com", "https://hooks.example.com/a"));
    EXPECT_FALSE(valid_job_ticket(key, std::nullopt, job, "alice@example.com", "https://hooks.example.com/a"));

    VideoJob video;
    video.job_id = job;
    video.video_fid = job;
    video.username = "alice@example.com";
    video.ticket = ticket;
    EXPECT_EQ(VideoJob::parse(video.to_body()).value().ticket, ticket);
    Mp3Ready ready;
    ready.job_id = job;
    ready.mp3_fid = job;
    ready.username = "alice@example.com";
    ready.ticket = ticket;
    EXPECT_EQ(Mp3Ready::parse(ready.to_body()).value().ticket, ticket);
    StatusEvent failed;
    failed.job_id = job;
    failed.status = JobState::failed;
    failed.ticket = ticket;
    EXPECT_EQ(StatusEvent::parse(failed.to_body()).value().ticket, ticket);
    EXPECT_FALSE(Mp3Ready::parse(R"({"mp3_fid":"0123456789abcdef01234567","username":"a@example.com"})").value().ticket)
        << "the original's message has none";
}

TEST(MailPreferences, RoundTripAndRefusals) {
    MailPreferences p{.job_mails = JobMails::summary, .unsubscribe_token = "u7.abc"};
    auto back = MailPreferences::parse(p.to_body());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value().job_mails, JobMails::summary);
    EXPECT_EQ(back.value().unsubscribe_token, "u7.abc");
    EXPECT_EQ(MailPreferences::parse(R"({"job_mails":"weekly","unsubscribe_token":"x"})").error().field, "job_mails");
    EXPECT_EQ(MailPreferences::parse(R"({"job_mails":"off"})").error().field, "unsubscribe_token");
    EXPECT_EQ(parse_job_mails("off"), JobMails::off);
    EXPECT_FALSE(parse_job_mails("OFF"));
    EXPECT_EQ(job_mails_choices(), "each, summary, off");
}

}  // namespace
}  // namespace mp3c::messages
