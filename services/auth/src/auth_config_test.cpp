#include "auth_config.hpp"

#include <gtest/gtest.h>

#include <map>

namespace mp3c::auth {
namespace {

config::Lookup from(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

TEST(AuthConfig, DefaultsMatchTheOriginal) {
    config::Env env(from({{"MYSQL_USER", "auth_user"}, {"JWT_SECRET", std::string(40, 's')}}));
    auto c = load_auth_config(env);
    EXPECT_NO_THROW(env.check());
    EXPECT_EQ(c.server.port, 5000);
    EXPECT_EQ(c.mysql.database, "auth");
    EXPECT_EQ(c.mysql.port, 3306);
    EXPECT_EQ(c.token_ttl, std::chrono::hours(24));
    EXPECT_FALSE(c.allow_registration);
}

TEST(AuthConfig, EveryProblemIsNamed) {
    config::Env env(from({{"JWT_SECRET", "weak"},
                          {"PORT", "99999"},
                          {"TOKEN_TTL", "soon"},
                          {"LOG_LEVEL", "loud"},
                          {"TRUSTED_PROXIES", "10.0.0.0/8,garbage"}}));
    load_auth_config(env);
    std::string all;
    for (const auto& p : env.problems()) all += p + "\n";
    for (const char* name : {"JWT_SECRET:", "PORT:", "TOKEN_TTL:", "LOG_LEVEL:", "MYSQL_USER:", "TRUSTED_PROXIES:"}) {
        EXPECT_NE(all.find(name), std::string::npos) << name << " missing from:\n" << all;
    }
}

}  // namespace
}  // namespace mp3c::auth
