#include <set>

#include "mp3c/strings.hpp"
#include "mp3c/testing/http_client.hpp"
#include "mp3c/testing/process.hpp"
#include "notification_fixture.hpp"

namespace mp3c::notification::test {
namespace {

TEST_F(NotificationTest, FinishedJobSendsOneMailWithTheLinkAndCorrectMime) {
    start();
    std::string job = storage::new_id();
    publish("", topology_.mp3_queue, done_message(job, "Zoë – Night Drive (live).mp4").dump());
    ASSERT_TRUE(eventually([&] { return mails().size() == 1; }));
    auto mail = mails()[0];
    EXPECT_EQ(mail.envelope["mail_from"], "noreply@mp3converter.com");
    EXPECT_EQ(mail.envelope["rcpt_tos"], nlohmann::json::array({recipient_}));
    EXPECT_EQ(mail.envelope["authenticated_as"], env_or_throw("MP3C_TEST_SMTP_USER")) << "SMTP AUTH used";
    EXPECT_EQ(mail.header("From"), "mp3converter <noreply@mp3converter.com>");
    EXPECT_EQ(mail.header("To"), recipient_);
    EXPECT_EQ(decode_words(mail.header("Subject")), "Your MP3 of \"Zoë – Night Drive (live).mp4\" is ready");
    EXPECT_NE(mail.header("Subject").find("=?UTF-8?B?"), std::string::npos) << "non-ASCII encoded in the header";
    EXPECT_EQ(mail.header("Message-ID"), "<" + job + ".done@mp3converter.com>");
    EXPECT_EQ(mail.header("MIME-Version"), "1.0");
    EXPECT_NE(mail.header("Date"), "");
    EXPECT_NE(mail.header("Content-Type").find("multipart/alternative"), std::string::npos);
    std::string text = mail.part("text/plain; charset=utf-8");
    EXPECT_NE(text.find("https://mp3converter.com/jobs/" + job + "/mp3"), std::string::npos) << text;
    EXPECT_NE(text.find("4.6 MB"), std::string::npos) << text;
    EXPECT_NE(text.find("3:07"), std::string::npos) << text;
    EXPECT_NE(text.find("Zoë – Night Drive (live).mp4"), std::string::npos) << "UTF-8 body";
    std::string html = mail.part("text/html; charset=utf-8");
    EXPECT_NE(html.find("href=\"https://mp3converter.com/jobs/" + job + "/mp3\""), std::string::npos) << html;
    // The server stores a mail before it answers, so the worker may not have counted it yet.
    EXPECT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"sent\"}") == "1"; }));
}

TEST_F(NotificationTest, FailedJobSendsAMailWithTheReason) {
    start();
    std::string job = storage::new_id();
    publish(topology_.status_exchange, "job.failed", failed_event(job, "the file has no audio track").dump());
    ASSERT_TRUE(eventually([&] { return mails().size() == 1; }));
    auto mail = mails()[0];
    EXPECT_EQ(mail.header("Subject"), "Converting \"x.mp4\" failed");
    EXPECT_NE(mail.part("text/plain; charset=utf-8").find("the file has no audio track"), std::string::npos);
    EXPECT_EQ(mail.header("Message-ID"), "<" + job + ".failed.1@mp3converter.com>");
}

TEST_F(NotificationTest, RedeliveredJobSendsNothingMore) {
    start();
    std::string job = storage::new_id();
    publish("", topology_.mp3_queue, done_message(job).dump());
    publish("", topology_.mp3_queue, done_message(job).dump());  // as after a converter crash before its ack
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"duplicate\"}") == "1"; }));
    EXPECT_EQ(mails().size(), 1u);
    // The server stores a mail before it answers, so the worker may not have counted it yet.
    EXPECT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"sent\"}") == "1"; }));
    // Also across a restart of the service: the record is in the database.
    notifier_.reset();
    start();
    publish("", topology_.mp3_queue, done_message(job).dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"duplicate\"}") == "1"; }));
    EXPECT_EQ(mails().size(), 1u);
}

