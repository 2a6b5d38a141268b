#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mp3c/messages.hpp"

// E-mail messages as RFC 5322 text with MIME (RFC 2045-2047): a plain-text part and an HTML alternative, UTF-8,
// non-ASCII header text as encoded words. Pure functions: no I/O.
namespace mp3c::notification {

struct Mail {
    std::string from;  // a header value: "mp3converter <noreply@example.com>" or a bare address
    std::string to;    // a bare address
    std::string subject;
    std::string text;        // UTF-8
    std::string html;        // UTF-8
    std::string message_id;  // without angle brackets; derived from the job so that a resend is recognisable
    std::chrono::system_clock::time_point date;
    // RFC 8058 one-click unsubscribe: List-Unsubscribe (this https address, to POST) and List-Unsubscribe-Post.
    std::string unsubscribe_url;
};

// The whole message, lines ending in CRLF, every line at most 78 characters (bodies are base64), but for To: with
// an address over 74 characters, which cannot be folded (up to 254 + 4, under RFC 5322's hard limit of 998).
std::string render(const Mail& mail, std::string_view boundary);

// A header value in lines of at most 78 characters after a field name of up to 12 (and ": "): printable ASCII as it
// is, folded before spaces; else (or with a word too long to fold) as RFC 2047 "B" encoded words of at most 75
// characters, split on UTF-8 character boundaries and folded onto continuation lines.
std::string encode_header_text(std::string_view utf8);

// The address part of "Name <addr>" or a bare address.
std::string address_of(std::string_view from);

// A mailbox we are willing to put in RCPT TO and To: local@domain, no spaces, controls, angle brackets or quotes,
// at most 254 characters. The original used the username as the address; anything else cannot be mailed.
bool is_plausible_address(std::string_view address);

std::string html_escape(std::string_view text);

// "4.6 MB", "812 kB", "95 bytes".
std::string human_size(uint64_t bytes);

// The messages this service sends.
struct JobDone {
    std::string job_id;
    std::string filename;  // the original upload's name (may be empty)
    std::string download_url;
    bool download_needs_sign_in = false;  // a plain link (no JOB_TICKET_SECRET to sign it with)
    std::string web_url;                  // the web page at this job
    std::optional<std::chrono::system_clock::time_point> expires_at;  // nullopt: kept until deleted
    uint64_t mp3_size = 0;
    double duration_seconds = 0;  // of the MP3 (after a trim)
    int parts = 0;                // chapters=split: its parts, downloaded from the web page
};
struct JobFailed {
    std::string job_id;
    std::string occurrence;  // "" or ".failed.<time>": each failure of a (retried) job has its own Message-ID
    std::string filename;
    std::string reason;
    std::string web_url;  // the web page at this job, with its Retry button
    std::optional<std::chrono::system_clock::time_point> upload_kept_until;  // nullopt: kept until deleted
};
Mail done_mail(const JobDone& job, const std::string& from, const std::string& to);
Mail failed_mail(const JobFailed& job, const std::string& from, const std::string& to);

// One summary mail for a batch of jobs (job_mails "summary").
struct SummaryEntry {
    std::string job_id;
    std::string filename;
    bool done = false;
    std::string reason;        // a failed job's
    std::string download_url;  // a finished job's
    uint64_t mp3_size = 0;
    double duration_seconds = 0;
    int parts = 0;
};
struct JobSummary {
    std::string digest_id;  // its Message-ID
    std::vector<SummaryEntry> entries;
    bool download_needs_sign_in = false;
    std::string web_url;                                              // the web page
    std::optional<std::chrono::system_clock::time_point> expires_at;  // the MP3s'
};
// The subject counts every job; the body lists the first kSummaryListed (a mail stays readable, and small, whatever
// the batch) and says how many more there are.
inline constexpr size_t kSummaryListed = 50;
Mail summary_mail(const JobSummary& summary, const std::string& from, const std::string& to);

// The way out of job mails, in every one: the headers of a one-click unsubscribe (the gateway's POST /unsubscribe),
// and a closing line that links to the web page's question (a GET of the link changes nothing).
struct Unsubscribe {
    std::string one_click_url;  // PUBLIC_BASE_URL/unsubscribe?token=
    std::string page_url;       // PUBLIC_BASE_URL/#unsubscribe=<token>
    bool summary = false;       // the user chose summaries: the closing line says so
};
void add_unsubscribe(Mail& mail, const Unsubscribe& unsubscribe);

// Mails about an account (auth asks for them through `notification.account`).
struct AccountNotice {
    using Kind = messages::AccountMail::Kind;
    Kind kind = Kind::verify_email;
    std::string mail_id;
    std::string public_base_url;  // the links: /verify?token= (the gateway), /#reset= (the web page)
    std::string token;
    std::chrono::system_clock::time_point expires_at;
};
Mail account_mail(const AccountNotice& notice, const std::string& from, const std::string& to);

}  // namespace mp3c::notification
