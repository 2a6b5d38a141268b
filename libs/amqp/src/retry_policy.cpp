#include "mp3c/amqp.hpp"

namespace mp3c::amqp {

RetryPolicy::RetryPolicy(Publisher& publisher, std::string queue, int max_attempts)
    : publisher_(publisher), queue_(std::move(queue)), max_attempts_(max_attempts) {}

Consumer::Outcome RetryPolicy::retry(const Delivery& delivery, int attempt, const std::string& next_body) {
    if (exhausted(attempt)) return Consumer::Outcome::dead_letter;
    publisher_.publish(
        names::retry_exchange(queue_), names::retry_key_after(attempt),
        {.body = next_body, .message_id = delivery.message_id, .correlation_id = delivery.correlation_id});
    return Consumer::Outcome::ack;
}

Consumer::Outcome RetryPolicy::later(const Delivery& delivery) {
    publisher_.publish(
        names::retry_exchange(queue_), names::retry_key_after(1),
        {.body = delivery.body, .message_id = delivery.message_id, .correlation_id = delivery.correlation_id});
    return Consumer::Outcome::ack;
}

}  // namespace mp3c::amqp