// Two replicas given the same job at the same moment (a redelivery while the first is still sending): the one that
// finds the job claimed sends nothing, and looks again after the first retry delay (5 s). A claim is honoured for
// the lease (2 s here); a sender that died holding it loses it then, and the mail goes out once.
TEST_F(NotificationTest, AJobAnotherReplicaIsSendingIsNotSentTwice) {
    start([](NotifierConfig& c) { c.sending_lease = 2s; });
    std::string finished_elsewhere = storage::new_id(), sender_died = storage::new_id();
    auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    auto claimed_by_another_replica = [&](const std::string& job, int64_t at_ms) {
        testing::mysql_admin(server_, "INSERT INTO `" + database_.name() +
                                          "`.notifications (job_id, channel, state, created_at, updated_at) VALUES ('" +
                                          job + "', 'email', 'sending', " + std::to_string(at_ms) + ", " +
                                          std::to_string(at_ms) + ")");
    };
    claimed_by_another_replica(finished_elsewhere, now_ms + 3'600'000);  // its lease cannot run out in this test
    claimed_by_another_replica(sender_died, now_ms);
    publish("", topology_.mp3_queue, done_message(finished_elsewhere).dump());
    publish("", topology_.mp3_queue, done_message(sender_died).dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"busy\"}") == "2"; }));
    EXPECT_TRUE(mails().empty()) << "sent while another replica held the job";

    // The other replica records its mail as sent: the second look finds that and sends nothing.
    testing::mysql_admin(server_, "UPDATE `" + database_.name() +
                                      "`.notifications SET state = 'sent' WHERE job_id = '" + finished_elsewhere + "'");
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"duplicate\"}") == "1"; }, 30s));
    // The dead sender's lease has run out by the second look: the mail goes, once.
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"sent\"}") == "1"; }, 30s));
    auto received = mails();
    ASSERT_EQ(received.size(), 1u);
    EXPECT_EQ(received[0].header("Message-ID"), "<" + sender_died + ".done@mp3converter.com>");
    EXPECT_EQ(metric("notification_emails_total{result=\"busy\"}"), "2") << "each looked at twice, not more";
}

TEST_F(NotificationTest, RefusedRecipientIsNotRetried) {
    recipient_ = "reject-" + crypto::random_hex(4) + "@example.com";  // the harness's server answers 550
    start();
    publish("", topology_.mp3_queue, done_message(storage::new_id()).dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"refused\"}") == "1"; }));
    EXPECT_EQ(metric("notification_emails_total{result=\"retried\"}"), "0");
    EXPECT_TRUE(dead(topology_.mp3_queue).empty()) << "a permanent refusal is recorded and acked, not dead-lettered";
}

TEST_F(NotificationTest, TemporaryRefusalIsRetriedThenDeadLettered) {
    recipient_ = "busy-" + crypto::random_hex(4) + "@example.com";  // the harness's server answers 451
    start([](NotifierConfig& c) { c.max_attempts = 2; });
    std::string job = storage::new_id();
    publish("", topology_.mp3_queue, done_message(job).dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"retried\"}") == "1"; }));
    // The retry comes back from mp3.retry.5s, fails again, and is the last attempt.
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"gave_up\"}") == "1"; }, 30s));
    auto dead_letters = dead(topology_.mp3_queue);
    ASSERT_EQ(dead_letters.size(), 1u);
    auto body = nlohmann::json::parse(dead_letters[0]);
    EXPECT_EQ(body["job_id"], job);
    EXPECT_EQ(body["attempt"], 2);
}

TEST_F(NotificationTest, MalformedMessagesAreDeadLetteredAtOnce) {
    start();
    publish("", topology_.mp3_queue, "{not json");
    publish("", topology_.mp3_queue, R"({"mp3_fid":"../../etc","username":"a@example.com"})");
    publish(topology_.status_exchange, "job.failed", R"({"status":"failed"})");
    publish("", topology_.notification_webhook_queue, R"({"job_id":"0123456789abcdef01234567"})");
    EXPECT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"invalid_message\"}") == "3"; }));
    EXPECT_TRUE(eventually([&] { return metric("notification_webhooks_total{result=\"invalid_message\"}") == "1"; }));
    EXPECT_EQ(dead(topology_.mp3_queue).size(), 2u);
    EXPECT_EQ(dead(topology_.notification_failed_queue).size(), 1u);
    EXPECT_EQ(dead(topology_.notification_webhook_queue).size(), 1u);
    EXPECT_TRUE(notifier_->readiness()()) << "still running";
}

