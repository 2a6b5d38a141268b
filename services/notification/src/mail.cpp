#include "mail.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>

#include "mp3c/crypto.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::notification {

namespace {

std::string base64(std::string_view bytes) { return crypto::base64_encode(bytes); }

// Base64 in lines of 76 characters (RFC 2045).
std::string base64_lines(std::string_view bytes) {
    std::string encoded = base64(bytes), out;
    for (size_t at = 0; at < encoded.size(); at += 76) {
        out += encoded.substr(at, 76);
        out += "\r\n";
    }
    return out;
}

bool printable_ascii(std::string_view text) {
    for (char c : text) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

// Where the UTF-8 character that starts at text[at] ends.
// A UTF-8 character is at most 4 bytes: in text that is not UTF-8, a run of continuation bytes is cut there (found by
// bench/fuzz-campaign: "y" and a hundred 0xB3 bytes made one encoded word of 150 characters).
size_t next_character(std::string_view text, size_t at) {
    size_t end = at + 1;
    while (end < text.size() && end - at < 4 && (uint8_t(text[end]) & 0xC0) == 0x80) ++end;
    return end;
}

std::string rfc5322_date(std::chrono::system_clock::time_point when) {
    std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm tm{};
    gmtime_r(&t, &tm);
    static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char out[64];
    std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday], tm.tm_mday,
                  kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}

// Header text from users (file names) never carries line breaks into the message.
std::string one_line(std::string_view text) {
    std::string out;
    for (char c : text) out += (c == '\r' || c == '\n' || c == '\t') ? ' ' : c;
    return out;
}

std::string quoted_name(const std::string& filename) {
    return filename.empty() ? "your upload" : "\"" + filename + "\"";
}

// Message-IDs made from the job: a mail sent twice after a crash carries the same id, which mail clients collapse.
std::string message_id(const std::string& job_id, const char* kind, const std::string& from) {
    std::string address = address_of(from);
    auto at = address.rfind('@');
    return job_id + "." + kind + "@" +
           (at == std::string::npos ? std::string("mp3converter.invalid") : address.substr(at + 1));
}

}  // namespace

namespace {

constexpr size_t kLineLength = 78;     // RFC 5322's limit for a line, CRLF not counted
constexpr size_t kFieldNameRoom = 14;  // the field's name and ": " come before the text on its first line

// Printable ASCII folded before spaces into lines of at most 78 (the first leaves room for the field's name);
// nullopt when a word is too long for a line (it then goes as encoded words, which fold anywhere).
std::optional<std::string> folded(const std::string& text) {
    std::string out;
    size_t line = kFieldNameRoom, at = 0;
    for (bool first = true; at <= text.size(); first = false) {
        size_t end = std::min(text.find(' ', at), text.size());
        std::string_view word(text.data() + at, end - at);
        size_t added = (first ? 0 : 1) + word.size();
        if (!first && !word.empty() && line + added > kLineLength) {
            out += "\r\n";  // the fold: the space that follows starts the continuation line
            line = 0;
        }
        if (!first) out += ' ';
        out += word;
        line += added;
        if (line > kLineLength) return std::nullopt;
        at = end + 1;
    }
    return out;
}

}  // namespace

std::string encode_header_text(std::string_view utf8) {
    std::string text = one_line(utf8);
    // Text with "=?" could read as an encoded word (RFC 2047 6.2): a file name "=?UTF-8?B?...?=" would show as
    // something else. It is encoded like any other (found by bench/fuzz-campaign).
    if (printable_ascii(text) && text.size() <= 900 && text.find("=?") == std::string::npos) {
        if (auto lines = folded(text)) return *lines;
    }
    // Each encoded word "=?UTF-8?B?...?=" is at most 75 characters: 12 of framing, so at most 63 of base64, which
    // is 45 bytes of text (the first word 39, after the field's name); never split a character between words.
    // Found by bench/fuzz-campaign: a first word of 75 after "Subject: " made a line of 84.
    std::string out;
    size_t at = 0;
    while (at < text.size()) {
        const size_t budget = out.empty() ? 39 : 45;
        size_t end = at;
        while (end < text.size()) {
            size_t next = next_character(text, end);
            if (next - at > budget) break;
            end = next;
        }
        if (end == at) end = next_character(text, at);  // cannot happen with valid UTF-8; be safe anyway
        if (!out.empty()) out += "\r\n ";
        out += "=?UTF-8?B?" + base64(text.substr(at, end - at)) + "?=";
        at = end;
    }
    return out;
}

