#pragma once

// What the gateway's handlers share: who is calling, the backends they work over, and the answers they have in common.
#include <optional>
#include <string>
#include <string_view>

#include "job_events.hpp"
#include "mp3c/http.hpp"
#include "mp3c/result.hpp"
#include "mp3c/storage.hpp"
#include "mp3c/token.hpp"
#include "ports.hpp"
#include "revocations.hpp"

namespace mp3c::gateway {

// Who is calling, from a verified token.
struct Caller {
    uint64_t user_id = 0;
    std::string email;
    bool admin = false;
};

// Verifies the bearer token of a request (the tokens auth issues) here, without asking auth: the signature, the
// expiry, and whether auth has ended it since (the revocation list, when given).
class Authenticator {
  public:
    explicit Authenticator(std::string jwt_secret, const RevocationList* revoked = nullptr)
        : signer_(std::move(jwt_secret)), revoked_(revoked) {}
    // The caller, or the 401/403 to answer.
    Result<Caller, http::Response> authenticate(const http::Request& request) const;

  private:
    token::Signer signer_;
    const RevocationList* revoked_;
};

// The backends the handlers work over: owned by GatewayApp (MariaDB, RabbitMQ, blob stores), or by a unit test.
struct Backends {
    Jobs& jobs;
    storage::BlobStore& videos;
    storage::BlobStore& mp3s;
    JobQueue& queue;
    JobDispatch& dispatch;
    const Clock& clock;
    const Authenticator& auth;
    // The latest status events (job_events.hpp): a job the records show behind them is shown as the events say.
    const JobEventHub* events = nullptr;
};

// An error answer that tells the client when to try again.
http::Response retry_later(int status, std::string_view code, std::string_view message, int seconds);
http::Response database_unavailable();
// The 429 of a limit: Retry-After, and a body naming the limit {"error", "message", "limit": {"name", "value"},
// "retry_after"}.
http::Response limit_reached(std::string_view code, std::string_view message, std::string_view setting, uint64_t value,
                             int64_t retry_after_seconds);

// 409: the job has no MP3 (yet).
http::Response mp3_not_ready(const Job& job);
// 410: the job's files were deleted when its retention was over.
http::Response mp3_expired(const Job& job);
std::optional<uint64_t> parse_unsigned(std::string_view text);
// Deletes a blob, logging rather than failing: the job row is the truth, a leftover file is only disk space.
void remove_blob(storage::BlobStore& store, const std::optional<std::string>& id);
// The ids of what a job keeps in the MP3 store: its MP3, a split job's parts, and the converter's record of it.
std::vector<std::string> mp3_store_ids(const Job& job);
// The job if it exists and the caller may see it; else the 400/404/503 to answer. Another user's job is answered
// exactly like a missing one: its existence is not revealed.
Result<Job, http::Response> visible_job(Jobs& jobs, const std::string& id, const Caller& caller);
// The job a request names by its {id}, for the caller its token names; else the 401/403/400/404/503 to answer.
Result<Job, http::Response> requested_job(const Backends& backends, const http::Request& request);
// The job as its latest live status event has it, when that event is ahead of the record: the event streams hear a
// change as soon as the converter announces it, the record a moment later (one replica applies it). Every read that
// answers with the job's status goes through here, so that no answer contradicts what a client was just told.
Job with_latest_event(const Backends& backends, Job job);

}  // namespace mp3c::gateway
