// libFuzzer target for the message contracts (libs/messages/include/mp3c/messages.hpp); bench/fuzz-campaign builds
// and runs it.
//
// Input: a digit choosing the type ('0' VideoJob, '1' Mp3Ready, '2' StatusEvent, '3' WebhookTask, '4' Revocations,
// '5' AccountMail, '6' WebhookSecrets, '7' MailPreferences, '8' ConversionRecord, '9' AccessClaims; other bytes
// wrap), then the body. Whatever parses must be written (to_body) as a body that parses again and is written the same
// (a message passed on, or retried, does not drift), and must keep the contract's promises about its fields.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "mp3c/messages.hpp"

namespace {

using namespace mp3c::messages;
using json = nlohmann::json;

using mp3c::fuzz::check;

bool is_id(std::string_view s) {
    return s.size() == 24 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// What each type promises about its fields once parsed.
void check_fields(const VideoJob& m, std::string_view) {
    check(is_id(m.job_id) && is_id(m.video_fid), "VideoJob: ids");
    check(mp3c::check_output_options(m.options).ok(), "VideoJob: options that do not pass their check");
}
void check_fields(const Mp3Ready& m, std::string_view) {
    check(is_id(m.job_id) && m.parts >= 0 && m.parts <= Part::kMaxParts, "Mp3Ready: id or parts");
}
void check_fields(const StatusEvent& e, std::string_view) {
    check(is_id(e.job_id) && e.progress >= 0 && e.progress <= 100, "StatusEvent: id or progress");
    check((!e.mp3_fid || is_id(*e.mp3_fid)) && (e.status != JobState::done || e.mp3_fid), "StatusEvent: mp3_fid");
    check(!e.reason || (!e.reason->empty() && e.reason->size() <= 64 &&
                        e.reason->find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos),
          "StatusEvent: a reason that is not a word");
    for (const Part& p : e.parts) check(p.fid == part_id(e.job_id, p.index), "StatusEvent: a part not the job's own");
    check(e.routing_key() == "job." + std::string(to_string(e.status)), "StatusEvent: routing key");
}
void check_fields(const WebhookTask& t, std::string_view) {
    check(t.status == JobState::done || t.status == JobState::failed, "WebhookTask: status");
    check(t.key.size() <= 64 && !t.delivery_key().empty(), "WebhookTask: key");
    check(json::parse(t.payload(), nullptr, false).is_object(), "WebhookTask: the payload is not a JSON object");
}
void check_fields(const Revocations&, std::string_view body) {
    const json j = json::parse(body, nullptr, false);  // the contract: version 1 exactly
    check(j.is_object() && j.contains("v") && j["v"] == 1, "Revocations: accepted a version other than 1");
}
void check_fields(const AccountMail& m, std::string_view) {
    check(is_id(m.mail_id) && !m.email.empty(), "AccountMail: mail_id or email");
    check(m.kind == AccountMail::Kind::registration_attempt || !m.token.empty(), "AccountMail: a link without token");
}
void check_fields(const WebhookSecrets&, std::string_view) {}
void check_fields(const MailPreferences& p, std::string_view) {
    check(parse_job_mails(to_string(p.job_mails)) == p.job_mails, "MailPreferences: job_mails names");
}

template <class Message>
void round_trip(std::string_view body) {
    const auto first = Message::parse(body);
    if (!first) {
        check(!first.error().what.empty(), "a refusal without a reason");
        return;
    }
    check_fields(first.value(), body);
    const std::string once = first.value().to_body();
    const auto second = Message::parse(once);
    if (!second) std::fprintf(stderr, "%s\nrefused: %s\n", once.c_str(), second.error().describe().c_str());
    check(second.ok(), "a message's own body does not parse");
    const std::string twice = second.value().to_body();
    if (twice != once) std::fprintf(stderr, "once:  %s\ntwice: %s\n", once.c_str(), twice.c_str());
    check(twice == once, "to_body -> parse -> to_body is not stable");
    if constexpr (requires { first.value().attempt; }) {
        const auto next = Message::parse(next_attempt(first.value()));
        check(next && next.value().attempt == std::min(first.value().attempt + 1, 1'000'000), "next_attempt");
    }
}

void record_round_trip(std::string_view text) {
    const auto first = ConversionRecord::from_json_text(text);
    if (!first) return;
    const std::string once = first->to_json_text();
    const auto second = ConversionRecord::from_json_text(once);
    if (!second || second->to_json_text() != once) std::fprintf(stderr, "once: %s\n", once.c_str());
    check(second && second->to_json_text() == once, "ConversionRecord: to_json_text -> from_json_text drifts");
}

void claims_round_trip(std::string_view text) {
    const auto first = AccessClaims::from_json(json::parse(text, nullptr, false));
    if (!first) return;
    const AccessClaims& c = first.value();
    const auto second = AccessClaims::from_json(c.to_json());
    check(second && second.value().username == c.username && second.value().user_id == c.user_id &&
              second.value().admin == c.admin && second.value().jti == c.jti,
          "AccessClaims: to_json -> from_json changed the claims");
    check(c.jti.size() <= 64, "AccessClaims: a jti over 64 characters");
}

// Indexed by the input's first byte minus '0'.
constexpr void (*kByDigit[])(std::string_view) = {
    round_trip<VideoJob>,    round_trip<Mp3Ready>,    round_trip<StatusEvent>,    round_trip<WebhookTask>,
    round_trip<Revocations>, round_trip<AccountMail>, round_trip<WebhookSecrets>, round_trip<MailPreferences>,
    record_round_trip,       claims_round_trip};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    const JobNamed named = job_named_in(body);  // what a dead-lettered message still says, whatever its type
    check(!named.job_id || is_id(*named.job_id), "job_named_in: a job_id that is not an id");
    kByDigit[static_cast<uint8_t>(data[0] - '0') % std::size(kByDigit)](body);
    return 0;
}
