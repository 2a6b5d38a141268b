// Every declared setting (libs/config/settings.json): its default parses and lies within its range.
#include "mp3c/settings.hpp"

#include <gtest/gtest.h>

#include <set>

namespace mp3c::config {
namespace {

config::Env empty_environment() {
    return config::Env([](const std::string&) -> std::optional<std::string> { return std::nullopt; });
}

// Reads a setting the way its service does, with no variable set.
void read(config::Env& env, const config::Setting& s) {
    switch (s.kind) {
        case config::Kind::text:
            env.text(s, s.shown_default.empty() ? std::nullopt : std::optional<std::string>("decided by the code"));
            break;
        case config::Kind::secret:
            env.secret(s);
            break;
        case config::Kind::integer:
            env.integer(s);
            break;
        case config::Kind::number:
            env.number(s);
            break;
        case config::Kind::port:
            env.port(s, s.fallback.empty() ? std::optional<uint16_t>(1) : std::nullopt);
            break;
        case config::Kind::boolean:
            env.boolean(s);
            break;
        case config::Kind::duration:
            env.duration(s, s.fallback.empty() ? std::optional<std::chrono::milliseconds>(static_cast<int64_t>(s.min))
                                               : std::nullopt);
            break;
        case config::Kind::bytes:
            env.bytes(s);
            break;
    }
}

TEST(Settings, EveryDeclaredDefaultIsValid) {
    for (const auto& group : kSettingGroups) {
        for (const auto& s : group.settings) {
            SCOPED_TRACE(std::string(s.name));
            auto env = empty_environment();
            EXPECT_NO_THROW(read(env, s));
            if (s.required) {
                ASSERT_EQ(env.problems().size(), 1u);
                EXPECT_NE(env.problems()[0].find("is required"), std::string::npos);
            } else {
                EXPECT_TRUE(env.problems().empty()) << env.problems()[0];
            }
            EXPECT_FALSE(s.help.empty());
            // A default the code decides must be described; a declared one needs no words.
            EXPECT_TRUE(s.required || !s.fallback.empty() || !s.shown_default.empty() || s.kind == config::Kind::text ||
                        s.kind == config::Kind::secret);
        }
    }
}

TEST(Settings, AVariableIsDeclaredOncePerGroup) {
    for (const auto& group : kSettingGroups) {
        std::set<std::string_view> names;
        for (const auto& s : group.settings) EXPECT_TRUE(names.insert(s.name).second) << group.name << ": " << s.name;
    }
}

TEST(Settings, AMalformedDeclaredDefaultIsAProgrammingError) {
    auto env = empty_environment();
    config::Setting broken{.name = "BROKEN", .kind = config::Kind::duration, .fallback = "soon", .help = "x"};
    EXPECT_THROW(env.duration(broken), std::logic_error);
}

TEST(Settings, TheDocumentationShowsDefaultsAndRanges) {
    config::Setting threads{
        .name = "T", .kind = config::Kind::integer, .fallback = "2", .help = "x", .min = 1, .max = 64};
    EXPECT_EQ(config::describe_default(threads), "`2`");
    EXPECT_EQ(config::describe_range(threads), "1 to 64.");
    config::Setting failures{.name = "F", .kind = config::Kind::integer, .fallback = "5", .min = 1, .max = 1'000'000};
    EXPECT_EQ(config::describe_range(failures), "1 to 1 000 000.");
    config::Setting timeout{.name = "D", .kind = config::Kind::duration, .fallback = "10s", .min = 100};
    EXPECT_EQ(config::describe_range(timeout), "At least 100 ms.");
    config::Setting memory{.name = "M", .kind = config::Kind::bytes, .fallback = "64MiB", .min = 8192, .max = 1 << 20};
    EXPECT_EQ(config::describe_range(memory), "8 KiB to 1 MiB.");
    config::Setting user{.name = "U", .required = true};
    EXPECT_EQ(config::describe_default(user), "required");
}

TEST(Settings, ABytesSettingOutsideItsRangeIsAProblem) {
    config::Env env([](const std::string&) -> std::optional<std::string> { return "2MiB"; });
    config::Setting memory{.name = "M", .kind = config::Kind::bytes, .fallback = "64KiB", .min = 8192, .max = 1 << 20};
    env.bytes(memory);
    ASSERT_EQ(env.problems().size(), 1u);
    EXPECT_NE(env.problems()[0].find("must be between 8 KiB and 1 MiB"), std::string::npos);
}

}  // namespace
}  // namespace mp3c::config
