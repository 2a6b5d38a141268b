#include "smtp.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <cstring>

#include "mail.hpp"
#include "mp3c/curl_handles.hpp"
#include "mp3c/outbound.hpp"
#include "mp3c/settings.hpp"

namespace mp3c::notification {

namespace {

struct Upload {
    const std::string* data;
    size_t at = 0;
};

size_t read_message(char* buffer, size_t size, size_t count, void* user) {
    auto* upload = static_cast<Upload*>(user);
    size_t n = std::min(size * count, upload->data->size() - upload->at);
    std::memcpy(buffer, upload->data->data() + upload->at, n);
    upload->at += n;
    return n;
}

std::string local_hostname() {
    char name[256] = {0};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
    return name;
}

}  // namespace

SmtpOptions smtp_options_from_env(config::Env& env) {
    SmtpOptions o;
    o.host = env.text(settings::kSmtpHost);
    std::string tls = env.text(settings::kSmtpTls);
    if (tls == "starttls") {
        o.tls = SmtpOptions::Tls::starttls;
    } else if (tls == "tls") {
        o.tls = SmtpOptions::Tls::tls;
    } else if (tls == "none") {
        o.tls = SmtpOptions::Tls::none;
    } else {
        env.problem("SMTP_TLS", "'" + tls + "' is not starttls, tls (implicit, port 465) or none");
    }
    uint16_t default_port = o.tls == SmtpOptions::Tls::tls ? 465 : o.tls == SmtpOptions::Tls::none ? 25 : 587;
    o.port = env.port(settings::kSmtpPort, default_port);
    o.username = env.text(settings::kSmtpUsername);
    o.password = env.secret(settings::kSmtpPassword);
    o.from = env.text(settings::kSmtpFrom);
    if (!o.from.empty() && !is_plausible_address(address_of(o.from))) {
        env.problem("SMTP_FROM", "'" + o.from + "' holds no e-mail address (use name@domain or Name <name@domain>)");
    }
    o.ca_file = env.text(settings::kSmtpCaFile);
    o.connect_timeout = env.duration(settings::kSmtpConnectTimeout);
    o.timeout = env.duration(settings::kSmtpTimeout);
    return o;
}

SmtpClient::SmtpClient(SmtpOptions options) : options_(std::move(options)), envelope_from_(address_of(options_.from)) {}

SendResult SmtpClient::send(const std::string& recipient, const std::string& message) const {
    // The path of an smtp:// URL is the name sent in EHLO.
    std::string url = std::string(options_.tls == SmtpOptions::Tls::tls ? "smtps://" : "smtp://") + options_.host +
                      ":" + std::to_string(options_.port) + "/" + local_hostname();
    outbound::Options settings;
    settings.protocols = "smtp,smtps";
    settings.connect_timeout = options_.connect_timeout;
    settings.timeout = options_.timeout;
    settings.ca_file = options_.ca_file;
    outbound::Transfer transfer(url, settings);
    std::string from = "<" + envelope_from_ + ">";
    curl::SlistPtr recipients(curl_slist_append(nullptr, ("<" + recipient + ">").c_str()));
    if (!recipients) return Failure{Outcome::transient, 0, "out of memory"};
    Upload upload{&message};
    CURL* c = transfer.handle();
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     options_.tls == SmtpOptions::Tls::none ? static_cast<long>(CURLUSESSL_NONE)
                                                            : static_cast<long>(CURLUSESSL_ALL));
    if (!options_.username.empty()) {
        curl_easy_setopt(c, CURLOPT_USERNAME, options_.username.c_str());
        curl_easy_setopt(c, CURLOPT_PASSWORD, options_.password.c_str());
    }
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, recipients.get());
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &read_message);
    curl_easy_setopt(c, CURLOPT_READDATA, &upload);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
    auto result = transfer.perform();
    if (result) return Ok{};
    Failure failure = result.error();
    long code = failure.code;
    if (code > 0) failure.detail += " (SMTP " + std::to_string(code) + ")";
    // 5xx: the server will not take this message for this recipient, ever (unknown mailbox, refused sender). A
    // refused login (530, 535) is a configuration problem an operator fixes: retried, like 4xx and connection trouble.
    bool permanent =
        code >= 500 && code <= 599 && code != 530 && code != 535 && transfer.curl_code() != CURLE_LOGIN_DENIED;
    failure.outcome = permanent ? Outcome::permanent : Outcome::transient;
    return failure;
}

}  // namespace mp3c::notification