std::string address_of(std::string_view from) {
    auto open = from.rfind('<');
    auto close = from.rfind('>');
    if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
        return std::string(from.substr(open + 1, close - open - 1));
    }
    return std::string(from);
}

bool is_plausible_address(std::string_view address) {
    if (address.empty() || address.size() > 254) return false;
    auto at = address.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return false;
    if (address.find('@') != at) return false;
    for (char c : address) {
        if (uint8_t(c) <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '(' || c == ')' || c == ',' ||
            c == ';' || c == '\\' || c == '[' || c == ']') {
            return false;
        }
    }
    auto domain = address.substr(at + 1);
    return domain.find('.') != std::string_view::npos && domain.front() != '.' && domain.back() != '.';
}

std::string html_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string human_size(uint64_t bytes) {
    char out[32];
    if (bytes >= 1000 * 1000) {
        std::snprintf(out, sizeof out, "%.1f MB", static_cast<double>(bytes) / 1e6);
    } else if (bytes >= 1000) {
        std::snprintf(out, sizeof out, "%llu kB", static_cast<unsigned long long>((bytes + 500) / 1000));
    } else {
        std::snprintf(out, sizeof out, "%llu bytes", static_cast<unsigned long long>(bytes));
    }
    return out;
}

std::string render(const Mail& mail, std::string_view boundary) {
    std::string b(boundary);
    std::string out;
    out += "From: " + one_line(mail.from) + "\r\n";
    out += "To: " + one_line(mail.to) + "\r\n";
    out += "Subject: " + encode_header_text(mail.subject) + "\r\n";
    out += "Date: " + rfc5322_date(mail.date) + "\r\n";
    out += "Message-ID: <" + one_line(mail.message_id) + ">\r\n";
    out += "MIME-Version: 1.0\r\n";
    out += "Auto-Submitted: auto-generated\r\n";  // RFC 3834: no vacation replies to a robot
    if (!mail.unsubscribe_url.empty()) {
        // On a line of its own: an address cannot be folded, and a long one would make the header line too long.
        out += "List-Unsubscribe:\r\n <" + one_line(mail.unsubscribe_url) + ">\r\n";
        out += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
    }
    out += "Content-Type: multipart/alternative; boundary=\"" + b + "\"\r\n";
    out += "\r\n";
    out += "This is a MIME message: a plain-text and an HTML version.\r\n";
    out += "--" + b + "\r\n";
    out += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    out += base64_lines(mail.text);
    out += "--" + b + "\r\n";
    out += "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    out += base64_lines(mail.html);
    out += "--" + b + "--\r\n";
    return out;
}

namespace {
std::string parts_words(int parts) { return std::to_string(parts) + (parts == 1 ? " part" : " parts"); }
}  // namespace

Mail done_mail(const JobDone& job, const std::string& from, const std::string& to) {
    Mail m;
    m.from = from;
    m.to = to;
    m.subject = "Your MP3 of " + quoted_name(job.filename) + " is ready";
    m.message_id = message_id(job.job_id, "done", from);
    m.date = std::chrono::system_clock::now();
    // A re-announced job may come without its duration or size: say only what is known.
    std::string facts;
    if (job.duration_seconds > 0) facts = clock_duration(job.duration_seconds);
    if (job.mp3_size > 0) facts += (facts.empty() ? "" : ", ") + human_size(job.mp3_size);
    if (job.parts > 0) facts += (facts.empty() ? "" : ", ") + parts_words(job.parts);
    std::string facts_text = facts.empty() ? "" : " (" + facts + ")";
    std::string sign_in = job.download_needs_sign_in ? " (sign in first)" : "";
    std::string parts = job.parts > 0
                            ? "Its " + std::to_string(job.parts) + (job.parts == 1 ? " part is" : " parts are") +
                                  " on the web page, one file per chapter, or all in one ZIP."
                            : "";
    std::string kept = job.expires_at ? "The MP3 is kept until " + format_utc(*job.expires_at, "%Y-%m-%d %H:%M UTC") +
                                            "; the link works until then."
                                      : "The MP3 is kept until you delete it.";
    m.text = "Hello,\r\n\r\nthe MP3 of " + quoted_name(job.filename) + " is ready" + facts_text +
             ".\r\n\r\nDownload it here" + sign_in + ":\r\n" + job.download_url + "\r\n\r\n" +
             (parts.empty() ? "" : parts + "\r\n\r\n") + kept + "\r\n\r\nSee it with your other files:\r\n" +
             job.web_url + "\r\n\r\n-- mp3converter\r\n";
    m.html = "<!DOCTYPE html><html><body><p>Hello,</p><p>the MP3 of " + html_escape(quoted_name(job.filename)) +
             " is ready" + html_escape(facts_text) + ".</p><p><a href=\"" + html_escape(job.download_url) +
             "\">Download the MP3</a>" + html_escape(sign_in) + "</p>" +
             (parts.empty() ? "" : "<p>" + html_escape(parts) + "</p>") + "<p>" + html_escape(kept) +
             "</p><p><a href=\"" + html_escape(job.web_url) +
             "\">See it with your other files</a></p><p>&mdash; mp3converter</p>" + "</body></html>\r\n";
    return m;
}

