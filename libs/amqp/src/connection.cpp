#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <vector>

#include "mp3c/amqp.hpp"
#include "mp3c/strings.hpp"

namespace mp3c::amqp {

struct ConnectionHandle {
    amqp_connection_state_t state = nullptr;
    bool healthy = false;  // logged in and no failure seen: worth a polite close

    ~ConnectionHandle() {
        if (state == nullptr) return;
        if (healthy) amqp_connection_close(state, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(state);
    }
};

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
    if (ms.count() < 0) ms = std::chrono::milliseconds(0);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

std::string bytes_to_string(amqp_bytes_t bytes) {
    return bytes.len == 0 ? std::string() : std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

std::string describe(amqp_rpc_reply_t reply) {
    switch (reply.reply_type) {
        case AMQP_RESPONSE_NORMAL:
            return "ok";
        case AMQP_RESPONSE_NONE:
            return "no reply from the broker";
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return amqp_error_string2(reply.library_error);
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
                auto* m = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
                return "broker closed the connection: " + std::to_string(m->reply_code) + " " +
                       bytes_to_string(m->reply_text);
            }
            if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
                auto* m = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
                return "broker closed the channel: " + std::to_string(m->reply_code) + " " +
                       bytes_to_string(m->reply_text);
            }
            return "broker error";
    }
    return "unknown reply";
}

// The URL's host, port and vhost, never its credentials (for messages).
std::string where(const amqp_connection_info& info) {
    return std::string(info.host) + ":" + std::to_string(info.port) + info.vhost;
}

amqp_table_entry_t utf8_entry(const char* key, const std::string& value) {
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(value.c_str());
    return e;
}

int64_t total_death_count(const amqp_basic_properties_t& props) {
    if (!(props._flags & AMQP_BASIC_HEADERS_FLAG)) return 0;
    int64_t total = 0;
    for (int i = 0; i < props.headers.num_entries; ++i) {
        const auto& entry = props.headers.entries[i];
        if (bytes_to_string(entry.key) != "x-death" || entry.value.kind != AMQP_FIELD_KIND_ARRAY) continue;
        const auto& deaths = entry.value.value.array;
        for (int d = 0; d < deaths.num_entries; ++d) {
            if (deaths.entries[d].kind != AMQP_FIELD_KIND_TABLE) continue;
            const auto& table = deaths.entries[d].value.table;
            for (int k = 0; k < table.num_entries; ++k) {
                if (bytes_to_string(table.entries[k].key) != "count") continue;
                const auto& v = table.entries[k].value;
                if (v.kind == AMQP_FIELD_KIND_I64) total += v.value.i64;
                if (v.kind == AMQP_FIELD_KIND_I32) total += v.value.i32;
                if (v.kind == AMQP_FIELD_KIND_U32) total += v.value.u32;
            }
        }
    }
    return total;
}

}  // namespace

std::vector<std::string> addresses(const std::string& urls) {
    std::vector<std::string> list;
    for (auto part : split(urls, ',')) {
        if (auto url = trim(part); !url.empty()) list.emplace_back(url);
    }
    return list;
}

namespace {

// Each new connection starts at the next address, so that a fleet's connections spread over a cluster's nodes and a
// node that just failed is not the first one tried again.
std::atomic<size_t> next_address{0};

}  // namespace

Connection::Connection(const Options& options) : options_(options) {
    auto list = addresses(options.url);
    if (list.empty()) throw Error("AMQP_URL names no broker");
    std::string failures;
    size_t first = next_address.fetch_add(1);
    for (size_t i = 0; i < list.size(); ++i) {
        try {
            open(list[(first + i) % list.size()]);
            return;
        } catch (const Error& e) {
            if (list.size() == 1) throw;
            failures += std::string(failures.empty() ? "" : "; ") + e.what();
        }
    }
    throw Error("no RabbitMQ node of " + std::to_string(list.size()) + " could be used: " + failures);
}