TEST_F(NotificationTest, WithJobTicketsOnlyTheGatewaysJobsAreMailedOrCalled) {
    const std::string key(40, 'k');  // JOB_TICKET_SECRET, which the gateway has and a converter has not
    start([&](NotifierConfig& c) { c.job_ticket_secret = key; });
    std::string job = storage::new_id();
    auto genuine = done_message(job);
    genuine["ticket"] = messages::job_ticket(key, job, recipient_, std::nullopt);
    // What a converter taken over could send: no ticket; a real job's ticket with another address or a webhook of its
    // own; a failed event for a job of its own.
    std::string victim = "victim-" + storage::new_id() + "@example.com";
    auto unticketed = done_message(storage::new_id());
    unticketed["username"] = victim;
    auto retargeted = genuine;
    retargeted["username"] = victim;
    auto hooked = genuine;
    hooked["callback_url"] = "https://attacker.example/hook";
    auto failed = failed_event(storage::new_id(), "x");
    failed["username"] = victim;
    failed["ticket"] = genuine["ticket"];
    for (const auto& forged : {unticketed, retargeted, hooked}) publish("", topology_.mp3_queue, forged.dump());
    publish(topology_.status_exchange, "job.failed", failed.dump());
    EXPECT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"unticketed\"}") == "4"; }));
    EXPECT_EQ(dead(topology_.mp3_queue).size(), 3u);
    EXPECT_EQ(dead(topology_.notification_failed_queue).size(), 1u);
    EXPECT_TRUE(mails_to(victim).empty());
    publish("", topology_.mp3_queue, genuine.dump());
    ASSERT_TRUE(eventually([&] { return mails().size() == 1; })) << "the job the gateway wrote is mailed";
    EXPECT_EQ(mails()[0].header("Message-ID"), "<" + job + ".done@mp3converter.com>");
}

TEST_F(NotificationTest, WithJobTicketsTheMailsAndWebhooksLinkWorksWithoutSigningInUntilTheMp3Expires) {
    const std::string key(40, 'k');
    WebhookReceiver receiver;
    start([&](NotifierConfig& c) {
        c.job_ticket_secret = key;
        c.retention = std::chrono::hours(24 * 7);
        c.source_retention = std::chrono::hours(24);
    });
    std::string job = storage::new_id();
    auto message = done_message(job);
    message["callback_url"] = receiver.url();
    message["ticket"] = messages::job_ticket(key, job, recipient_, receiver.url());
    publish("", topology_.mp3_queue, message.dump());
    ASSERT_TRUE(eventually([&] { return mails().size() == 1; }));
    std::string signed_url = "https://mp3converter.com" + messages::mail_link_path(key, job);
    EXPECT_NE(signed_url.find("?signature="), std::string::npos);
    auto week = format_utc(std::chrono::system_clock::now() + std::chrono::hours(24 * 7), "%Y-%m-%d");
    std::string text = mails()[0].part("text/plain; charset=utf-8");
    EXPECT_NE(text.find(signed_url), std::string::npos) << text;
    EXPECT_EQ(text.find("sign in first"), std::string::npos) << text;
    EXPECT_NE(text.find("kept until " + week), std::string::npos) << text;
    EXPECT_NE(text.find("https://mp3converter.com/#job=" + job), std::string::npos) << "the web page at the job";
    std::string html = mails()[0].part("text/html; charset=utf-8");
    EXPECT_NE(html.find("href=\"" + signed_url + "\""), std::string::npos) << html;

    ASSERT_TRUE(eventually([&] { return receiver.calls().size() == 1; }));
    auto body = nlohmann::json::parse(receiver.calls()[0].body);
    EXPECT_EQ(body["mp3_url"], signed_url);
    ASSERT_TRUE(body["expires_at"].is_string()) << body;
    EXPECT_EQ(body["expires_at"].get<std::string>().substr(0, 10), week);

    // The failure mail points at the job in the web page, where it can be retried while the upload is kept.
    std::string failed_job = storage::new_id();
    auto failed = failed_event(failed_job, "the file has no audio track");
    failed["ticket"] = messages::job_ticket(key, failed_job, recipient_, std::nullopt);
    publish(topology_.status_exchange, "job.failed", failed.dump());
    ASSERT_TRUE(eventually([&] { return mails().size() == 2; }));
    auto tomorrow = format_utc(std::chrono::system_clock::now() + std::chrono::hours(24), "%Y-%m-%d");
    std::string failure = mails()[1].part("text/plain; charset=utf-8");
    EXPECT_NE(failure.find("https://mp3converter.com/#job=" + failed_job), std::string::npos) << failure;
    EXPECT_NE(failure.find("kept until " + tomorrow), std::string::npos) << failure;
    EXPECT_NE(failure.find("retry"), std::string::npos) << failure;
}

