#pragma once

// Which settings each table of docs/configuration.md lists. The settings themselves are declared once, beside the code
// that reads them (the *_settings.hpp headers); this only arranges them for the documentation.
#include <string_view>
#include <vector>

#include "auth_settings.hpp"
#include "converter_settings.hpp"
#include "gateway_settings.hpp"
#include "mp3c/amqp_settings.hpp"
#include "mp3c/http_settings.hpp"
#include "mp3c/log_settings.hpp"
#include "mp3c/mysql_settings.hpp"
#include "mp3c/storage_settings.hpp"
#include "mp3c/token_settings.hpp"
#include "mp3conv_settings.hpp"
#include "notification_settings.hpp"

namespace mp3c::config_doc {

struct Table {
    std::string_view name;  // as in the document's marker: <!-- settings: NAME -->
    std::vector<config::Setting> settings;
};

inline std::vector<Table> tables() {
    using namespace mp3c;
    auto all = [](const auto& array) { return std::vector<config::Setting>(std::begin(array), std::end(array)); };
    const auto& log_level = log::settings::kLogLevel;
    namespace a = auth::settings;
    namespace g = gateway::settings;
    namespace c = converter::settings;
    namespace n = notification::settings;
    return {
        {"http", all(http::settings::kAll)},
        {"mysql", all(mysql::settings::kAll)},
        {"amqp", all(amqp::settings::kAll)},
        {"auth",
         {token::settings::kJwtSecret, a::kTokenTtl, a::kAllowRegistration, a::kMaxFailuresPerAccount,
          a::kMaxFailuresPerClient, a::kFailureWindow, a::kHashOps, a::kHashMemory, log_level}},
        {"gateway",
         {token::settings::kJwtSecret, g::kAuthAddress, g::kAuthTimeout, storage::settings::kStorageUrl,
          g::kMaxUploadBytes, g::kMaxQueuedJobs, g::kUserQuotaBytes, g::kDownloadLinkTtl, log_level}},
        {"mp3conv", {client::settings::kServer, client::settings::kConfigDir}},
        {"converter",
         {c::kMaxDuration, c::kMaxInputBytes, c::kMaxOutputBytes, c::kConversionTimeout, c::kConversionTimeoutRatio,
          c::kMaxChannels, c::kMaxSampleRate, c::kMaxStreams, c::kMaxAttempts, c::kEncoderThreads, c::kKeepSource,
          c::kTmpdir, c::kAdminPort, c::kShutdownGrace, log_level}},
        {"notification",
         {n::kSmtpHost, n::kSmtpTls, n::kSmtpPort, n::kSmtpUsername, n::kSmtpPassword, n::kSmtpFrom, n::kSmtpCaFile,
          n::kSmtpConnectTimeout, n::kSmtpTimeout, n::kPublicBaseUrl, n::kMaxAttempts, n::kWebhookSecret,
          n::kWebhookAllowPrivate, n::kWebhookTimeout, n::kWebhookMaxAttempts, n::kSendingLease, n::kAdminPort,
          log_level}},
    };
}

}  // namespace mp3c::config_doc