void Connection::open(const std::string& address) {
    handle_ = std::make_unique<ConnectionHandle>();
    std::vector<char> url(address.begin(), address.end());
    url.push_back('\0');
    amqp_connection_info info;
    amqp_default_connection_info(&info);
    if (amqp_parse_url(url.data(), &info) != AMQP_STATUS_OK) throw Error("AMQP_URL is not a valid amqp:// URL");
    if (info.ssl) throw Error("amqps:// is not supported by this build; use amqp://");
    // "amqp://host/" names the empty vhost by the letter of the spec; everyone means the default one.
    static char kDefaultVhost[] = "/";
    if (info.vhost == nullptr || *info.vhost == '\0') info.vhost = kDefaultVhost;

    handle_->state = amqp_new_connection();
    if (handle_->state == nullptr) throw Error("amqp_new_connection failed");
    amqp_socket_t* socket = amqp_tcp_socket_new(handle_->state);
    if (socket == nullptr) throw Error("amqp_tcp_socket_new failed");
    timeval connect_timeout = to_timeval(options_.connect_timeout);
    int rc = amqp_socket_open_noblock(socket, info.host, info.port, &connect_timeout);
    if (rc != AMQP_STATUS_OK)
        throw Error("cannot connect to RabbitMQ at " + where(info) + ": " + amqp_error_string2(rc));
    // Every RPC (declare, bind, close) is bounded, so a hung broker cannot hang a request thread; so is the login
    // (rabbitmq-c's own bound is 12 s), so a node that accepts and never answers is passed over as quickly.
    amqp_set_rpc_timeout(handle_->state, &connect_timeout);
    amqp_set_handshake_timeout(handle_->state, &connect_timeout);

    std::string name = options_.connection_name.empty() ? "mp3converter" : options_.connection_name;
    amqp_table_entry_t property = utf8_entry("connection_name", name);
    amqp_table_t properties{1, &property};
    auto login =
        amqp_login_with_properties(handle_->state, info.vhost, 0, 131072, static_cast<int>(options_.heartbeat.count()),
                                   &properties, AMQP_SASL_METHOD_PLAIN, info.user, info.password);
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
        throw Error("RabbitMQ login at " + where(info) + " failed: " + describe(login));
    }
    amqp_channel_open(handle_->state, 1);
    auto opened = amqp_get_rpc_reply(handle_->state);
    if (opened.reply_type != AMQP_RESPONSE_NORMAL) throw Error("channel.open failed: " + describe(opened));
    handle_->healthy = true;
    address_ = where(info);
}

Connection::~Connection() = default;

namespace {

void check_reply(ConnectionHandle& h, const std::string& what) {
    auto reply = amqp_get_rpc_reply(h.state);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        h.healthy = false;  // a channel error closes our only channel: the connection is done
        throw Error(what + ": " + describe(reply));
    }
}

}  // namespace

void Connection::declare_exchange(const std::string& name, const std::string& type) {
    amqp_exchange_declare(handle_->state, 1, amqp_cstring_bytes(name.c_str()), amqp_cstring_bytes(type.c_str()), 0,
                          /*durable=*/1, /*auto_delete=*/0, /*internal=*/0, amqp_empty_table);
    check_reply(*handle_, "exchange.declare " + name);
}

uint32_t Connection::declare_queue(const std::string& name, bool durable, bool exclusive, bool auto_delete,
                                   const QueueArgs& args) {
    std::vector<amqp_table_entry_t> entries;
    if (args.dead_letter_exchange) entries.push_back(utf8_entry("x-dead-letter-exchange", *args.dead_letter_exchange));
    if (args.dead_letter_routing_key) {
        entries.push_back(utf8_entry("x-dead-letter-routing-key", *args.dead_letter_routing_key));
    }
    if (args.message_ttl_ms) {
        amqp_table_entry_t e;
        e.key = amqp_cstring_bytes("x-message-ttl");
        e.value.kind = AMQP_FIELD_KIND_I64;
        e.value.value.i64 = *args.message_ttl_ms;
        entries.push_back(e);
    }
    if (args.queue_type) entries.push_back(utf8_entry("x-queue-type", *args.queue_type));
    if (args.at_least_once_dead_lettering) {
        // RabbitMQ 3.10's quorum queues keep a dead-lettered message until the queue it goes to has it; that needs
        // publishes refused (not old messages dropped) when the queue is full.
        entries.push_back(utf8_entry("x-dead-letter-strategy", "at-least-once"));
        entries.push_back(utf8_entry("x-overflow", "reject-publish"));
    }
    amqp_table_t table{static_cast<int>(entries.size()), entries.empty() ? nullptr : entries.data()};
    auto* ok = amqp_queue_declare(handle_->state, 1, amqp_cstring_bytes(name.c_str()), 0, durable, exclusive,
                                  auto_delete, table);
    check_reply(*handle_, "queue.declare " + name);
    return ok == nullptr ? 0 : ok->message_count;
}

