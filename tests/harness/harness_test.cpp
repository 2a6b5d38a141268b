// The harness's RabbitMQ is real and private: AMQP works, and a durable queue keeps a persistent, confirmed message
// across `harness-ctl restart rabbitmq` (same port, same data). Restarts the shared broker, so it runs alone.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "mp3c/crypto.hpp"
#include "mp3c/testing/servers.hpp"

namespace {

struct ConnectionClose {
    void operator()(amqp_connection_state_t_* c) const {
        amqp_connection_close(c, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c);
    }
};
using Connection = std::unique_ptr<amqp_connection_state_t_, ConnectionClose>;

std::string env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr) throw std::runtime_error(std::string(name) + " not set: run under scripts/with-servers");
    return v;
}

void check(amqp_rpc_reply_t reply, const char* what) {
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error(std::string(what) + " failed");
}

Connection connect() {
    Connection c(amqp_new_connection());
    amqp_socket_t* socket = amqp_tcp_socket_new(c.get());
    if (socket == nullptr) throw std::runtime_error("amqp_tcp_socket_new failed");
    if (amqp_socket_open(socket, env("MP3C_TEST_AMQP_HOST").c_str(), std::stoi(env("MP3C_TEST_AMQP_PORT"))) !=
        AMQP_STATUS_OK) {
        throw std::runtime_error("cannot connect to the harness's RabbitMQ");
    }
    check(amqp_login(c.get(), "/", 0, 131072, 30, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(c.get(), 1);
    check(amqp_get_rpc_reply(c.get()), "channel.open");
    return c;
}

void declare_durable(amqp_connection_state_t c, const std::string& queue) {
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue.c_str()), /*passive=*/0, /*durable=*/1, /*exclusive=*/0,
                       /*auto_delete=*/0, amqp_empty_table);
    check(amqp_get_rpc_reply(c), "queue.declare");
}

void publish_confirmed(amqp_connection_state_t c, const std::string& queue, const std::string& body) {
    amqp_confirm_select(c, 1);
    check(amqp_get_rpc_reply(c), "confirm.select");
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.delivery_mode = 2;  // persistent
    props.content_type = amqp_cstring_bytes("application/json");
    if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue.c_str()), /*mandatory=*/1, 0, &props,
                           amqp_cstring_bytes(body.c_str())) != AMQP_STATUS_OK) {
        throw std::runtime_error("publish failed");
    }
    amqp_method_t method;
    if (amqp_simple_wait_method(c, 1, AMQP_BASIC_ACK_METHOD, &method) != AMQP_STATUS_OK) {
        throw std::runtime_error("no publisher confirm");
    }
}

std::optional<std::string> get_one(amqp_connection_state_t c, const std::string& queue) {
    amqp_rpc_reply_t reply = amqp_basic_get(c, 1, amqp_cstring_bytes(queue.c_str()), /*no_ack=*/1);
    check(reply, "basic.get");
    if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
    amqp_message_t message;
    check(amqp_read_message(c, 1, &message, 0), "read message");
    std::string body(static_cast<const char*>(message.body.bytes), message.body.len);
    amqp_destroy_message(&message);
    return body;
}

TEST(Harness, RabbitMqKeepsDurableMessagesAcrossARestart) {
    const std::string queue = "harness-check-" + mp3c::crypto::random_hex(4);
    const std::string body = R"({"video_fid":"0123456789abcdef01234567","mp3_fid":null,"username":"a@b.c"})";
    {
        auto c = connect();
        declare_durable(c.get(), queue);
        publish_confirmed(c.get(), queue, body);
    }
    mp3c::testing::harness_ctl("restart", "rabbitmq");
    auto c = connect();
    declare_durable(c.get(), queue);
    EXPECT_EQ(get_one(c.get(), queue), body);
    EXPECT_EQ(get_one(c.get(), queue), std::nullopt);
}

TEST(Harness, MariaDbIsReachableAsTheHarnessUser) {
    auto server = mp3c::testing::mysql_server();
    auto out = mp3c::testing::mysql_admin(server, "SELECT @@character_set_server, @@port");
    EXPECT_EQ(out, "utf8mb4\t" + std::to_string(server.port) + "\n");
}

}  // namespace
