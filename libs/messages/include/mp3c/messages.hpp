#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mp3c/output_options.hpp"
#include "mp3c/result.hpp"

// The contracts between the services: one type per message, written and read only here (docs/messaging.md has the
// tables). Each type's to_body() writes what its consumers read, and parse() reads what every producer, old or new,
// writes: the original system's `{"video_fid", "mp3_fid", "username"}` stay readable and are still written.
//
// Versions: every message written carries "v": 1. A message without "v" is version 1 (the original's, and this
// system's before the field existed). A message of a later version is refused (field "v"), so an old consumer
// dead-letters what it would misread instead of acting on it. Unknown fields are ignored: adding a field is not a new
// version; changing one's meaning is.
namespace mp3c::messages {

inline constexpr int kVersion = 1;

// Why a body is not a valid message: the field at fault ("" for the body as a whole) and what is wrong with it.
struct Problem {
    std::string field;
    std::string what;
    std::string describe() const;  // "job_id: must be 24 hexadecimal digits"
};

template <class T>
using Parsed = Result<T, Problem>;

// What a message too damaged to parse still says about its job, so that the job can be failed (and its owner told)
// rather than left waiting: each field only if it is there and of the right shape.
struct JobNamed {
    std::optional<std::string> job_id;  // 24 hexadecimal digits
    std::optional<std::string> username;
    std::optional<std::string> trace_id;
};
JobNamed job_named_in(std::string_view body);

// Queue `video`: a job to convert (the gateway publishes, the converter consumes).
struct VideoJob {
    std::string job_id;
    std::string video_fid;
    std::string username;  // the owner's e-mail address (the token's username claim)
    std::string user_id;   // the owner's id, a decimal number as a string (the token's sub claim)
    std::string filename;  // the upload's cleaned base name
    uint64_t size = 0;
    OutputOptions options;
    std::string trace_id;
    int64_t submitted_at = 0;                  // Unix ms; 0 when the producer did not say
    std::optional<std::string> callback_url;   // the owner's webhook
    std::optional<uint64_t> max_output_bytes;  // what the owner's storage quota left when the upload began
    std::optional<std::string> ticket;         // the gateway's job ticket (job_ticket below), passed on as it is
    int attempt = 1;                           // the retry envelope: 1 on the first delivery

    std::string to_body() const;
    static Parsed<VideoJob> parse(std::string_view body);
};

// Queue `mp3`: a finished conversion (the converter publishes, the notification service consumes).
struct Mp3Ready {
    std::string job_id;
    std::string video_fid;
    std::string mp3_fid;
    std::string username;
    std::string user_id;
    std::string filename;
    uint64_t mp3_size = 0;
    double duration_seconds = 0;  // 0 when a redelivered job is announced again without converting
    std::string trace_id;
    std::optional<std::string> callback_url;
    std::optional<std::string> ticket;  // the job's ticket, from its video message
    int parts = 0;                      // chapters=split: how many files of its own each chapter became
    int attempt = 1;