uint32_t Connection::queue_depth(const std::string& name) {
    auto* ok = amqp_queue_declare(handle_->state, 1, amqp_cstring_bytes(name.c_str()), /*passive=*/1, 0, 0, 0,
                                  amqp_empty_table);
    check_reply(*handle_, "queue.declare (passive) " + name);
    return ok == nullptr ? 0 : ok->message_count;
}

void Connection::bind(const std::string& queue, const std::string& exchange, const std::string& routing_key) {
    amqp_queue_bind(handle_->state, 1, amqp_cstring_bytes(queue.c_str()), amqp_cstring_bytes(exchange.c_str()),
                    amqp_cstring_bytes(routing_key.c_str()), amqp_empty_table);
    check_reply(*handle_, "queue.bind " + queue + " to " + exchange);
}

void Connection::enable_confirms() {
    if (confirms_) return;
    amqp_confirm_select(handle_->state, 1);
    check_reply(*handle_, "confirm.select");
    confirms_ = true;
}

void Connection::publish(const std::string& exchange, const std::string& routing_key, const Message& message) {
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
    props.content_type = amqp_cstring_bytes(message.content_type.c_str());
    props.delivery_mode = message.persistent ? 2 : 1;
    props.timestamp = static_cast<uint64_t>(std::time(nullptr));
    if (!message.message_id.empty()) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(message.message_id.c_str());
    }
    if (!message.correlation_id.empty()) {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = amqp_cstring_bytes(message.correlation_id.c_str());
    }
    std::string expiration = message.expiration_ms ? std::to_string(*message.expiration_ms) : "";
    if (message.expiration_ms) {
        props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
        props.expiration = amqp_cstring_bytes(expiration.c_str());
    }
    amqp_bytes_t body{message.body.size(), const_cast<char*>(message.body.data())};
    uint64_t tag = next_publish_tag_++;
    int rc =
        amqp_basic_publish(handle_->state, 1, amqp_cstring_bytes(exchange.c_str()),
                           amqp_cstring_bytes(routing_key.c_str()), /*mandatory=*/1, /*immediate=*/0, &props, body);
    if (rc != AMQP_STATUS_OK) {
        handle_->healthy = false;
        throw Error(std::string("publish failed: ") + amqp_error_string2(rc));
    }
    if (!confirms_) return;

    auto deadline = std::chrono::steady_clock::now() + options_.confirm_timeout;
    bool returned = false;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        timeval tv = to_timeval(left);
        amqp_frame_t frame;
        int r = amqp_simple_wait_frame_noblock(handle_->state, &frame, &tv);
        if (r == AMQP_STATUS_TIMEOUT) {
            handle_->healthy = false;  // a late confirm would be read as the next message's
            throw Error("the broker did not confirm the message within " +
                        std::to_string(options_.confirm_timeout.count()) + " ms");
        }
        if (r != AMQP_STATUS_OK) {
            handle_->healthy = false;
            throw Error(std::string("waiting for the publisher confirm: ") + amqp_error_string2(r));
        }
        if (frame.frame_type != AMQP_FRAME_METHOD) continue;
        switch (frame.payload.method.id) {
            case AMQP_BASIC_ACK_METHOD: {
                auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
                if (ack->delivery_tag < tag) continue;
                if (returned) throw Error("no queue is bound for " + exchange + "/" + routing_key);
                return;
            }
            case AMQP_BASIC_NACK_METHOD:
                throw Error("the broker refused the message (nack)");
            case AMQP_BASIC_RETURN_METHOD: {
                returned = true;  // unroutable; its content frames follow, then the ack
                amqp_message_t content;
                auto read = amqp_read_message(handle_->state, frame.channel, &content, 0);
                if (read.reply_type == AMQP_RESPONSE_NORMAL) amqp_destroy_message(&content);
                continue;
            }
            case AMQP_CHANNEL_CLOSE_METHOD:
            case AMQP_CONNECTION_CLOSE_METHOD:
                handle_->healthy = false;
                throw Error("the broker closed the channel while publishing");
            default:
                continue;
        }
    }
}

