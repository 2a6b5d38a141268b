#include <gtest/gtest.h>

#include "mp3c/http.hpp"

namespace mp3c::http {
namespace {

Response ok(Request&) { return Response::text(200, "ok"); }

TEST(Router, MatchesLiteralAndCapturedSegments) {
    Router router;
    router.add("GET", "/jobs", ok);
    router.add("GET", "/jobs/{id}", ok);
    router.add("GET", "/jobs/{id}/mp3", ok);
    router.add("DELETE", "/jobs/{id}", ok);

    auto list = router.match("GET", "/jobs");
    ASSERT_TRUE(list.route);
    EXPECT_EQ(list.route->pattern, "/jobs");

    auto one = router.match("GET", "/jobs/abc%20def");
    ASSERT_TRUE(one.route);
    EXPECT_EQ(one.route->pattern, "/jobs/{id}");
    EXPECT_EQ(one.params.at("id"), "abc def");

    auto mp3 = router.match("GET", "/jobs/42/mp3");
    ASSERT_TRUE(mp3.route);
    EXPECT_EQ(mp3.route->pattern, "/jobs/{id}/mp3");
    EXPECT_EQ(mp3.params.at("id"), "42");

    auto del = router.match("DELETE", "/jobs/42");
    ASSERT_TRUE(del.route);
    EXPECT_EQ(del.route->method, "DELETE");
}

TEST(Router, ReportsAllowedMethodsForKnownPaths) {
    Router router;
    router.add("POST", "/login", ok);
    auto m = router.match("GET", "/login");
    EXPECT_FALSE(m.route);
    EXPECT_EQ(m.allowed_methods, std::vector<std::string>{"POST"});
    auto none = router.match("GET", "/nothing");
    EXPECT_FALSE(none.route);
    EXPECT_TRUE(none.allowed_methods.empty());
}

TEST(Router, EmptyOrUndecodableCapturesDoNotMatch) {
    Router router;
    router.add("GET", "/jobs/{id}", ok);
    EXPECT_FALSE(router.match("GET", "/jobs/").route);
    EXPECT_FALSE(router.match("GET", "/jobs/%zz").route);
    EXPECT_FALSE(router.match("GET", "/jobs/1/2").route);
}

TEST(Router, HeadUsesGetRoutes) {
    Router router;
    router.add("GET", "/x", ok);
    EXPECT_TRUE(router.match("HEAD", "/x").route);
}

TEST(Request, QueryParametersAreDecoded) {
    Request r;
    r.query = "fid=abc%2F1&name=a+b&flag&fid=second";
    EXPECT_EQ(r.query_param("fid"), "abc/1");
    EXPECT_EQ(r.query_param("name"), "a b");
    EXPECT_EQ(r.query_param("flag"), "");
    EXPECT_FALSE(r.query_param("missing"));
}

TEST(PercentDecode, RejectsTruncatedEscapes) {
    EXPECT_FALSE(percent_decode("%4", false));
    EXPECT_FALSE(percent_decode("%", false));
    EXPECT_EQ(percent_decode("%41%42", false), "AB");
}

TEST(Router, ExceptionMappersTurnExceptionsIntoResponses) {
    Router router;
    router.on_exception([](const std::exception& e) -> std::optional<Response> {
        if (std::string(e.what()) == "db down") return Response::error(503, "unavailable", "try later");
        return std::nullopt;
    });
    Request request;
    auto mapped = router.handle_exception(std::make_exception_ptr(std::runtime_error("db down")), request);
    EXPECT_EQ(mapped.status, 503);
    auto other = router.handle_exception(std::make_exception_ptr(std::runtime_error("boom")), request);
    EXPECT_EQ(other.status, 500);
    EXPECT_EQ(nlohmann::json::parse(other.body)["error"], "internal_error");
}

}  // namespace
}  // namespace mp3c::http