TEST_F(NotificationTest, ARetriedJobIsToldAboutEachNewFailureAndItsEnd) {
    WebhookReceiver receiver;
    start();
    std::string job = storage::new_id();
    auto failed = failed_event(job, "no audio");
    failed["callback_url"] = receiver.url();
    publish(topology_.status_exchange, "job.failed", failed.dump());
    publish(topology_.status_exchange, "job.failed", failed.dump());  // redelivered: not told twice
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"duplicate\"}") == "1"; }));
    failed["at"] = 2;  // retried by its owner, failed again
    failed["error"] = "still no audio";
    publish(topology_.status_exchange, "job.failed", failed.dump());
    auto done = done_message(job);
    done["callback_url"] = receiver.url();
    publish("", topology_.mp3_queue, done.dump());  // retried once more, converted
    ASSERT_TRUE(eventually([&] { return mails().size() == 3; }));
    std::set<std::string> ids;
    for (const auto& m : mails()) ids.insert(m.header("Message-ID"));
    EXPECT_EQ(
        ids, (std::set<std::string>{"<" + job + ".failed.1@mp3converter.com>",
                                    "<" + job + ".failed.2@mp3converter.com>", "<" + job + ".done@mp3converter.com>"}));
    ASSERT_TRUE(eventually([&] { return receiver.calls().size() == 3; }));
    std::set<std::string> webhook_ids;
    for (const auto& call : receiver.calls()) webhook_ids.insert(call.id);
    EXPECT_EQ(webhook_ids, (std::set<std::string>{job + ".failed.1", job + ".failed.2", job}))
        << "receivers drop repeats by webhook-id: each occurrence has its own";
}

TEST_F(NotificationTest, UserNameThatIsNoAddressGetsNoMail) {
    recipient_ = "alice";  // the original let any user name through
    start();
    publish("", topology_.mp3_queue, done_message(storage::new_id()).dump());
    EXPECT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"no_address\"}") == "1"; }));
}

TEST_F(NotificationTest, WebhookIsSignedAndCarriesTheDocumentedFields) {
    WebhookReceiver receiver;
    start();
    std::string job = storage::new_id();
    auto message = done_message(job);
    message["callback_url"] = receiver.url();
    publish("", topology_.mp3_queue, message.dump());
    ASSERT_TRUE(eventually([&] { return receiver.calls().size() == 1; }));
    auto call = receiver.calls()[0];
    EXPECT_EQ(call.id, job) << "the same for every attempt: receivers drop repeats by it";
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    EXPECT_TRUE(
        verify_standard_webhook(webhook_secrets(recipient_), call.id, call.timestamp, call.signatures, call.body, now))
        << "signed with the job owner's secret: " << call.signatures;
    EXPECT_EQ(call.signatures.find(' '), std::string::npos) << "one secret, one signature";
    // Another user's secret does not verify it: one tenant cannot be sent validly signed events about another's jobs.
    add_user("someone-else@example.com");
    EXPECT_FALSE(verify_standard_webhook(webhook_secrets("someone-else@example.com"), call.id, call.timestamp,
                                         call.signatures, call.body, now));
    // Replayed later, it is refused by a receiver that checks the window.
    EXPECT_FALSE(verify_standard_webhook(webhook_secrets(recipient_), call.id, call.timestamp, call.signatures,
                                         call.body, now + 3600));
    EXPECT_EQ(call.signature, "sha256=" + crypto::to_hex(crypto::hmac_sha256("webhook-test-secret", call.body)))
        << "the deprecated global signature too, while WEBHOOK_SECRET is set";
    auto body = nlohmann::json::parse(call.body);
    EXPECT_EQ(body, nlohmann::json({{"job_id", job},
                                    {"status", "done"},
                                    {"mp3_url", "https://mp3converter.com/jobs/" + job + "/mp3"},
                                    {"error", nullptr}}));
    EXPECT_TRUE(eventually([&] { return mails().size() == 1; })) << "and the mail";
    EXPECT_TRUE(eventually([&] { return metric("notification_webhooks_total{result=\"delivered\"}") == "1"; }));

    publish("", topology_.mp3_queue, message.dump());  // redelivered: neither is repeated
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"duplicate\"}") == "1"; }));
    EXPECT_EQ(receiver.calls().size(), 1u);
}