    std::string to_body() const;
    // The original's message has only mp3_fid and username: its MP3 id stands in for the job id.
    static Parsed<Mp3Ready> parse(std::string_view body);
};

// A finished job's waveform: the loudest sample (of any channel, as a fraction of full scale) in each stretch of
// `seconds_per_point` of the MP3's audio, from its start. The converter measures it while encoding (no extra pass);
// the web page draws it under the player.
struct Waveform {
    static constexpr size_t kMaxPoints = 4096;
    double seconds_per_point = 0;
    std::vector<float> peaks;
    nlohmann::json to_json() const;  // {"seconds_per_point", "peaks": [0.125, ...]}, peaks to 3 decimals
    // nullopt unless it is such an object: 1 to kMaxPoints peaks, each a number from 0 to 1, a positive finite step.
    static std::optional<Waveform> from_json(const nlohmann::json& j);
};

// What loudness normalisation (the option `loudness`) measured and did, in LUFS, dBTP and dB. A level is nullopt when
// there was nothing to measure: digital silence, or under 0.4 s of audio (the gate of EBU R128).
struct Loudness {
    double target_lufs = 0;
    double true_peak_ceiling_dbtp = 0;
    std::optional<double> input_lufs, input_true_peak_dbtp;    // before, as the MP3's rate and channels
    std::optional<double> output_lufs, output_true_peak_dbtp;  // after gain and limiter, as handed to the encoder
    double gain_db = 0;
    bool limited = false;            // the limiter lowered some peaks to keep under the ceiling
    nlohmann::json to_json() const;  // each level to 0.1, null when not measured
    // nullopt unless an object with numbers (or null levels) in the ranges this service writes.
    static std::optional<Loudness> from_json(const nlohmann::json& j);
};

// One file of a job split by its chapters (the option chapters=split). The job keeps its whole MP3 too; each part is
// stored in the MP3 store under part_id(job, index), with its own tags (title, track index/count).
struct Part {
    static constexpr int kMaxParts = 255;  // as many chapters as the whole MP3 may hold
    int index = 0;                         // 1..count
    std::string title;                     // the chapter's (at most 250 bytes), else "Part <index>"
    double start_seconds = 0;              // where it starts in the whole MP3
    double duration_seconds = 0;
    uint64_t size = 0;
    std::string fid;  // part_id(job, index)
    nlohmann::json to_json() const;
    static std::optional<Part> from_json(const nlohmann::json& j);
};
nlohmann::json parts_to_json(const std::vector<Part>& parts);
// nullopt unless an array of at most kMaxParts valid parts numbered 1, 2, ... in order.
std::optional<std::vector<Part>> parts_from_json(const nlohmann::json& j);
// The id a job's part is stored under: derived from the job's id, so a redelivered job writes the same blobs and the
// gateway finds them from the job alone.
std::string part_id(std::string_view job_id, int index);
// The id of a job's result record in the MP3 store (ConversionRecord), beside its MP3: part_id(job_id, 0).
std::string record_id(std::string_view job_id);

// What a conversion measured and made besides the MP3: stored before the MP3 (so a stored MP3 has its record) and
// read when a job whose MP3 is stored already is announced again, so that the done event is whole again.
struct ConversionRecord {
    double duration_seconds = 0;  // of the MP3
    std::optional<Waveform> waveform;
    std::optional<Loudness> loudness;
    std::vector<Part> parts;
    std::string to_json_text() const;
    static std::optional<ConversionRecord> from_json_text(std::string_view text);  // nullopt: not one
};
// "NN - title.mp3": NN the index with as many digits as the count needs (at least 2); what a file name cannot hold
// (/ \ : * ? " < > | and control characters) becomes "_", and a title of dots only is "Part <index>".
std::string part_filename(int index, int count, std::string_view title);

// queued: a failed job put back in the queue by its owner (POST /jobs/{id}/retry), announced so that every gateway
// replica forgets the failure it heard.
enum class JobState { processing, done, failed, cancelled, queued };  // messages.cpp names them in this order
std::string_view to_string(JobState state);

// Exchange `mp3c.status`, routing key job.<status>: a job's progress or end (the converter and the gateway publish;
// the gateway and, for failed jobs, the notification service consume).
struct StatusEvent {
    std::string job_id;
    JobState status = JobState::processing;
    int progress = 0;  // 0..100
    std::optional<std::string> mp3_fid;
    std::optional<uint64_t> mp3_size;
    std::optional<double> duration_seconds;
    std::optional<Waveform> waveform;   // done: absent from converters before it, and when a job is announced again
    std::optional<Loudness> loudness;   // done: when the job asked for loudness normalisation (likewise)
    std::vector<Part> parts;            // done: with chapters=split, one per chapter (none without chapters)
    std::optional<std::string> error;   // in words for users
    std::optional<std::string> reason;  // a code for programs: [a-z_], at most 64 characters
    bool source_deleted = false;
    int64_t at = 0;  // Unix ms; 0 when the publisher did not say
    std::string trace_id;
    std::string username;
    std::string filename;
    std::optional<std::string> callback_url;
    std::optional<std::string> ticket;  // the job's ticket, from its video message
    int attempt = 1;                    // the notification service's retries of a failed event

    std::string routing_key() const;  // job.<status>
    std::string to_body() const;
    // Lenient where the contract allows it: a wrong-typed optional field counts as absent, a reason that is not a
    // word is left out. Refused: no valid job_id, no known status, done without an mp3_fid.
    static Parsed<StatusEvent> parse(std::string_view body);
};

// Queue `notification.webhook`: a webhook to call (the notification service publishes and consumes).
struct WebhookTask {
    std::string job_id;
    JobState status = JobState::done;  // done or failed
    std::optional<std::string> mp3_url;
    std::optional<std::string> expires_at;  // done: when the MP3 (and so mp3_url) expires, ISO 8601 UTC; absent: kept
    std::optional<std::string> error;
    std::string callback_url;
    std::string trace_id;
    std::string username;  // the job's owner, whose webhook secret signs it; empty in tasks written before
    // What the call is about, once: the job id for its end, <job id>.failed.<time> for one of its failures (a
    // retried job may fail again, then succeed). The webhook-id header, and the key that keeps it from repeating.
    std::string key;  // empty in tasks written before: the job id
    int attempt = 1;

    const std::string& delivery_key() const { return key.empty() ? job_id : key; }

    std::string to_body() const;
    // The signed payload the webhook receives: job_id, status, mp3_url, error, and expires_at when the MP3 expires.
    std::string payload() const;
    static Parsed<WebhookTask> parse(std::string_view body);
};

// The claims of an access token (auth issues it, the gateway verifies it locally; token::Signer adds iat and exp).
// The original's claims: `username` (the e-mail address) and `admin`; `sub` is the user id as a decimal string.
struct AccessClaims {
    std::string username;
    uint64_t user_id = 0;
    bool admin = false;
    std::string jti;        // the token's own id (32 hex digits), by which it is revoked; empty in tokens issued before
    int64_t issued_at = 0;  // iat, Unix seconds (read only: the signer writes it); 0 when absent
    int64_t expires_at = 0;  // exp, likewise

