#include "status_event_handler.hpp"

#include "handler_support.hpp"
#include "mp3c/log.hpp"
#include "mp3c/mysql.hpp"

namespace mp3c::gateway {

using Outcome = amqp::Consumer::Outcome;

StatusEventHandler::StatusEventHandler(Jobs& jobs, storage::BlobStore& mp3s, JobEventHub& hub, JobDispatch& dispatch,
                                       const Clock& clock, metrics::Registry& registry)
    : jobs_(jobs),
      mp3s_(mp3s),
      hub_(hub),
      dispatch_(dispatch),
      clock_(clock),
      events_(registry.counter("gateway_status_events_total", "Status events received.", {"status"})) {}

Outcome StatusEventHandler::handle(const std::string& body, bool update_records) {
    auto event = StatusEvent::parse(body);
    if (!event) {
        log::warn("invalid status event dead-lettered", {{"body", body.substr(0, 500)}});
        return Outcome::dead_letter;
    }
    if (event->at_ms == 0) event->at_ms = clock_.now_ms();
    hub_.update(*event);
    if (!update_records) return Outcome::ack;
    events_.with({to_string(event->status)}).inc();
    if (!jobs_.ready()) throw std::runtime_error("database schema not ready");  // requeued after a pause
    bool changed = false;
    try {
        changed = jobs_.apply(*event);
    } catch (const mysql::Error& e) {
        if (e.unavailable()) throw;  // requeued: the database comes back
        // The database refuses this event for good (an MP3 id another job already has): do not loop on it.
        log::warn("status event refused by the database, dead-lettered",
                  {{"job_id", event->job_id}, {"error", e.what()}});
        return Outcome::dead_letter;
    }
    if (changed && event->source_deleted) jobs_.forget_video(event->job_id);
    if (changed && is_terminal(event->status)) dispatch_.wake();
    if (!changed && event->status == JobStatus::done && event->mp3_fid) {
        // A conversion that finished after its job was cancelled or deleted: its MP3, parts and record belong to
        // nobody.
        auto job = jobs_.find(event->job_id);
        if (!job || (job->mp3_fid != event->mp3_fid && job->status != JobStatus::done)) {
            Job orphan;
            orphan.id = event->job_id;
            orphan.mp3_fid = event->mp3_fid;
            if (event->parts) {
                orphan.parts = messages::parts_from_json(nlohmann::json::parse(*event->parts, nullptr, false))
                                   .value_or(std::vector<messages::Part>{});
            }
            for (const auto& id : mp3_store_ids(orphan)) remove_blob(mp3s_, id);
        }
    }
    return Outcome::ack;
}

}  // namespace mp3c::gateway
