#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "mp3c/config.hpp"
#include "mp3c/result.hpp"

// Sending one message over SMTP with libcurl: any server (the original hard-coded Gmail), STARTTLS, implicit TLS or
// plain, with or without authentication.
namespace mp3c::notification {

struct SmtpOptions {
    enum class Tls { starttls, tls, none };
    std::string host;
    uint16_t port = 587;
    Tls tls = Tls::starttls;
    std::string username;  // empty: no AUTH
    std::string password;
    std::string from;     // the From header; its address is the envelope sender
    std::string ca_file;  // empty: the system's CA certificates
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds timeout{60'000};  // the whole exchange
};

// SMTP_HOST (required), SMTP_TLS (starttls|tls|none, default starttls), SMTP_PORT (587, 465 with tls, 25 with
// none), SMTP_USERNAME, SMTP_PASSWORD (or SMTP_PASSWORD_FILE), SMTP_FROM (required), SMTP_CA_FILE,
// SMTP_CONNECT_TIMEOUT (10s), SMTP_TIMEOUT (60s).
SmtpOptions smtp_options_from_env(config::Env& env);

// Ok once the server took the message; else a Failure with the server's last reply code (0 when none) and what
// happened, for logs and the dead-letter reason.
using SendResult = Result<Ok, Failure>;

class SmtpClient {
  public:
    explicit SmtpClient(SmtpOptions options);
    // Never throws for SMTP trouble: a reply 5xx is permanent (this recipient will never take it); no connection,
    // a timeout, a 4xx reply or refused credentials are transient (the operator or the server may fix them).
    SendResult send(const std::string& recipient, const std::string& message) const;
    const SmtpOptions& options() const { return options_; }

  private:
    SmtpOptions options_;
    std::string envelope_from_;
};

}  // namespace mp3c::notification