TEST_F(NotificationTest, WithoutTheGlobalSecretWebhooksAreSignedPerUserOnly) {
    WebhookReceiver receiver;
    start([](NotifierConfig& c) { c.webhook.secret.clear(); });
    rotate_webhook_secret(recipient_);  // during the overlap both secrets sign
    auto message = done_message(storage::new_id());
    message["callback_url"] = receiver.url();
    publish("", topology_.mp3_queue, message.dump());
    ASSERT_TRUE(eventually([&] { return receiver.calls().size() == 1; }));
    auto call = receiver.calls()[0];
    EXPECT_TRUE(call.signature.empty()) << "no deprecated header without WEBHOOK_SECRET";
    auto secrets = webhook_secrets(recipient_);
    ASSERT_EQ(secrets.size(), 2u);
    const int64_t now = std::stoll(call.timestamp);
    EXPECT_NE(call.signatures.find(' '), std::string::npos) << call.signatures;
    EXPECT_TRUE(verify_standard_webhook({secrets[0]}, call.id, call.timestamp, call.signatures, call.body, now))
        << "a receiver that switched to the new secret";
    EXPECT_TRUE(verify_standard_webhook({secrets[1]}, call.id, call.timestamp, call.signatures, call.body, now))
        << "a receiver that has not switched yet";
}

TEST_F(NotificationTest, NoWebhookIsSentForAnOwnerAuthDoesNotKnow) {
    WebhookReceiver receiver;
    start();
    auto message = done_message(storage::new_id());
    message["username"] = "deleted-" + crypto::random_hex(4) + "@example.com";  // deleted after the upload
    message["callback_url"] = receiver.url();
    publish("", topology_.mp3_queue, message.dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_webhooks_total{result=\"rejected\"}") == "1"; }));
    EXPECT_TRUE(receiver.calls().empty()) << "nothing unsigned, nothing signed with another user's secret";
}

TEST_F(NotificationTest, AHangingReceiverDoesNotHoldBackAnothers) {
    WebhookReceiver hanging, healthy;
    hanging.hold();
    start([](NotifierConfig& c) {
        c.webhook_workers = 2;
        c.webhook.timeout = 45s;  // longer than the wait below: only the gate lets the healthy one through in time
    });
    for (int i = 0; i < 4; ++i) {
        auto message = done_message(storage::new_id());
        message["callback_url"] = hanging.url();
        publish("", topology_.mp3_queue, message.dump());
    }
    ASSERT_TRUE(eventually([&] { return hanging.calls().size() == 1; }));
    auto message = done_message(storage::new_id());
    message["callback_url"] = healthy.url();
    publish("", topology_.mp3_queue, message.dump());
    // Delivered while the hanging receiver still holds its first call: no worker waits on that receiver but one.
    EXPECT_TRUE(eventually([&] { return healthy.calls().size() == 1; }, 20s));
    EXPECT_EQ(hanging.max_in_flight(), 1) << "one delivery at a time to a receiver";
    hanging.release();
    EXPECT_TRUE(eventually([&] { return hanging.calls().size() == 4; }, 60s)) << "the others follow, later";
    EXPECT_EQ(hanging.max_in_flight(), 1);
}

