#include "job.hpp"

#include <cmath>

#include "mp3c/enum_names.hpp"
#include "mp3c/messages.hpp"
#include "mp3c/output_options.hpp"
#include "request_parsing.hpp"

namespace mp3c::gateway {

std::string iso8601(int64_t ms) {
    time_t seconds = static_cast<time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return buffer;
}

std::optional<int64_t> parse_iso8601(std::string_view text) {
    // 2026-12-31T12:00:00Z, with optional .sss before the Z.
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
    std::string s(text.substr(0, 40));
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second, &consumed) !=
            6 ||
        consumed != 19) {
        return std::nullopt;
    }
    int millis = 0;
    std::string_view rest = std::string_view(s).substr(19);
    if (!rest.empty() && rest.front() == '.') {
        size_t digits = 1;
        while (digits < rest.size() && digits <= 3 && rest[digits] >= '0' && rest[digits] <= '9') {
            millis = millis * 10 + (rest[digits] - '0');
            ++digits;
        }
        if (digits != 4) return std::nullopt;
        rest.remove_prefix(digits);
    }
    if (rest != "Z" || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    return static_cast<int64_t>(timegm(&tm)) * 1000 + millis;
}

constexpr std::array<std::string_view, 6> kStatusNames = {"queued", "processing", "done",
                                                          "failed", "cancelled",  "expired"};
static_assert(names_all(kStatusNames, JobStatus::expired));

std::string to_string(JobStatus status) { return std::string(name_of(status, kStatusNames, "failed")); }

std::optional<JobStatus> parse_status(std::string_view text) {
    for (auto s : {JobStatus::queued, JobStatus::processing, JobStatus::done, JobStatus::failed, JobStatus::cancelled,
                   JobStatus::expired}) {
        if (to_string(s) == text) return s;
    }
    return std::nullopt;
}

bool is_terminal(JobStatus status) {
    return status == JobStatus::done || status == JobStatus::failed || status == JobStatus::cancelled ||
           status == JobStatus::expired;
}

namespace {
// The options as the converter applies them (defaults filled in); an unreadable record is shown as it is.
nlohmann::json effective_options(const nlohmann::json& stored) {
    auto parsed = OutputOptions::from_json(stored);
    return parsed ? parsed->effective().to_json() : stored;
}
}  // namespace

nlohmann::json Job::to_json() const {
    auto optional = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    return {{"job_id", id},
            {"status", to_string(status)},
            {"progress", progress},
            {"filename", filename},
            {"size", size},
            {"owner", owner_email},
            {"video_fid", video_fid.empty() ? nlohmann::json(nullptr) : nlohmann::json(video_fid)},
            {"mp3_fid", optional(mp3_fid)},
            {"mp3_size", optional(mp3_size)},
            {"duration_seconds", duration_ms ? nlohmann::json(static_cast<double>(*duration_ms) / 1000.0) : nullptr},
            {"error", optional(error)},
            {"reason", optional(reason)},
            {"options", effective_options(options)},
            {"created_at", iso8601(created_ms)},
            {"updated_at", iso8601(updated_ms)},
            {"finished_at", finished_ms ? nlohmann::json(iso8601(*finished_ms)) : nlohmann::json(nullptr)},
            {"status_url", "/jobs/" + id},
            {"download_url", status == JobStatus::done ? nlohmann::json("/jobs/" + id + "/mp3") : nullptr},
            {"callback_url", optional(callback_url)},
            {"expires_at", expires_ms ? nlohmann::json(iso8601(*expires_ms)) : nlohmann::json(nullptr)},
            {"retryable", retryable()},
            {"reused_from", optional(reused_from)},
            {"loudness", loudness_json()},
            {"parts", parts_json()}};
}

nlohmann::json Job::parts_json() const {
    nlohmann::json all = nlohmann::json::array();
    if (status != JobStatus::done) return all;  // an expired job's parts are gone with its MP3
    for (const messages::Part& p : parts) {
        all.push_back({{"index", p.index},
                       {"title", p.title},
                       {"start_seconds", std::round(p.start_seconds * 1000) / 1000},
                       {"duration_seconds", std::round(p.duration_seconds * 1000) / 1000},
                       {"size", p.size},
                       {"filename", part_filename(p)},
                       {"download_url", "/jobs/" + id + "/parts/" + std::to_string(p.index)}});
    }
    return all;
}

const messages::Part* Job::part(int index) const {
    for (const messages::Part& p : parts)
        if (p.index == index) return &p;
    return nullptr;
}

std::string Job::part_filename(const messages::Part& part) const {
    std::string whole = mp3_filename(filename);
    return whole.substr(0, whole.size() - 4) + " - " +
           messages::part_filename(part.index, static_cast<int>(parts.size()), part.title);
}

nlohmann::json Job::loudness_json() const {
    if (!loudness) return nullptr;
    auto j = nlohmann::json::parse(*loudness, nullptr, false);
    return j.is_object() ? j : nlohmann::json(nullptr);
}

std::optional<StatusEvent> StatusEvent::parse(const std::string& body) {
    auto parsed = messages::StatusEvent::parse(body);
    if (!parsed) return std::nullopt;
    const messages::StatusEvent& m = parsed.value();
    StatusEvent e;
    e.job_id = m.job_id;
    e.status = parse_status(messages::to_string(m.status)).value_or(JobStatus::failed);  // the same four words
    e.progress = m.progress;
    e.mp3_fid = m.mp3_fid;
    e.mp3_size = m.mp3_size;
    if (m.duration_seconds) e.duration_ms = static_cast<uint64_t>(*m.duration_seconds * 1000.0);
    if (m.waveform) e.waveform = m.waveform->to_json().dump();
    if (m.loudness) e.loudness = m.loudness->to_json().dump();
    if (!m.parts.empty()) {
        e.parts = messages::parts_to_json(m.parts).dump();
        for (const auto& part : m.parts) e.parts_size += part.size;
    }
    if (m.error) {
        // The column holds 1000 characters; cut on a character boundary.
        std::string error = *m.error;
        if (error.size() > 1000) {
            size_t cut = 1000;
            while (cut > 0 && (static_cast<unsigned char>(error[cut]) & 0xc0) == 0x80) --cut;
            error.resize(cut);
        }
        e.error = std::move(error);
    }
    e.reason = m.reason;
    e.source_deleted = m.source_deleted;
    e.at_ms = m.at;
    return e;
}

}  // namespace mp3c::gateway
