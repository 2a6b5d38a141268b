#pragma once

// A job as the gateway keeps and shows it, and the status events that move it on.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/messages.hpp"

namespace mp3c::gateway {

// expired: the sweeper deleted what the job kept (a done job's MP3, a failed job's upload) when its time was up.
enum class JobStatus { queued, processing, done, failed, cancelled, expired };
std::string to_string(JobStatus status);
std::optional<JobStatus> parse_status(std::string_view text);
bool is_terminal(JobStatus status);

// Milliseconds since the epoch as 2024-06-04T13:35:38.123Z.
std::string iso8601(int64_t ms);
// The other way, for what clients send: "2026-12-31T12:00:00Z" or with milliseconds; nullopt when not that form.
std::optional<int64_t> parse_iso8601(std::string_view text);

struct Job {
    std::string id;
    uint64_t owner_id = 0;
    std::string owner_email;
    std::string filename;
    uint64_t size = 0;
    std::string video_fid;
    std::optional<std::string> mp3_fid;
    std::optional<uint64_t> mp3_size;
    std::optional<uint64_t> duration_ms;
    JobStatus status = JobStatus::queued;
    int progress = 0;
    std::optional<std::string> error;
    std::optional<std::string> reason;  // failed jobs: a word for programs (unsupported_format, too_long, ...)
    nlohmann::json options = nlohmann::json::object();
    std::string trace_id;
    int64_t created_ms = 0;
    int64_t updated_ms = 0;
    std::optional<int64_t> finished_ms;
    std::optional<std::string> callback_url;   // the owner's webhook (issue 5), called when the job ends
    std::optional<uint64_t> max_output_bytes;  // what the owner's quota leaves for the MP3
    bool dispatched = false;                   // queued: published to the converters (else waiting its turn)
    std::optional<int64_t> expires_ms;         // when the sweeper deletes what the job keeps; nullopt: kept
    std::optional<std::string> source_sha256;  // the upload's SHA-256 (hex): finds an earlier identical job
    std::optional<std::string> reused_from;    // done at once with a copy of this earlier job's MP3
    std::optional<std::string> loudness;       // done with loudness normalisation: what it measured (JSON text,
                                               // messages::Loudness)
    std::vector<messages::Part> parts;         // done with chapters=split: each chapter's MP3, beside the whole

    // A split job's part by its index (1..), or nullptr.
    const messages::Part* part(int index) const;
    // Its download's name: the whole's name without ".mp3", then " - NN - title.mp3".
    std::string part_filename(const messages::Part& part) const;

    // A failed job whose upload is still kept: POST /jobs/{id}/retry can queue it again.
    bool retryable() const { return status == JobStatus::failed && !video_fid.empty(); }

    nlohmann::json to_json() const;        // the API's view of a job
    nlohmann::json loudness_json() const;  // loudness as an object, or null
    nlohmann::json parts_json() const;     // the parts with their download URLs ([] unless split)
};

// A status event from the converter (docs/messaging.md).
struct StatusEvent {
    std::string job_id;
    JobStatus status = JobStatus::processing;
    int progress = 0;
    std::optional<std::string> mp3_fid;
    std::optional<uint64_t> mp3_size;
    std::optional<uint64_t> duration_ms;
    std::optional<std::string> waveform;  // done: the MP3's waveform as JSON text (messages::Waveform), when it came
    std::optional<std::string> loudness;  // done: what loudness normalisation measured (messages::Loudness), JSON
    std::optional<std::string> parts;     // done with chapters=split: the parts (messages::parts_to_json), JSON
    uint64_t parts_size = 0;              // their bytes together (they count toward the quota)
    std::optional<std::string> error;
    std::optional<std::string> reason;  // [a-z_], at most 64 characters
    bool source_deleted = false;        // with done: the converter deleted the upload
    int64_t at_ms = 0;

    // nullopt for anything that is not a valid event (then it is dead-lettered).
    static std::optional<StatusEvent> parse(const std::string& body);
};

struct JobQuery {
    std::optional<uint64_t> owner_id;  // nullopt: every owner (admins)
    std::optional<JobStatus> status;
    size_t limit = 20;
    size_t offset = 0;
};

}  // namespace mp3c::gateway