TEST_F(NotificationTest, AccountMailsAreSentOnceWithTheirLinks) {
    start();
    messages::AccountMail verify{.mail_id = crypto::random_hex(12),
                                 .kind = messages::AccountMail::Kind::verify_email,
                                 .email = recipient_,
                                 .token = "tok-" + crypto::random_hex(8),
                                 .expires_at = 2000000000};
    publish("", topology_.notification_account_queue, verify.to_body());
    publish("", topology_.notification_account_queue, verify.to_body());  // redelivered: sent once
    ASSERT_TRUE(eventually([&] { return mails().size() == 1; }));
    std::string text = mails()[0].part("text/plain; charset=utf-8");
    EXPECT_NE(text.find("https://mp3converter.com/verify?token=" + verify.token), std::string::npos) << text;
    EXPECT_NE(text.find("2033-05-18 03:33 UTC"), std::string::npos) << "when the link stops working: " << text;
    EXPECT_EQ(mails()[0].header("Subject"), "Activate your mp3converter account");

    messages::AccountMail reset = verify;
    reset.mail_id = crypto::random_hex(12);
    reset.kind = messages::AccountMail::Kind::reset_password;
    publish("", topology_.notification_account_queue, reset.to_body());
    messages::AccountMail notice{.mail_id = crypto::random_hex(12),
                                 .kind = messages::AccountMail::Kind::registration_attempt,
                                 .email = recipient_};
    publish("", topology_.notification_account_queue, notice.to_body());
    ASSERT_TRUE(eventually([&] { return mails().size() == 3; }));
    std::string all;
    for (const auto& m : mails()) all += m.header("Subject") + "\n" + m.part("text/plain; charset=utf-8");
    EXPECT_NE(all.find("https://mp3converter.com/#reset=" + verify.token), std::string::npos) << all;
    EXPECT_NE(all.find("Someone tried to sign up with your address"), std::string::npos) << all;
    EXPECT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"duplicate\"}") == "1"; }));
    publish("", topology_.notification_account_queue, R"({"mail_id":"0123456789abcdef01234567","kind":"x"})");
    EXPECT_TRUE(eventually([&] { return dead(topology_.notification_account_queue).size() == 1; }));
}

TEST_F(NotificationTest, WebhookOfAFailedJobCarriesTheError) {
    WebhookReceiver receiver;
    start();
    std::string job = storage::new_id();
    auto event = failed_event(job, "the file is truncated");
    event["callback_url"] = receiver.url();
    publish(topology_.status_exchange, "job.failed", event.dump());
    ASSERT_TRUE(eventually([&] { return receiver.calls().size() == 1; }));
    auto body = nlohmann::json::parse(receiver.calls()[0].body);
    EXPECT_EQ(body["status"], "failed");
    EXPECT_EQ(body["error"], "the file is truncated");
    EXPECT_TRUE(body["mp3_url"].is_null());
}

TEST_F(NotificationTest, PrivateAddressWebhookIsRefusedAndTheMailStillGoes) {
    WebhookReceiver receiver;
    start([](NotifierConfig& c) { c.webhook.allow_private = false; });
    auto message = done_message(storage::new_id());
    message["callback_url"] = receiver.url();  // 127.0.0.1
    publish("", topology_.mp3_queue, message.dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_webhooks_total{result=\"refused\"}") == "1"; }));
    EXPECT_TRUE(receiver.calls().empty()) << "never called";
    EXPECT_TRUE(eventually([&] { return mails().size() == 1; }));
}

TEST_F(NotificationTest, FailingWebhookIsRetriedWithoutHoldingBackTheMail) {
    WebhookReceiver receiver(503);
    start([](NotifierConfig& c) { c.webhook_max_attempts = 2; });
    auto message = done_message(storage::new_id());
    message["callback_url"] = receiver.url();
    publish("", topology_.mp3_queue, message.dump());
    EXPECT_TRUE(eventually([&] { return mails().size() == 1; })) << "the mail does not wait for the webhook";
    ASSERT_TRUE(eventually([&] { return metric("notification_webhooks_total{result=\"gave_up\"}") == "1"; }, 30s));
    EXPECT_EQ(receiver.calls().size(), 2u) << "called, retried after 5 s, then given up";
    EXPECT_EQ(dead(topology_.notification_webhook_queue).size(), 1u);
}

