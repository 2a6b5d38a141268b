#pragma once

#include <string>

#include "handler_support.hpp"
#include "job_events.hpp"
#include "mp3c/amqp.hpp"
#include "mp3c/metrics.hpp"

namespace mp3c::gateway {

// The converter's status events (docs/messaging.md): every replica feeds its event streams with them; the one
// consumer of the shared queue also applies them to the job records.
class StatusEventHandler {
  public:
    // `dispatch` is woken when a job ends: its owner's next job may go.
    StatusEventHandler(Jobs& jobs, storage::BlobStore& mp3s, JobEventHub& hub, JobDispatch& dispatch,
                       const Clock& clock, metrics::Registry& registry);

    // Throws while the job records cannot be used (the message is requeued and comes back).
    amqp::Consumer::Outcome handle(const std::string& body, bool update_records);

  private:
    Jobs& jobs_;
    storage::BlobStore& mp3s_;
    JobEventHub& hub_;
    JobDispatch& dispatch_;
    const Clock& clock_;
    metrics::Family<metrics::Counter>& events_;  // by status
};

}  // namespace mp3c::gateway
