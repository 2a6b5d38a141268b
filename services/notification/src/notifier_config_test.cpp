#include <gtest/gtest.h>

#include <map>

#include "notifier.hpp"

namespace mp3c::notification {
namespace {

using namespace std::chrono_literals;

config::Lookup from(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

std::string problems(const config::Env& env) {
    std::string all;
    for (const auto& p : env.problems()) all += p + "\n";
    return all;
}

TEST(NotifierConfig, TheSendingLeaseOutlastsTheLongestSend) {
    config::Env defaults(from({{"MYSQL_USER", "notification_user"},
                               {"SMTP_HOST", "smtp.example.com"},
                               {"SMTP_FROM", "noreply@example.com"}}));
    EXPECT_EQ(load_notifier_config(defaults).sending_lease, 100s) << "10 s connect + 60 s exchange + 30 s";
    EXPECT_EQ(problems(defaults), "");

    config::Env slow_webhooks(from({{"MYSQL_USER", "u"}, {"SMTP_HOST", "h"}, {"WEBHOOK_TIMEOUT", "5m"}}));
    EXPECT_EQ(load_notifier_config(slow_webhooks).sending_lease, 330s);

    config::Env explicit_lease(
        from({{"MYSQL_USER", "u"}, {"SMTP_HOST", "h"}, {"SMTP_FROM", "f@example.com"}, {"SENDING_LEASE", "10m"}}));
    EXPECT_EQ(load_notifier_config(explicit_lease).sending_lease, 600s);
    EXPECT_EQ(problems(explicit_lease), "");

    config::Env too_short(from({{"MYSQL_USER", "u"}, {"SMTP_HOST", "h"}, {"SENDING_LEASE", "60s"}}));
    load_notifier_config(too_short);
    EXPECT_NE(problems(too_short).find("SENDING_LEASE:"), std::string::npos) << problems(too_short);
}

}  // namespace
}  // namespace mp3c::notification