Mail failed_mail(const JobFailed& job, const std::string& from, const std::string& to) {
    Mail m;
    m.from = from;
    m.to = to;
    m.subject = "Converting " + quoted_name(job.filename) + " failed";
    // Each failure of a job is its own message (a retried job may fail again).
    std::string kind = job.occurrence.empty() ? std::string("failed") : job.occurrence.substr(1);
    m.message_id = message_id(job.job_id, kind.c_str(), from);
    m.date = std::chrono::system_clock::now();
    std::string reason = job.reason.empty() ? "the conversion failed" : job.reason;
    std::string retry = job.upload_kept_until
                            ? "Your upload is kept until " + format_utc(*job.upload_kept_until, "%Y-%m-%d %H:%M UTC") +
                                  ": you can retry it (perhaps with other settings) on the web page:"
                            : "You can retry it (perhaps with other settings) on the web page:";
    m.text = "Hello,\r\n\r\n" + quoted_name(job.filename) + " could not be converted to MP3:\r\n\r\n    " + reason +
             "\r\n\r\n" + retry + "\r\n" + job.web_url + "\r\n\r\nJob: " + job.job_id + "\r\n\r\n-- mp3converter\r\n";
    m.html = "<!DOCTYPE html><html><body><p>Hello,</p><p>" + html_escape(quoted_name(job.filename)) +
             " could not be converted to MP3:</p><blockquote>" + html_escape(reason) + "</blockquote><p>" +
             html_escape(retry) + " <a href=\"" + html_escape(job.web_url) +
             "\">Open the job</a></p><p>Job: " + html_escape(job.job_id) +
             "</p><p>&mdash; mp3converter</p></body></html>\r\n";
    return m;
}

Mail summary_mail(const JobSummary& summary, const std::string& from, const std::string& to) {
    Mail m;
    m.from = from;
    m.to = to;
    m.message_id = message_id(summary.digest_id, "summary", from);
    m.date = std::chrono::system_clock::now();
    size_t done = 0, failed = 0;
    for (const auto& e : summary.entries) (e.done ? done : failed)++;
    auto files = [](size_t n) { return std::to_string(n) + (n == 1 ? " file" : " files"); };
    if (failed == 0) {
        m.subject = files(done) + " converted to MP3";
    } else if (done == 0) {
        m.subject = files(failed) + " could not be converted";
    } else {
        m.subject = files(done) + " converted to MP3, " + std::to_string(failed) + " failed";
    }
    std::string sign_in = summary.download_needs_sign_in ? " (sign in first)" : "";
    std::string text = "Hello,\r\n\r\nhere is how your latest uploads went.\r\n";
    std::string html = "<!DOCTYPE html><html><body><p>Hello,</p><p>here is how your latest uploads went.</p><ul>";
    size_t listed = 0;
    for (const auto& e : summary.entries) {
        if (++listed > kSummaryListed) {
            std::string more = "... and " + std::to_string(summary.entries.size() - kSummaryListed) +
                               " more: see them all on the web page.";
            text += "\r\n" + more + "\r\n";
            html += "<li>" + html_escape(more) + "</li>";
            break;
        }
        std::string name = quoted_name(e.filename);
        if (e.done) {
            std::string facts;
            if (e.duration_seconds > 0) facts = clock_duration(e.duration_seconds);
            if (e.mp3_size > 0) facts += (facts.empty() ? "" : ", ") + human_size(e.mp3_size);
            if (e.parts > 0) facts += (facts.empty() ? "" : ", ") + parts_words(e.parts);
            std::string facts_text = facts.empty() ? "" : " (" + facts + ")";
            text +=
                "\r\n* " + name + ": ready" + facts_text + ". Download" + sign_in + ":\r\n  " + e.download_url + "\r\n";
            html += "<li>" + html_escape(name) + ": ready" + html_escape(facts_text) + ". <a href=\"" +
                    html_escape(e.download_url) + "\">Download the MP3</a>" + html_escape(sign_in) + "</li>";
        } else {
            std::string reason = e.reason.empty() ? "the conversion failed" : e.reason;
            text += "\r\n* " + name + ": FAILED: " + reason + "\r\n";
            html += "<li>" + html_escape(name) + ": <strong>failed</strong>: " + html_escape(reason) + "</li>";
        }
    }
    std::string kept = summary.expires_at
                           ? "The MP3s are kept until " + format_utc(*summary.expires_at, "%Y-%m-%d %H:%M UTC") + "."
                           : "The MP3s are kept until you delete them.";
    std::string retry = failed > 0 ? " A failed file can be retried (perhaps with other settings) there." : "";
    text += "\r\n" + kept + "\r\n\r\nSee all your files" + retry + ":\r\n" + summary.web_url +
            "\r\n\r\n-- mp3converter\r\n";
    html += "</ul><p>" + html_escape(kept) + "</p><p><a href=\"" + html_escape(summary.web_url) +
            "\">See all your files</a>" + html_escape(retry) + "</p><p>&mdash; mp3converter</p></body></html>\r\n";
    m.text = text;
    m.html = html;
    return m;
}