    nlohmann::json to_json() const;
    // Refused without a string `username` or a `sub` that is a decimal user id; `admin` absent or mistyped is false,
    // a mistyped `jti` or `iat` counts as absent.
    static Parsed<AccessClaims> from_json(const nlohmann::json& claims);
};

// What auth has revoked (GET /revocations, polled by the gateway): per user, the moment before which every token is
// ended (a password change, a deletion, a change of role), and single tokens ended by sign-out.
struct Revocations {
    struct Cutoff {
        uint64_t user_id = 0;
        int64_t valid_after = 0;  // tokens with an earlier iat (Unix seconds) are ended
    };
    struct Token {
        std::string jti;
        int64_t expires_at = 0;  // Unix seconds: after it the token is dead anyway and may be forgotten
    };
    int64_t cursor_ms = 0;  // ask again with since_ms=cursor_ms for what changed afterwards
    std::vector<Cutoff> cutoffs;
    std::vector<Token> tokens;

    std::string to_body() const;
    static Parsed<Revocations> parse(std::string_view body);
};

// Queue `notification.account`: a mail about an account (auth publishes, the notification service consumes and
// sends it through its SMTP path, once per mail_id).
struct AccountMail {
    enum class Kind {
        verify_email,          // the link that activates a new account (or a new e-mail-address claim)
        reset_password,        // the link that sets a new password
        registration_attempt,  // someone tried to register an address that already has an account
    };
    std::string mail_id;  // 24 hexadecimal digits: the key of at-most-one sending
    Kind kind = Kind::verify_email;
    std::string email;
    std::string token;       // the link's secret (verify_email, reset_password); empty otherwise
    int64_t expires_at = 0;  // Unix seconds: when the link stops working (0 when there is none)
    std::string trace_id;
    int attempt = 1;

    std::string to_body() const;
    // Refused: no valid mail_id, an unknown kind, no email, a link kind without a token.
    static Parsed<AccountMail> parse(std::string_view body);
};
std::string_view to_string(AccountMail::Kind kind);

// Auth's internal GET /webhook-secrets?username=: the secrets that sign the user's webhooks now, newest first (two
// during a rotation's overlap), each "whsec_" and base64 (the Standard Webhooks format).
struct WebhookSecrets {
    std::vector<std::string> secrets;

    std::string to_body() const;
    static Parsed<WebhookSecrets> parse(std::string_view body);
};

// How a user wants to hear about their jobs by e-mail (auth keeps it; `PATCH /account/preferences`).
enum class JobMails {
    each,     // one mail per finished or failed job (the default)
    summary,  // one mail per batch of uploads: jobs that end close together are told about in one mail
    off,      // none (webhooks still run; account mails such as password resets still come)
};
std::string_view to_string(JobMails mails);
std::optional<JobMails> parse_job_mails(std::string_view text);
// "each, summary, off": for error messages and help.
std::string job_mails_choices();

// Auth's internal GET /mail-preferences?username=: what the notification service needs before it mails a job's owner.
struct MailPreferences {
    JobMails job_mails = JobMails::each;
    std::string unsubscribe_token;  // for the one-click link in every job mail (POST /unsubscribe?token=)

    std::string to_body() const;
    static Parsed<MailPreferences> parse(std::string_view body);
};

// The retry envelope: the same message again with its attempt count raised (the body of a retry-queue message).
template <class Message>
std::string next_attempt(Message message) {
    ++message.attempt;
    return message.to_body();
}

// A job ticket: the gateway's HMAC-SHA256 (hex) over what a job's messages tell the notification service to act on
// (the job, its owner's address, its webhook), with a key the converters do not have (JOB_TICKET_SECRET). The
// converter passes it on unchanged, so a converter that parsed hostile media and was taken over can still report its
// jobs, but cannot make the notification service mail or call anyone a job of theirs does not name.
std::string job_ticket(std::string_view key, const std::string& job_id, const std::string& username,
                       const std::optional<std::string>& callback_url);
bool valid_job_ticket(std::string_view key, const std::optional<std::string>& ticket, const std::string& job_id,
                      const std::string& username, const std::optional<std::string>& callback_url);

// The download link of a "your MP3 is ready" mail or webhook: /jobs/{id}/mp3?signature=S, S an HMAC of the job id
// with the same key (JOB_TICKET_SECRET, under another label, so a ticket is no link). It needs no sign-in (a mail
// client's browser has no token) and carries no date of its own: the gateway serves it while the job keeps its MP3,
// so it ends when the MP3 expires (RETENTION) or the job is deleted.
std::string mail_link_signature(std::string_view key, const std::string& job_id);
std::string mail_link_path(std::string_view key, const std::string& job_id);

}  // namespace mp3c::messages