void Connection::consume(const std::string& queue, uint16_t prefetch) {
    amqp_basic_qos(handle_->state, 1, 0, prefetch, 0);
    check_reply(*handle_, "basic.qos");
    amqp_basic_consume(handle_->state, 1, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0, /*no_ack=*/0, 0,
                       amqp_empty_table);
    check_reply(*handle_, "basic.consume " + queue);
}

std::optional<Delivery> Connection::next(std::chrono::milliseconds timeout) {
    amqp_maybe_release_buffers(handle_->state);
    timeval tv = to_timeval(timeout);
    amqp_envelope_t envelope;
    auto reply = amqp_consume_message(handle_->state, &envelope, &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_TIMEOUT) {
        return std::nullopt;
    }
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            // A frame other than a delivery: the broker closing the channel, or cancelling the consumer.
            amqp_frame_t frame;
            if (amqp_simple_wait_frame(handle_->state, &frame) == AMQP_STATUS_OK &&
                frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id != AMQP_CHANNEL_CLOSE_METHOD &&
                frame.payload.method.id != AMQP_CONNECTION_CLOSE_METHOD &&
                frame.payload.method.id != AMQP_BASIC_CANCEL_METHOD) {
                return std::nullopt;
            }
        }
        handle_->healthy = false;
        throw Error("consuming: " + describe(reply));
    }
    Delivery d;
    d.body = bytes_to_string(envelope.message.body);
    d.exchange = bytes_to_string(envelope.exchange);
    d.routing_key = bytes_to_string(envelope.routing_key);
    d.delivery_tag = envelope.delivery_tag;
    d.redelivered = envelope.redelivered != 0;
    const auto& props = envelope.message.properties;
    if (props._flags & AMQP_BASIC_MESSAGE_ID_FLAG) d.message_id = bytes_to_string(props.message_id);
    if (props._flags & AMQP_BASIC_CORRELATION_ID_FLAG) d.correlation_id = bytes_to_string(props.correlation_id);
    d.death_count = total_death_count(props);
    amqp_destroy_envelope(&envelope);
    return d;
}

void Connection::ack(uint64_t delivery_tag) {
    if (amqp_basic_ack(handle_->state, 1, delivery_tag, 0) != AMQP_STATUS_OK) {
        handle_->healthy = false;
        throw Error("basic.ack failed");
    }
}

void Connection::reject(uint64_t delivery_tag, bool requeue) {
    if (amqp_basic_reject(handle_->state, 1, delivery_tag, requeue) != AMQP_STATUS_OK) {
        handle_->healthy = false;
        throw Error("basic.reject failed");
    }
}

void Connection::pump() {
    for (;;) {
        timeval zero{0, 0};
        amqp_frame_t frame;
        int r = amqp_simple_wait_frame_noblock(handle_->state, &frame, &zero);
        if (r == AMQP_STATUS_TIMEOUT) return;
        if (r != AMQP_STATUS_OK) {
            handle_->healthy = false;
            throw Error(std::string("connection lost: ") + amqp_error_string2(r));
        }
        if (frame.frame_type == AMQP_FRAME_METHOD && (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                                                      frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
            handle_->healthy = false;
            throw Error("the broker closed the connection");
        }
    }
}

}  // namespace mp3c::amqp