void add_unsubscribe(Mail& mail, const Unsubscribe& unsubscribe) {
    mail.unsubscribe_url = unsubscribe.one_click_url;
    std::string why = unsubscribe.summary ? "You get one summary mail per batch of uploads."
                                          : "You get a mail for every file converted.";
    std::string words = why + " To stop these mails, or to choose another way, open:";
    const std::string signature = "-- mp3converter\r\n";
    auto at = mail.text.rfind(signature);
    if (at != std::string::npos) mail.text.insert(at, words + "\r\n" + unsubscribe.page_url + "\r\n\r\n");
    const std::string end = "</body></html>";
    at = mail.html.rfind(end);
    if (at != std::string::npos) {
        mail.html.insert(at, "<p style=\"font-size:small\">" + html_escape(why) + " <a href=\"" +
                                 html_escape(unsubscribe.page_url) +
                                 "\">Stop these mails</a> or choose another way.</p>");
    }
}

namespace {

// The words of each account mail, in AccountMail::Kind's order. A link mail's link is the base URL, `link_path` and
// the token; the notice has no link.
struct AccountWords {
    const char* subject;
    const char* intro;
    const char* link_path;  // nullptr: no link
    const char* link_words;
    const char* outro;
};
constexpr AccountWords kAccountWords[] = {
    {"Activate your mp3converter account",
     "someone, probably you, signed up to mp3converter with this address. Follow this link to activate the account:",
     "/verify?token=", "Activate the account",
     "If you did not sign up, ignore this mail: nothing happens without the link."},
    {"Set a new mp3converter password",
     "someone, probably you, asked to set a new password for the mp3converter account of this address. Follow this "
     "link to choose it:",
     "/#reset=", "Set a new password", "If you did not ask, ignore this mail: your password stays as it is."},
    {"Someone tried to sign up with your address",
     "someone tried to sign up to mp3converter with this address, which already has an account. No second account "
     "was made, and your account is unchanged.",
     nullptr, "", "If it was you and you forgot your password, set a new one with \"Forgot your password?\" at "},
};
static_assert(std::size(kAccountWords) == static_cast<size_t>(messages::AccountMail::Kind::registration_attempt) + 1);

}  // namespace

Mail account_mail(const AccountNotice& notice, const std::string& from, const std::string& to) {
    const AccountWords& words = kAccountWords[static_cast<size_t>(notice.kind)];
    Mail m;
    m.from = from;
    m.to = to;
    m.message_id = message_id(notice.mail_id, "account", from);
    m.date = std::chrono::system_clock::now();
    m.subject = words.subject;
    std::string intro = words.intro, link, outro = words.outro;
    if (words.link_path != nullptr) {
        link = notice.public_base_url + words.link_path + notice.token;
        outro = "The link works once, until " + format_utc(notice.expires_at, "%Y-%m-%d %H:%M UTC") + ". " + outro;
    } else {
        outro += notice.public_base_url + "/. Otherwise, ignore this mail.";
    }
    m.text = "Hello,\r\n\r\n" + intro + "\r\n\r\n" + (link.empty() ? "" : link + "\r\n\r\n") + outro +
             "\r\n\r\n-- mp3converter\r\n";
    m.html =
        "<!DOCTYPE html><html><body><p>Hello,</p><p>" + html_escape(intro) + "</p>" +
        (link.empty() ? "" : "<p><a href=\"" + html_escape(link) + "\">" + html_escape(words.link_words) + "</a></p>") +
        "<p>" + html_escape(outro) + "</p><p>&mdash; mp3converter</p></body></html>\r\n";
    return m;
}

}  // namespace mp3c::notification
