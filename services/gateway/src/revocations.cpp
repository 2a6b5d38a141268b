#include "revocations.hpp"

#include "mp3c/log.hpp"
#include "mp3c/outbound.hpp"
#include "ports.hpp"

namespace mp3c::gateway {

namespace {

constexpr size_t kMaxAnswerBytes = 16 << 20;

int64_t unix_ms() { return SystemClock().now_ms(); }

}  // namespace

void RevocationList::apply(const messages::Revocations& update, int64_t now_s) {
    std::unique_lock lock(mutex_);
    for (const auto& c : update.cutoffs) {
        auto& valid_after = cutoffs_[c.user_id];
        valid_after = std::max(valid_after, c.valid_after);
    }
    for (const auto& t : update.tokens) tokens_[t.jti] = t.expires_at;
    std::erase_if(tokens_, [now_s](const auto& entry) { return entry.second < now_s; });
    cursor_ms_ = std::max(cursor_ms_, update.cursor_ms);
}

bool RevocationList::revoked(const messages::AccessClaims& claims) const {
    std::shared_lock lock(mutex_);
    if (auto it = cutoffs_.find(claims.user_id); it != cutoffs_.end() && claims.issued_at < it->second) return true;
    return !claims.jti.empty() && tokens_.contains(claims.jti);
}

int64_t RevocationList::cursor_ms() const {
    std::shared_lock lock(mutex_);
    return cursor_ms_;
}

RevocationPoller::RevocationPoller(RevocationList& list, std::string auth_url, std::chrono::milliseconds interval,
                                   std::chrono::milliseconds timeout, metrics::Registry& registry)
    : list_(list),
      auth_url_(std::move(auth_url)),
      interval_(interval),
      timeout_(timeout),
      polls_(registry.counter("gateway_revocation_polls_total", "Polls of auth's revoked tokens by outcome.",
                              {"result"})) {
    registry.callback_gauge("gateway_revocations_age_seconds",
                            "Seconds since the list of revoked tokens was last brought up to date (-1: never).",
                            [this] {
                                int64_t at = synced_at_ms_.load();
                                return at == 0 ? -1.0 : static_cast<double>(unix_ms() - at) / 1000.0;
                            });
}

RevocationPoller::~RevocationPoller() { stop(); }

void RevocationPoller::start() {
    if (thread_.joinable()) return;
    thread_ = std::jthread([this](std::stop_token stop) {
        while (!stop.stop_requested()) {
            poll_once();
            std::unique_lock lock(mutex_);
            wake_.wait_for(lock, stop, interval_, [] { return false; });  // the interval, or until stop()
        }
    });
}

void RevocationPoller::stop() {
    if (!thread_.joinable()) return;
    thread_.request_stop();
    thread_.join();
}

bool RevocationPoller::poll_once() {
    outbound::Options options;
    options.connect_timeout = timeout_;
    options.timeout = timeout_;
    outbound::Transfer transfer(auth_url_ + "/revocations?since_ms=" + std::to_string(list_.cursor_ms()), options);
    std::string body;
    transfer.collect_body(body, kMaxAnswerBytes);
    auto status = transfer.perform();
    if (!status || status.value() != 200) {
        polls_.with({"unavailable"}).inc();
        log::warn("cannot update the revoked tokens",
                  {{"error", status ? "HTTP " + std::to_string(status.value()) : status.error().detail}});
        return false;
    }
    auto update = messages::Revocations::parse(body);
    if (!update) {
        polls_.with({"invalid"}).inc();
        log::warn("auth's revoked tokens unreadable", {{"error", update.error().describe()}});
        return false;
    }
    list_.apply(update.value(), unix_ms() / 1000);
    synced_at_ms_ = unix_ms();
    polls_.with({"ok"}).inc();
    return true;
}

}  // namespace mp3c::gateway
