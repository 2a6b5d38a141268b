#include "mp3c/messages.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "mp3c/crypto.hpp"

namespace mp3c::messages {

namespace {

using json = nlohmann::json;

// Job and file ids: 24 lower-case hexadecimal digits (storage::new_id makes them; storage::is_valid_id checks them
// where files are opened). Checked here too, so that a contract does not pull in a storage client.
bool is_id(std::string_view text) {
    return text.size() == 24 && std::all_of(text.begin(), text.end(),
                                            [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Reads one message body: the object, its version, and typed fields with the problem named when one is wrong.
class Reader {
  public:
    explicit Reader(std::string_view body) : j_(json::parse(body, nullptr, false)) {
        if (j_.is_discarded() || !j_.is_object()) {
            fail("", "the body is not a JSON object");
            return;
        }
        if (auto v = j_.find("v"); v != j_.end()) {
            if (!v->is_number_unsigned() || v->get<uint64_t>() == 0) {
                fail("v", "must be a positive whole number");
            } else if (v->get<uint64_t>() > static_cast<uint64_t>(kVersion)) {
                fail("v", "version " + std::to_string(v->get<uint64_t>()) + " is newer than this service reads (" +
                              std::to_string(kVersion) + ")");
            }
        }
    }

    const std::optional<Problem>& problem() const { return problem_; }

    // Required fields: a missing or mistyped one is the message's problem.
    std::string text(const char* key) {
        if (problem_) return {};
        auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return fail(key, "missing"), std::string();
        if (!it->is_string()) return fail(key, "must be a string"), std::string();
        return it->get<std::string>();
    }
    std::string id(const char* key) {
        std::string value = text(key);
        if (!problem_ && !is_id(value)) fail(key, "must be 24 lower-case hexadecimal digits");
        return value;
    }

    // Optional fields: absent, null or mistyped count as absent (the contract's leniency for additions).
    std::optional<std::string> optional_text(const char* key) const {
        return optional<std::string>(key, &json::is_string);
    }
    std::optional<uint64_t> optional_unsigned(const char* key) const {
        return optional<uint64_t>(key, &json::is_number_unsigned);
    }
    std::optional<double> optional_number(const char* key) const { return optional<double>(key, &json::is_number); }
    std::optional<int64_t> optional_integer(const char* key) const {
        return optional<int64_t>(key, &json::is_number_integer);
    }
    std::optional<bool> optional_boolean(const char* key) const { return optional<bool>(key, &json::is_boolean); }
    int attempt() const {
        return static_cast<int>(std::clamp<int64_t>(optional_integer("attempt").value_or(1), 1, 1'000'000));
    }
    const json& raw(const char* key) const {
        static const json null;
        auto it = j_.find(key);
        return it == j_.end() ? null : *it;
    }

    template <class T>
    std::optional<T> optional(const char* key, bool (json::*has_type)() const noexcept) const {
        auto it = j_.find(key);
        if (it == j_.end() || !((*it).*has_type)()) return std::nullopt;
        return it->template get<T>();
    }

    void fail(const std::string& field, const std::string& what) {
        if (!problem_) problem_ = Problem{field, what};
    }

  private:
    json j_;
    std::optional<Problem> problem_;
};

// In JobState's order.
constexpr std::string_view kStateNames[] = {"processing", "done", "failed", "cancelled", "queued"};

std::optional<JobState> parse_state(const std::string& text) {
    for (size_t i = 0; i < std::size(kStateNames); ++i) {
        if (text == kStateNames[i]) return static_cast<JobState>(i);
    }
    return std::nullopt;
}

bool is_reason_word(const std::string& s) {
    return !s.empty() && s.size() <= 64 &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

template <class T>
void put_optional(json& j, const char* key, const std::optional<T>& value) {
    if (value) j[key] = *value;
}

void put_attempt(json& j, int attempt) {
    if (attempt > 1) j["attempt"] = attempt;  // absent means 1, as the first delivery has always been written
}

}  // namespace

std::string Problem::describe() const { return field.empty() ? what : field + ": " + what; }

JobNamed job_named_in(std::string_view body) {
    Reader r(body);  // whatever its problem, the fields that are there and well formed still count
    JobNamed named;
    if (auto id = r.optional_text("job_id"); id && is_id(*id)) named.job_id = id;
    named.username = r.optional_text("username");
    named.trace_id = r.optional_text("trace_id");
    return named;
}

std::string_view to_string(JobState state) { return kStateNames[static_cast<size_t>(state)]; }

// --- video -----------------------------------------------------------------------------------------------------

std::string VideoJob::to_body() const {
    json j = {{"v", kVersion},        {"video_fid", video_fid},
              {"mp3_fid", nullptr},  // the original's field, always null here
              {"username", username}, {"job_id", job_id},
              {"user_id", user_id},   {"filename", filename},
              {"size", size},         {"options", options.to_json()},
              {"trace_id", trace_id}, {"submitted_at", submitted_at}};
    put_optional(j, "callback_url", callback_url);
    put_optional(j, "max_output_bytes", max_output_bytes);
    put_optional(j, "ticket", ticket);
    put_attempt(j, attempt);
    return j.dump();
}

Parsed<VideoJob> VideoJob::parse(std::string_view body) {
    Reader r(body);
    VideoJob m;
    m.job_id = r.id("job_id");
    m.video_fid = r.id("video_fid");
    m.username = r.text("username");
    if (!r.problem()) {
        auto options = OutputOptions::from_json(r.raw("options"));  // absent (the original's message): defaults
        if (!options)
            r.fail("options", "must be an options object with valid values");
        else
            m.options = *options;
    }
    if (r.problem()) return *r.problem();
    m.user_id = r.optional_text("user_id").value_or("");
    m.filename = r.optional_text("filename").value_or("");
    m.size = r.optional_unsigned("size").value_or(0);
    m.trace_id = r.optional_text("trace_id").value_or("");
    m.submitted_at = r.optional_integer("submitted_at").value_or(0);
    m.callback_url = r.optional_text("callback_url");
    m.max_output_bytes = r.optional_unsigned("max_output_bytes");
    m.ticket = r.optional_text("ticket");
    m.attempt = r.attempt();
    return m;
}

// --- mp3 -------------------------------------------------------------------------------------------------------

std::string Mp3Ready::to_body() const {
    json j = {{"v", kVersion},        {"video_fid", video_fid}, {"mp3_fid", mp3_fid},
              {"username", username}, {"job_id", job_id},       {"user_id", user_id},
              {"filename", filename}, {"mp3_size", mp3_size},   {"duration_seconds", duration_seconds},
              {"trace_id", trace_id}};
    put_optional(j, "callback_url", callback_url);
    put_optional(j, "ticket", ticket);
    if (parts > 0) j["parts"] = parts;
    put_attempt(j, attempt);
    return j.dump();
}

Parsed<Mp3Ready> Mp3Ready::parse(std::string_view body) {
    Reader r(body);
    Mp3Ready m;
    if (r.problem()) return *r.problem();
    bool has_job_id = r.optional_text("job_id").has_value();
    m.job_id = r.id(has_job_id ? "job_id" : "mp3_fid");
    m.username = r.text("username");
    if (r.problem()) return *r.problem();
    m.mp3_fid = r.optional_text("mp3_fid").value_or(m.job_id);
    m.video_fid = r.optional_text("video_fid").value_or("");
    m.user_id = r.optional_text("user_id").value_or("");
    m.filename = r.optional_text("filename").value_or("");
    m.mp3_size = r.optional_unsigned("mp3_size").value_or(0);
    m.duration_seconds = r.optional_number("duration_seconds").value_or(0);
    m.trace_id = r.optional_text("trace_id").value_or("");
    m.callback_url = r.optional_text("callback_url");
    m.ticket = r.optional_text("ticket");
    m.parts = static_cast<int>(std::min<uint64_t>(r.optional_unsigned("parts").value_or(0), Part::kMaxParts));
    m.attempt = r.attempt();
    return m;
}

// --- parts -----------------------------------------------------------------------------------------------------

json Part::to_json() const {
    return {{"index", index},
            {"title", title},
            {"start_seconds", std::round(start_seconds * 1000) / 1000},
            {"duration_seconds", std::round(duration_seconds * 1000) / 1000},
            {"size", size},
            {"fid", fid}};
}

std::optional<Part> Part::from_json(const json& j) {
    if (!j.is_object()) return std::nullopt;
    auto index = j.find("index"), title = j.find("title"), start = j.find("start_seconds"),
         duration = j.find("duration_seconds"), size = j.find("size"), fid = j.find("fid");
    if (index == j.end() || !index->is_number_integer() || title == j.end() || !title->is_string() ||
        start == j.end() || !start->is_number() || duration == j.end() || !duration->is_number() || size == j.end() ||
        !size->is_number_unsigned() || fid == j.end() || !fid->is_string()) {
        return std::nullopt;
    }
    Part p;
    int64_t n = index->get<int64_t>();
    if (n < 1 || n > Part::kMaxParts) return std::nullopt;
    p.index = static_cast<int>(n);
    p.title = title->get<std::string>();
    p.start_seconds = start->get<double>();
    p.duration_seconds = duration->get<double>();
    p.size = size->get<uint64_t>();
    p.fid = fid->get<std::string>();
    if (p.title.empty() || p.title.size() > 1000 || !is_id(p.fid)) return std::nullopt;
    if (!(p.start_seconds >= 0 && p.start_seconds < 1e7) || !(p.duration_seconds >= 0 && p.duration_seconds < 1e7)) {
        return std::nullopt;
    }
    return p;
}

json parts_to_json(const std::vector<Part>& parts) {
    json all = json::array();
    for (const Part& part : parts) all.push_back(part.to_json());
    return all;
}

std::optional<std::vector<Part>> parts_from_json(const json& j) {
    if (!j.is_array() || j.size() > static_cast<size_t>(Part::kMaxParts)) return std::nullopt;
    std::vector<Part> parts;
    for (const json& item : j) {
        auto part = Part::from_json(item);
        if (!part || part->index != static_cast<int>(parts.size()) + 1) return std::nullopt;
        parts.push_back(std::move(*part));
    }
    return parts;
}

std::string part_id(std::string_view job_id, int index) {
    return crypto::to_hex(crypto::sha256(std::string(job_id) + "/part/" + std::to_string(index))).substr(0, 24);
}

std::string record_id(std::string_view job_id) { return part_id(job_id, 0); }

std::string ConversionRecord::to_json_text() const {
    json j = {{"v", kVersion}, {"duration_seconds", duration_seconds}, {"parts", parts_to_json(parts)}};
    if (waveform) j["waveform"] = waveform->to_json();
    if (loudness) j["loudness"] = loudness->to_json();
    return j.dump();
}

std::optional<ConversionRecord> ConversionRecord::from_json_text(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    ConversionRecord r;
    auto parts = parts_from_json(j.value("parts", json::array()));
    if (!parts) return std::nullopt;
    r.parts = std::move(*parts);
    auto duration = j.find("duration_seconds");
    if (duration != j.end() && duration->is_number())
        r.duration_seconds = std::clamp(duration->get<double>(), 0.0, 1e7);
    if (j.contains("waveform")) r.waveform = Waveform::from_json(j["waveform"]);
    if (j.contains("loudness")) r.loudness = Loudness::from_json(j["loudness"]);
    return r;
}

std::string part_filename(int index, int count, std::string_view title) {
    std::string name;
    for (char c : title) {
        auto u = static_cast<unsigned char>(c);
        bool refused = u < 0x20 || u == 0x7f || std::string_view("/\\:*?\"<>|").find(c) != std::string_view::npos;
        name += refused ? '_' : c;
    }
    if (name.find_first_not_of(". ") == std::string::npos) name = "Part " + std::to_string(index);
    std::string number = std::to_string(index);
    size_t digits = std::max<size_t>(2, std::to_string(std::max(count, index)).size());
    if (number.size() < digits) number.insert(0, digits - number.size(), '0');
    return number + " - " + name + ".mp3";
}

// --- status events ---------------------------------------------------------------------------------------------

// --- waveforms -------------------------------------------------------------------------------------------------

json Waveform::to_json() const {
    json points = json::array();
    for (float peak : peaks)
        points.push_back(std::round(std::clamp(static_cast<double>(peak), 0.0, 1.0) * 1000) / 1000);
    return {{"seconds_per_point", seconds_per_point}, {"peaks", std::move(points)}};
}

std::optional<Waveform> Waveform::from_json(const json& j) {
    if (!j.is_object()) return std::nullopt;
    auto step = j.find("seconds_per_point");
    auto peaks = j.find("peaks");
    if (step == j.end() || !step->is_number() || peaks == j.end() || !peaks->is_array()) return std::nullopt;
    Waveform w;
    w.seconds_per_point = step->get<double>();
    if (!std::isfinite(w.seconds_per_point) || w.seconds_per_point <= 0) return std::nullopt;
    if (peaks->empty() || peaks->size() > kMaxPoints) return std::nullopt;
    w.peaks.reserve(peaks->size());
    for (const json& peak : *peaks) {
        if (!peak.is_number()) return std::nullopt;
        double value = peak.get<double>();
        if (!(value >= 0 && value <= 1)) return std::nullopt;
        w.peaks.push_back(static_cast<float>(value));
    }
    return w;
}

// --- loudness --------------------------------------------------------------------------------------------------

json Loudness::to_json() const {
    auto level = [](const std::optional<double>& v) {
        return v && std::isfinite(*v) ? json(std::round(*v * 10) / 10) : json(nullptr);
    };
    return {{"target_lufs", target_lufs},
            {"true_peak_ceiling_dbtp", true_peak_ceiling_dbtp},
            {"input_lufs", level(input_lufs)},
            {"input_true_peak_dbtp", level(input_true_peak_dbtp)},
            {"output_lufs", level(output_lufs)},
            {"output_true_peak_dbtp", level(output_true_peak_dbtp)},
            {"gain_db", std::round(gain_db * 10) / 10},
            {"limited", limited}};
}

std::optional<Loudness> Loudness::from_json(const json& j) {
    if (!j.is_object()) return std::nullopt;
    auto number = [&](const char* key, double low, double high) -> std::optional<std::optional<double>> {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return std::optional<double>();
        if (!it->is_number()) return std::nullopt;
        double v = it->get<double>();
        if (!(v >= low && v <= high)) return std::nullopt;
        return std::optional<double>(v);
    };
    Loudness l;
    auto target = number("target_lufs", -100, 0), ceiling = number("true_peak_ceiling_dbtp", -100, 0),
         gain = number("gain_db", -200, 200);
    if (!target || !*target || !ceiling || !*ceiling || !gain) return std::nullopt;
    l.target_lufs = **target;
    l.true_peak_ceiling_dbtp = **ceiling;
    l.gain_db = gain->value_or(0);
    for (auto [key, field] : {std::pair{"input_lufs", &l.input_lufs}, std::pair{"output_lufs", &l.output_lufs},
                              std::pair{"input_true_peak_dbtp", &l.input_true_peak_dbtp},
                              std::pair{"output_true_peak_dbtp", &l.output_true_peak_dbtp}}) {
        auto v = number(key, -200, 200);
        if (!v) return std::nullopt;
        *field = *v;
    }
    auto limited = j.find("limited");
    l.limited = limited != j.end() && limited->is_boolean() && limited->get<bool>();
    return l;
}

std::string StatusEvent::routing_key() const { return "job." + std::string(to_string(status)); }

std::string StatusEvent::to_body() const {
    json j = {{"v", kVersion},        {"job_id", job_id},     {"status", to_string(status)}, {"at", at},
              {"trace_id", trace_id}, {"username", username}, {"filename", filename}};
    if (status == JobState::processing || status == JobState::done) j["progress"] = progress;
    put_optional(j, "mp3_fid", mp3_fid);
    put_optional(j, "mp3_size", mp3_size);
    put_optional(j, "duration_seconds", duration_seconds);
    if (waveform) j["waveform"] = waveform->to_json();
    if (loudness) j["loudness"] = loudness->to_json();
    if (!parts.empty()) j["parts"] = parts_to_json(parts);
    put_optional(j, "error", error);
    put_optional(j, "reason", reason);
    if (status == JobState::done) j["source_deleted"] = source_deleted;
    put_optional(j, "callback_url", callback_url);
    put_optional(j, "ticket", ticket);
    put_attempt(j, attempt);
    return j.dump();
}

Parsed<StatusEvent> StatusEvent::parse(std::string_view body) {
    Reader r(body);
    StatusEvent e;
    e.job_id = r.id("job_id");
    std::string status = r.text("status");
    if (r.problem()) return *r.problem();
    auto state = parse_state(status);
    if (!state) return Problem{"status", "must be processing, done, failed, cancelled or queued"};
    e.status = *state;
    if (auto progress = r.optional_number("progress")) e.progress = static_cast<int>(std::clamp(*progress, 0.0, 100.0));
    if (auto mp3 = r.optional_text("mp3_fid")) {
        if (!is_id(*mp3)) return Problem{"mp3_fid", "must be 24 lower-case hexadecimal digits"};
        e.mp3_fid = *mp3;
    }
    if (e.status == JobState::done && !e.mp3_fid) return Problem{"mp3_fid", "a done event names its MP3"};
    e.mp3_size = r.optional_unsigned("mp3_size");
    if (auto d = r.optional_number("duration_seconds")) e.duration_seconds = std::max(0.0, *d);
    if (e.status == JobState::done) {  // a bad waveform or loudness counts as absent
        e.waveform = Waveform::from_json(r.raw("waveform"));
        e.loudness = Loudness::from_json(r.raw("loudness"));
        // Parts are stored under the ids the job's own id gives them: an event naming any other blob (another
        // user's MP3) as a part is not believed, so the gateway never serves or deletes it as one.
        if (auto parts = parts_from_json(r.raw("parts"))) {
            bool own = std::all_of(parts->begin(), parts->end(),
                                   [&](const Part& p) { return p.fid == part_id(e.job_id, p.index); });
            if (own) e.parts = std::move(*parts);
        }
    }
    e.error = r.optional_text("error");
    if (auto reason = r.optional_text("reason"); reason && is_reason_word(*reason)) e.reason = *reason;
    e.source_deleted = r.optional_boolean("source_deleted").value_or(false);
    e.at = r.optional_integer("at").value_or(0);
    e.trace_id = r.optional_text("trace_id").value_or("");
    e.username = r.optional_text("username").value_or("");
    e.filename = r.optional_text("filename").value_or("");
    e.callback_url = r.optional_text("callback_url");
    e.ticket = r.optional_text("ticket");
    e.attempt = r.attempt();
    return e;
}

// --- job tickets -----------------------------------------------------------------------------------------------

std::string job_ticket(std::string_view key, const std::string& job_id, const std::string& username,
                       const std::optional<std::string>& callback_url) {
    // Each field on its own line, the webhook last: none of them holds a newline (ids, an address, a checked URL).
    return crypto::to_hex(crypto::hmac_sha256(
        key, "mp3converter job ticket\n" + job_id + "\n" + username + "\n" + callback_url.value_or("")));
}

bool valid_job_ticket(std::string_view key, const std::optional<std::string>& ticket, const std::string& job_id,
                      const std::string& username, const std::optional<std::string>& callback_url) {
    return ticket && crypto::constant_time_equal(*ticket, job_ticket(key, job_id, username, callback_url));
}

std::string mail_link_signature(std::string_view key, const std::string& job_id) {
    return crypto::to_hex(crypto::hmac_sha256(key, "mp3converter mail link\n" + job_id));
}

std::string mail_link_path(std::string_view key, const std::string& job_id) {
    return "/jobs/" + job_id + "/mp3?signature=" + mail_link_signature(key, job_id);
}

// --- webhook tasks ---------------------------------------------------------------------------------------------

std::string WebhookTask::to_body() const {
    json j = {{"v", kVersion},
              {"job_id", job_id},
              {"status", to_string(status)},
              {"mp3_url", mp3_url ? json(*mp3_url) : json(nullptr)},
              {"error", error ? json(*error) : json(nullptr)},
              {"callback_url", callback_url},
              {"trace_id", trace_id}};
    if (!username.empty()) j["username"] = username;
    if (expires_at) j["expires_at"] = *expires_at;
    if (!key.empty()) j["key"] = key;
    put_attempt(j, attempt);
    return j.dump();
}

std::string WebhookTask::payload() const {
    json j{{"job_id", job_id},
           {"status", to_string(status)},
           {"mp3_url", mp3_url ? json(*mp3_url) : json(nullptr)},
           {"error", error ? json(*error) : json(nullptr)}};
    if (expires_at) j["expires_at"] = *expires_at;
    return j.dump();
}

Parsed<WebhookTask> WebhookTask::parse(std::string_view body) {
    Reader r(body);
    WebhookTask t;
    t.job_id = r.id("job_id");
    std::string status = r.text("status");
    t.callback_url = r.text("callback_url");
    if (r.problem()) return *r.problem();
    auto state = parse_state(status);
    if (state != JobState::done && state != JobState::failed) return Problem{"status", "must be done or failed"};
    t.status = *state;
    t.mp3_url = r.optional_text("mp3_url");
    t.expires_at = r.optional_text("expires_at");
    t.error = r.optional_text("error");
    t.trace_id = r.optional_text("trace_id").value_or("");
    t.username = r.optional_text("username").value_or("");
    t.key = r.optional_text("key").value_or("");
    if (t.key.size() > 64) return Problem{"key", "at most 64 characters"};
    t.attempt = r.attempt();
    return t;
}

// --- account mails -----------------------------------------------------------------------------------------------

namespace {
// In AccountMail::Kind's order.
constexpr std::string_view kMailKinds[] = {"verify_email", "reset_password", "registration_attempt"};
}  // namespace

std::string_view to_string(AccountMail::Kind kind) { return kMailKinds[static_cast<size_t>(kind)]; }

std::string AccountMail::to_body() const {
    json j = {
        {"v", kVersion}, {"mail_id", mail_id}, {"kind", to_string(kind)}, {"email", email}, {"trace_id", trace_id}};
    if (!token.empty()) j["token"] = token;
    if (expires_at != 0) j["expires_at"] = expires_at;
    put_attempt(j, attempt);
    return j.dump();
}

Parsed<AccountMail> AccountMail::parse(std::string_view body) {
    Reader r(body);
    AccountMail m;
    m.mail_id = r.id("mail_id");
    std::string kind = r.text("kind");
    m.email = r.text("email");
    if (r.problem()) return *r.problem();
    auto known = std::find(std::begin(kMailKinds), std::end(kMailKinds), kind);
    if (known == std::end(kMailKinds)) return Problem{"kind", "unknown kind \"" + kind.substr(0, 40) + "\""};
    m.kind = static_cast<Kind>(known - std::begin(kMailKinds));
    m.token = r.optional_text("token").value_or("");
    if (m.kind != Kind::registration_attempt && m.token.empty()) return Problem{"token", "missing: the mail is a link"};
    m.expires_at = r.optional_integer("expires_at").value_or(0);
    m.trace_id = r.optional_text("trace_id").value_or("");
    m.attempt = r.attempt();
    return m;
}

std::string WebhookSecrets::to_body() const { return json{{"v", kVersion}, {"secrets", secrets}}.dump(); }

Parsed<WebhookSecrets> WebhookSecrets::parse(std::string_view body) {
    Reader r(body);
    if (r.problem()) return *r.problem();
    const json& list = r.raw("secrets");
    if (!list.is_array()) return Problem{"secrets", "missing or not an array"};
    WebhookSecrets s;
    for (const auto& secret : list) {
        if (!secret.is_string()) return Problem{"secrets", "an entry that is not a string"};
        s.secrets.push_back(secret.get<std::string>());
    }
    return s;
}

// --- mail preferences --------------------------------------------------------------------------------------------

namespace {
constexpr std::string_view kJobMails[] = {"each", "summary", "off"};  // in JobMails' order
}  // namespace

std::string_view to_string(JobMails mails) { return kJobMails[static_cast<size_t>(mails)]; }

std::optional<JobMails> parse_job_mails(std::string_view text) {
    auto known = std::find(std::begin(kJobMails), std::end(kJobMails), text);
    if (known == std::end(kJobMails)) return std::nullopt;
    return static_cast<JobMails>(known - std::begin(kJobMails));
}

std::string job_mails_choices() {
    std::string out;
    for (auto name : kJobMails) out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

std::string MailPreferences::to_body() const {
    return json{{"v", kVersion}, {"job_mails", to_string(job_mails)}, {"unsubscribe_token", unsubscribe_token}}.dump();
}

Parsed<MailPreferences> MailPreferences::parse(std::string_view body) {
    Reader r(body);
    std::string mails = r.text("job_mails");
    MailPreferences p;
    p.unsubscribe_token = r.text("unsubscribe_token");
    if (r.problem()) return *r.problem();
    auto known = parse_job_mails(mails);
    if (!known) return Problem{"job_mails", "unknown choice \"" + mails.substr(0, 40) + "\""};
    p.job_mails = *known;
    return p;
}

// --- access token claims -----------------------------------------------------------------------------------------

json AccessClaims::to_json() const {
    json j = {{"username", username}, {"sub", std::to_string(user_id)}, {"admin", admin}};
    if (!jti.empty()) j["jti"] = jti;
    return j;
}

Parsed<AccessClaims> AccessClaims::from_json(const json& claims) {
    if (!claims.is_object()) return Problem{"", "the claims are not a JSON object"};
    AccessClaims c;
    auto username = claims.find("username");
    if (username == claims.end() || !username->is_string()) return Problem{"username", "missing or not a string"};
    c.username = username->get<std::string>();
    auto sub = claims.find("sub");
    if (sub == claims.end() || !sub->is_string()) return Problem{"sub", "missing or not a string"};
    const std::string& text = sub->get_ref<const std::string&>();
    if (text.empty() || text.size() > 19 ||
        !std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        return Problem{"sub", "must be a decimal user id"};
    }
    c.user_id = std::stoull(text);
    auto admin = claims.find("admin");
    c.admin = admin != claims.end() && admin->is_boolean() && admin->get<bool>();
    if (auto jti = claims.find("jti");
        jti != claims.end() && jti->is_string() && jti->get_ref<const std::string&>().size() <= 64) {
        c.jti = jti->get<std::string>();
    }
    if (auto iat = claims.find("iat"); iat != claims.end() && iat->is_number_integer())
        c.issued_at = iat->get<int64_t>();
    if (auto exp = claims.find("exp"); exp != claims.end() && exp->is_number_integer())
        c.expires_at = exp->get<int64_t>();
    return c;
}

std::string Revocations::to_body() const {
    json j = {{"v", 1}, {"cursor_ms", cursor_ms}, {"cutoffs", json::array()}, {"tokens", json::array()}};
    for (const auto& c : cutoffs) j["cutoffs"].push_back({{"user_id", c.user_id}, {"valid_after", c.valid_after}});
    for (const auto& t : tokens) j["tokens"].push_back({{"jti", t.jti}, {"expires_at", t.expires_at}});
    return j.dump();
}

Parsed<Revocations> Revocations::parse(std::string_view body) {
    auto j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Problem{"", "not a JSON object"};
    if (auto v = j.find("v"); v == j.end() || !v->is_number_integer() || v->get<int>() != 1) {
        return Problem{"v", "missing or not version 1"};
    }
    Revocations r;
    auto cursor = j.find("cursor_ms");
    if (cursor == j.end() || !cursor->is_number_integer()) return Problem{"cursor_ms", "missing or not a whole number"};
    r.cursor_ms = cursor->get<int64_t>();
    auto cutoffs = j.find("cutoffs");
    auto tokens = j.find("tokens");
    if (cutoffs == j.end() || !cutoffs->is_array()) return Problem{"cutoffs", "missing or not an array"};
    if (tokens == j.end() || !tokens->is_array()) return Problem{"tokens", "missing or not an array"};
    for (const auto& c : *cutoffs) {
        if (!c.is_object() || !c.value("user_id", json()).is_number_unsigned() ||
            !c.value("valid_after", json()).is_number_integer()) {
            return Problem{"cutoffs", "an entry without a user_id and a valid_after"};
        }
        r.cutoffs.push_back({c["user_id"].get<uint64_t>(), c["valid_after"].get<int64_t>()});
    }
    for (const auto& t : *tokens) {
        if (!t.is_object() || !t.value("jti", json()).is_string() ||
            !t.value("expires_at", json()).is_number_integer()) {
            return Problem{"tokens", "an entry without a jti and an expires_at"};
        }
        r.tokens.push_back({t["jti"].get<std::string>(), t["expires_at"].get<int64_t>()});
    }
    return r;
}

}  // namespace mp3c::messages
