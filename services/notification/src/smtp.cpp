#include "smtp.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <mutex>

#include "mail.hpp"
#include "mp3c/curl_handles.hpp"

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
    o.host = env.string("SMTP_HOST");
    std::string tls = env.string("SMTP_TLS", "starttls");
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
    o.port = env.port("SMTP_PORT", default_port);
    o.username = env.string("SMTP_USERNAME", "");
    o.password = env.secret("SMTP_PASSWORD", "");
    o.from = env.string("SMTP_FROM");
    if (!o.from.empty() && !is_plausible_address(address_of(o.from))) {
        env.problem("SMTP_FROM", "'" + o.from + "' holds no e-mail address (use name@domain or Name <name@domain>)");
    }
    o.ca_file = env.string("SMTP_CA_FILE", "");
    o.connect_timeout = env.duration("SMTP_CONNECT_TIMEOUT", std::chrono::seconds(10), std::chrono::seconds(1));
    o.timeout = env.duration("SMTP_TIMEOUT", std::chrono::seconds(60), std::chrono::seconds(1));
    return o;
}

SmtpClient::SmtpClient(SmtpOptions options) : options_(std::move(options)), envelope_from_(address_of(options_.from)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

SendResult SmtpClient::send(const std::string& recipient, const std::string& message) const {
    curl::EasyPtr curl(curl_easy_init());
    if (!curl) return Failure{Outcome::transient, 0, "libcurl could not start"};
    // The path of an smtp:// URL is the name sent in EHLO.
    std::string url = std::string(options_.tls == SmtpOptions::Tls::tls ? "smtps://" : "smtp://") + options_.host +
                      ":" + std::to_string(options_.port) + "/" + local_hostname();
    std::string from = "<" + envelope_from_ + ">";
    curl::SlistPtr recipients(curl_slist_append(nullptr, ("<" + recipient + ">").c_str()));
    Upload upload{&message};
    char error[CURL_ERROR_SIZE] = {0};
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     options_.tls == SmtpOptions::Tls::none ? static_cast<long>(CURLUSESSL_NONE)
                                                            : static_cast<long>(CURLUSESSL_ALL));
    if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
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
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK) return Ok{};
    std::string detail = std::string(curl_easy_strerror(rc)) + (error[0] != '\0' ? std::string(": ") + error : "");
    if (code > 0) detail += " (SMTP " + std::to_string(code) + ")";
    // 5xx: the server will not take this message for this recipient, ever (unknown mailbox, refused sender). A
    // refused login is a configuration problem an operator fixes: retried, like 4xx and connection trouble.
    bool permanent = code >= 500 && code <= 599 && rc != CURLE_LOGIN_DENIED && code != 530 && code != 535;
    return Failure{permanent ? Outcome::permanent : Outcome::transient, code, detail};
}

}  // namespace mp3c::notification