// SMTP over TLS, both ways the service offers (STARTTLS on the submission port, TLS from the first byte as on 465),
// against the harness's SMTP server started here with a certificate made for the test.
class SmtpTlsTest : public ::testing::Test {
  protected:
    SmtpTlsTest() : dir_(fs::temp_directory_path() / ("mp3c-smtp-tls-" + crypto::random_hex(4))) {
        fs::create_directories(dir_ / "mail");
        auto made = testing::run_command("/usr/bin/openssl",
                                         {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                                          (dir_ / "key.pem").string(), "-out", (dir_ / "cert.pem").string(), "-days",
                                          "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                                         {});
        if (made.status != 0) throw std::runtime_error("openssl: " + made.out);
    }
    ~SmtpTlsTest() override {
        servers_.clear();
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    uint16_t start_server(bool implicit_tls) {
        uint16_t port = testing::free_port();
        std::vector<std::string> args = {std::string(MP3C_SOURCE_DIR) + "/scripts/lib/smtp-server.py",
                                         "--port",
                                         std::to_string(port),
                                         "--maildir",
                                         (dir_ / "mail").string(),
                                         "--tls-cert",
                                         (dir_ / "cert.pem").string(),
                                         "--tls-key",
                                         (dir_ / "key.pem").string(),
                                         "--auth-user",
                                         "tls-user",
                                         "--auth-password",
                                         "tls-password"};
        if (implicit_tls) args.push_back("--implicit-tls");
        servers_.push_back(
            std::make_unique<testing::Process>("/usr/bin/python3", args, std::map<std::string, std::string>{}));
        EXPECT_TRUE(servers_.back()->wait_for_output("listening on", 20s)) << servers_.back()->output();
        return port;
    }

    SendResult send(uint16_t port, SmtpOptions::Tls tls, bool trust_the_certificate) {
        SmtpOptions o;
        o.host = "127.0.0.1";
        o.port = port;
        o.tls = tls;
        o.username = "tls-user";
        o.password = "tls-password";
        o.from = "noreply@mp3converter.com";
        if (trust_the_certificate) o.ca_file = (dir_ / "cert.pem").string();
        o.connect_timeout = 5s;
        o.timeout = 10s;
        return SmtpClient(o).send("user@example.com", "Subject: tls\r\n\r\nover TLS\r\n");
    }

    size_t stored() const {
        size_t n = 0;
        for (const auto& e : fs::directory_iterator(dir_ / "mail")) n += e.path().extension() == ".eml";
        return n;
    }

    fs::path dir_;
    std::vector<std::unique_ptr<testing::Process>> servers_;
};

TEST_F(SmtpTlsTest, StartTlsDeliversAndPlainIsRefusedByAServerThatRequiresIt) {
    uint16_t port = start_server(false);
    auto sent = send(port, SmtpOptions::Tls::starttls, true);
    EXPECT_TRUE(sent) << sent.error().detail;
    EXPECT_EQ(stored(), 1u);
    auto plain = send(port, SmtpOptions::Tls::none, true);
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error().outcome, Outcome::transient) << "530 must issue STARTTLS: a configuration to fix";
    auto untrusted = send(port, SmtpOptions::Tls::starttls, false);
    ASSERT_FALSE(untrusted);
    EXPECT_EQ(untrusted.error().outcome, Outcome::transient) << "a certificate nobody vouches for is refused";
    EXPECT_EQ(stored(), 1u);
}

TEST_F(SmtpTlsTest, ImplicitTlsDeliversAndChecksTheCertificate) {
    uint16_t port = start_server(true);
    auto sent = send(port, SmtpOptions::Tls::tls, true);
    EXPECT_TRUE(sent) << sent.error().detail;
    auto untrusted = send(port, SmtpOptions::Tls::tls, false);
    ASSERT_FALSE(untrusted);
    EXPECT_EQ(untrusted.error().outcome, Outcome::transient) << untrusted.error().detail;
    EXPECT_EQ(stored(), 1u);
}

// --- the owner's choice of job mails (auth keeps it) -------------------------------------------------------------

// The users table of the test's auth: sets a user's choice as PATCH /account/preferences would.
void choose_job_mails(testing::TemporaryDatabase& auth_database, const std::string& email, messages::JobMails mails) {
    mysql::Pool pool(auth_database.options());
    auto id = auth::UserStore(pool).find_by_email(email)->id;
    ASSERT_TRUE(auth::MailPreferenceStore(pool).set(static_cast<uint64_t>(id), mails));
}

TEST_F(NotificationTest, EveryJobMailHasAOneClickUnsubscribeThatWorks) {
    start();
    publish("", topology_.mp3_queue, done_message(storage::new_id()).dump());
    ASSERT_TRUE(eventually([&] { return mails().size() == 1; }));
    auto mail = mails()[0];
    EXPECT_EQ(mail.header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    std::string header = mail.header("List-Unsubscribe");  // "<https://mp3converter.com/unsubscribe?token=...>"
    const std::string prefix = "<https://mp3converter.com/unsubscribe?token=";
    ASSERT_EQ(header.rfind(prefix, 0), 0u) << header;
    ASSERT_EQ(header.back(), '>');
    std::string token = header.substr(prefix.size(), header.size() - prefix.size() - 1);
    std::string text = mail.part("text/plain; charset=utf-8");
    EXPECT_NE(text.find("https://mp3converter.com/#unsubscribe=" + token), std::string::npos) << text;

    // The one-click POST (as the mail client sends it; the gateway moves the token into the body): job mails off.
    auto forged = testing::http_request(auth_port_, "POST", "/unsubscribe", {{"Content-Type", "application/json"}},
                                        nlohmann::json{{"token", "1" + token}}.dump());
    EXPECT_EQ(forged.status, 403) << forged.body;
    auto answer = testing::http_request(auth_port_, "POST", "/unsubscribe", {{"Content-Type", "application/json"}},
                                        nlohmann::json{{"token", token}}.dump());
    ASSERT_EQ(answer.status, 200) << answer.body;

    std::string job = storage::new_id();
    publish("", topology_.mp3_queue, done_message(job).dump());
    publish(topology_.status_exchange, "job.failed", failed_event(storage::new_id(), "no audio").dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"opted_out\"}") == "2"; }));
    EXPECT_EQ(mails().size(), 1u) << "nothing more";
    // A redelivery finds the decision recorded: still nothing.
    publish("", topology_.mp3_queue, done_message(job).dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"duplicate\"}") == "1"; }));
    EXPECT_EQ(mails().size(), 1u);
}

