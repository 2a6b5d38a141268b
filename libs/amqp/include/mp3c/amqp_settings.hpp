#pragma once

// RabbitMQ's settings (the gateway, the converter and the notification service): read by amqp::options_from_env and
// amqp::topology_from_env.
#include "mp3c/config.hpp"

namespace mp3c::amqp::settings {

using config::Kind;
using config::Setting;

inline constexpr Setting kUrl{
    .name = "AMQP_URL",
    .kind = Kind::secret,
    .fallback = "amqp://guest:guest@127.0.0.1:5672/",
    .help =
        "The broker, as `amqp://user:password@host:port/vhost` (a secret: directly or from a file). Must start with "
        "`amqp://`; TLS (`amqps://`) is not supported. An empty vhost (`.../`) means `/`. RabbitMQ accepts `guest` "
        "only from the same machine."};
inline constexpr Setting kHeartbeat{
    .name = "AMQP_HEARTBEAT",
    .kind = Kind::duration,
    .fallback = "30s",
    .help =
        "Heartbeat interval asked of the broker, so that a dead connection is noticed. A duration, used in whole "
        "seconds (rounded down); `0` turns heartbeats off."};
inline constexpr Setting kConfirmTimeout{.name = "AMQP_CONFIRM_TIMEOUT",
                                         .kind = Kind::duration,
                                         .fallback = "10s",
                                         .help =
                                             "How long a publish waits for the broker's confirm before it counts "
                                             "as failed (the gateway then rolls the upload back).",
                                         .min = 100};
inline constexpr Setting kNamePrefix{
    .name = "AMQP_NAME_PREFIX",
    .kind = Kind::text,
    .help =
        "Put in front of every exchange and queue name (`staging.` gives `staging.video`, `staging.mp3c.status`...): "
        "a deployment, or a test, in a namespace of its own on a shared broker."};
inline constexpr Setting kVideoQueue{.name = "VIDEO_QUEUE",
                                     .kind = Kind::text,
                                     .help =
                                         "Name of the queue of uploaded videos, as in the original. When set, it "
                                         "is used exactly as given: the prefix is not added.",
                                     .shown_default = "`video` (with the prefix)"};
inline constexpr Setting kMp3Queue{
    .name = "MP3_QUEUE",
    .kind = Kind::text,
    .help = "Name of the queue of finished MP3s, as in the original. When set, used exactly as given.",
    .shown_default = "`mp3` (with the prefix)"};

inline constexpr Setting kAll[] = {kUrl, kHeartbeat, kConfirmTimeout, kNamePrefix, kVideoQueue, kMp3Queue};

}  // namespace mp3c::amqp::settings
