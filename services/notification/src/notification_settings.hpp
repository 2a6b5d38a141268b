#pragma once

// The notification service's own settings (besides RabbitMQ's, MariaDB's, the HTTP server's for its admin port and
// LOG_LEVEL).
#include "mp3c/config.hpp"

namespace mp3c::notification::settings {

using config::Kind;
using config::Setting;

inline constexpr Setting kSmtpHost{
    .name = "SMTP_HOST", .kind = Kind::text, .help = "The SMTP server's host name or address.", .required = true};
inline constexpr Setting kSmtpTls{
    .name = "SMTP_TLS",
    .kind = Kind::text,
    .fallback = "starttls",
    .help =
        "`starttls`: a plain connection that must be upgraded with STARTTLS (a server that does not offer it fails "
        "the send); `tls`: TLS from the first byte (`smtps://`); `none`: no TLS. The server's certificate is "
        "verified (libcurl's defaults). Anything else is a configuration error."};
inline constexpr Setting kSmtpPort{.name = "SMTP_PORT",
                                   .kind = Kind::port,
                                   .help = "The SMTP server's port.",
                                   .shown_default = "`587`; `465` with `SMTP_TLS=tls`, `25` with `SMTP_TLS=none`"};
inline constexpr Setting kSmtpUsername{
    .name = "SMTP_USERNAME",
    .kind = Kind::text,
    .help = "When set, the service logs in (SMTP AUTH) with it and `SMTP_PASSWORD`; empty: no AUTH."};
inline constexpr Setting kSmtpPassword{
    .name = "SMTP_PASSWORD", .kind = Kind::secret, .help = "The SMTP password (a secret: directly or from a file)."};
inline constexpr Setting kSmtpFrom{
    .name = "SMTP_FROM",
    .kind = Kind::text,
    .help =
        "The `From` header: `noreply@example.com` or `mp3converter <noreply@example.com>`. Its address is the "
        "envelope sender (`MAIL FROM`), and its domain ends the `Message-ID`s. A value without a usable address is "
        "a configuration error.",
    .required = true};
inline constexpr Setting kSmtpCaFile{.name = "SMTP_CA_FILE",
                                     .kind = Kind::text,
                                     .help = "A PEM file of CA certificates to verify the SMTP server with.",
                                     .shown_default = "empty: the system's CA certificates"};
inline constexpr Setting kSmtpConnectTimeout{.name = "SMTP_CONNECT_TIMEOUT",
                                             .kind = Kind::duration,
                                             .fallback = "10s",
                                             .help = "Time allowed to connect to the SMTP server.",
                                             .min = 1000};
inline constexpr Setting kSmtpTimeout{
    .name = "SMTP_TIMEOUT",
    .kind = Kind::duration,
    .fallback = "60s",
    .help = "Time allowed for the whole exchange of one message, connecting included.",
    .min = 1000};
inline constexpr Setting kPublicBaseUrl{
    .name = "PUBLIC_BASE_URL",
    .kind = Kind::text,
    .fallback = "http://localhost:8080",
    .help =
        "The gateway's address as users reach it: the download link in e-mails and the `mp3_url` of webhooks are "
        "`PUBLIC_BASE_URL/jobs/<job_id>/mp3`. Must start with `http://` or `https://`; trailing slashes are "
        "dropped."};
inline constexpr Setting kMaxAttempts{
    .name = "MAX_ATTEMPTS",
    .kind = Kind::integer,
    .fallback = "10",
    .help =
        "E-mail: attempts of a message whose sending fails for a transient reason, retried through "
        "`<queue>.retry.5s`, `.30s`, then `.120s` for every later retry; after the last one the message is "
        "dead-lettered and the e-mail recorded as failed.",
    .min = 1,
    .max = 1000};
inline constexpr Setting kWebhookSecret{
    .name = "WEBHOOK_SECRET",
    .kind = Kind::secret,
    .help =
        "The key of the webhooks' HMAC-SHA256 signature (a secret: directly or from a file; no minimum length). "
        "Empty: no webhook is called; the webhook of each job that has a callback URL is recorded as failed "
        "(\"webhooks are not configured\")."};
inline constexpr Setting kWebhookAllowPrivate{
    .name = "WEBHOOK_ALLOW_PRIVATE",
    .kind = Kind::boolean,
    .fallback = "off",
    .help =
        "Allows webhook calls to addresses inside the network (loopback, private, link-local, carrier-grade NAT, "
        "multicast, documentation and other reserved ranges; see [messaging.md](messaging.md#webhook-calls)). Off: "
        "such calls are refused and recorded as failed. A boolean."};
inline constexpr Setting kWebhookTimeout{
    .name = "WEBHOOK_TIMEOUT",
    .kind = Kind::duration,
    .fallback = "10s",
    .help = "Time allowed for one webhook call; connecting gets at most 5 s of it.",
    .min = 1000};
inline constexpr Setting kWebhookMaxAttempts{
    .name = "WEBHOOK_MAX_ATTEMPTS",
    .kind = Kind::integer,
    .fallback = "6",
    .help =
        "Webhooks: attempts of a call that fails for a transient reason, with the same delays as `MAX_ATTEMPTS`; "
        "after the last one the task is dead-lettered and the webhook recorded as failed.",
    .min = 1,
    .max = 1000};
inline constexpr Setting kSendingLease{
    .name = "SENDING_LEASE",
    .kind = Kind::duration,
    .help =
        "How long a job's `sending` record keeps other deliveries of the same job (another replica, a redelivery) "
        "from sending it too; after that its sender is taken for dead and the job is sent again. Must be longer "
        "than `SMTP_CONNECT_TIMEOUT` + `SMTP_TIMEOUT` and than `WEBHOOK_TIMEOUT`, else the service does not start.",
    .min = 1000,
    .shown_default = "`SMTP_CONNECT_TIMEOUT` + `SMTP_TIMEOUT` + 30s (100s), at least `WEBHOOK_TIMEOUT` + 30s"};
inline constexpr Setting kAdminPort{
    .name = "ADMIN_PORT",
    .kind = Kind::port,
    .fallback = "8082",
    .help = "`/healthz`, `/readyz`, `/metrics`. The shared HTTP variables apply to this port."};

}  // namespace mp3c::notification::settings