TEST_F(NotificationTest, AnOwnerWhoChoseSummariesGetsOneMailPerBatch) {
    start([](NotifierConfig& c) {
        c.digest_quiet = 2s;
        c.digest_max_wait = 60s;
    });
    choose_job_mails(auth_database_, recipient_, messages::JobMails::summary);
    std::string first = storage::new_id(), second = storage::new_id(), third = storage::new_id();
    publish("", topology_.mp3_queue, done_message(first, "one.mp4").dump());
    publish(topology_.status_exchange, "job.failed", failed_event(second, "the file has no audio track").dump());
    publish("", topology_.mp3_queue, done_message(third, "three.mp4").dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"summarized\"}") == "3"; }));
    ASSERT_TRUE(eventually([&] { return mails().size() == 1; }, 30s));
    auto mail = mails()[0];
    EXPECT_EQ(mail.header("Subject"), "2 files converted to MP3, 1 failed");
    EXPECT_EQ(mail.header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    std::string text = mail.part("text/plain; charset=utf-8");
    EXPECT_NE(text.find("\"one.mp4\": ready"), std::string::npos) << text;
    EXPECT_NE(text.find("\"x.mp4\": FAILED: the file has no audio track"), std::string::npos) << text;
    EXPECT_NE(text.find("https://mp3converter.com/jobs/" + third + "/mp3"), std::string::npos) << text;
    EXPECT_NE(text.find("one summary mail per batch"), std::string::npos) << text;

    // A redelivered job of the batch is not told again; a job that ends later starts the next batch.
    publish("", topology_.mp3_queue, done_message(first, "one.mp4").dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"duplicate\"}") == "1"; }));
    std::string fourth = storage::new_id();
    publish("", topology_.mp3_queue, done_message(fourth, "four.mp4").dump());
    ASSERT_TRUE(eventually([&] { return mails().size() == 2; }, 30s));
    std::string next = mails()[1].part("text/plain; charset=utf-8");
    EXPECT_EQ(mails()[1].header("Subject"), "1 file converted to MP3");
    EXPECT_NE(next.find("https://mp3converter.com/jobs/" + fourth + "/mp3"), std::string::npos) << next;
    EXPECT_EQ(next.find("one.mp4"), std::string::npos) << next;
    EXPECT_NE(mails()[0].header("Message-ID"), mails()[1].header("Message-ID"));
}

TEST_F(NotificationTest, AJobOfADeletedAccountMailsNobody) {
    start();
    std::string stranger = "gone-" + crypto::random_hex(4) + "@example.com";  // plausible, but no account at auth
    auto message = done_message(storage::new_id());
    message["username"] = stranger;
    publish("", topology_.mp3_queue, message.dump());
    ASSERT_TRUE(eventually([&] { return metric("notification_emails_total{result=\"no_owner\"}") == "1"; }));
    EXPECT_TRUE(mails_to(stranger).empty());
    EXPECT_EQ(metric("notification_emails_total{result=\"retried\"}"), "0") << "final, not retried";
}

}  // namespace
}  // namespace mp3c::notification::test
