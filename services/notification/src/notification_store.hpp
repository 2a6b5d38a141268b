#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "mp3c/mysql.hpp"

// What has been sent for which job, in the notification service's own database: the record that turns
// at-least-once delivery of messages into at-most-one mail (and webhook call) per job.
namespace mp3c::notification {

enum class Channel { email, webhook };

class NotificationStore {
  public:
    explicit NotificationStore(mysql::Pool& pool) : pool_(pool) {}
    static std::vector<mysql::Migration> migrations();

    // The channel's state for the job ("sending", "queued", "sent", "failed", and for mails "skipped" (the owner
    // turned job mails off) or "summarized" (told in a summary mail)), nullopt when nothing was recorded.
    // Throws mysql::Error.
    std::optional<std::string> state(const std::string& job_id, Channel channel);
    void set(const std::string& job_id, Channel channel, const std::string& state, const std::string& detail = {});

    enum class Claim {
        claimed,  // this caller sends now: the state is "sending" with this moment as its time
        settled,  // sent, failed, skipped or summarized already: nothing to do
        busy,     // another delivery is sending it right now (state "sending", younger than the lease)
    };
    // Takes the job's channel for sending, atomically: two replicas given the same job at the same moment cannot both
    // send. Nothing recorded, "queued", or "sending" for longer than lease (its sender died) can be claimed.
    Claim claim(const std::string& job_id, Channel channel, std::chrono::milliseconds lease);

  private:
    mysql::Pool& pool_;
};

}  // namespace mp3c::notification
