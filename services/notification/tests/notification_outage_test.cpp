// The SMTP server stops and starts under the running worker: ctest runs this binary alone (it stops the shared
// server).
#include "notification_fixture.hpp"

namespace mp3c::notification::test {
namespace {

class NotificationOutageTest : public NotificationTest {
  protected:
    ~NotificationOutageTest() override { testing::harness_ctl("start", "smtp"); }
};

TEST_F(NotificationOutageTest, MailWaitsForTheSmtpServerAndIsDeliveredOnce) {
    start();
    testing::harness_ctl("stop", "smtp");
    std::string job = storage::new_id();
    publish("", topology_.mp3_queue, done_message(job).dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"retried\"}") == "1"; }));
    testing::harness_ctl("start", "smtp");
    ASSERT_TRUE(eventually([&] { return mails().size() == 1; }, 60s)) << "delivered by the retry (after 5 s)";
    // The server stores a mail before it answers, so the worker may not have counted it yet.
    EXPECT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"sent\"}") == "1"; }));
    EXPECT_EQ(mails()[0].header("Message-ID"), "<" + job + ".done@mp3converter.com>");
    EXPECT_TRUE(dead(topology_.mp3_queue).empty());
}

}  // namespace
}  // namespace mp3c::notification::test
