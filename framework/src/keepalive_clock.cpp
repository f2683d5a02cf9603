#include "detail/keepalive_clock.hpp"

#include <algorithm>

namespace sdmp::detail {

KeepaliveClock::KeepaliveClock(std::chrono::milliseconds keepalive_interval,
                               std::chrono::milliseconds idle_timeout, Clock::time_point now)
    : interval_(keepalive_interval), idle_(idle_timeout), last_receive_(now), last_activity_(now) {}

void KeepaliveClock::on_receive(Clock::time_point at) noexcept {
    last_receive_ = at;
    ping_outstanding_ = false;
}

std::optional<KeepaliveClock::Clock::time_point> KeepaliveClock::next_wake(
    bool open) const noexcept {
    std::optional<Clock::time_point> next;
    auto earliest = [&next](Clock::time_point t) { next = next ? std::min(*next, t) : t; };
    if (interval_.count() > 0)
        earliest(ping_outstanding_ ? ping_sent_ + interval_ : last_receive_ + interval_);
    if (idle_.count() > 0 && open)
        earliest(last_activity_ + idle_);
    return next;
}

KeepaliveClock::Due KeepaliveClock::on_timer(Clock::time_point now, bool open, bool busy) noexcept {
    Due due;
    if (interval_.count() > 0) {
        if (ping_outstanding_ && now - ping_sent_ >= interval_) {
            due.peer_silent = true;
            return due;
        }
        if (!ping_outstanding_ && now - last_receive_ >= interval_) {
            due.ping = ++ping_counter_;
            ping_outstanding_ = true;
            ping_sent_ = now;
        }
    }
    if (idle_.count() > 0 && open && now - last_activity_ >= idle_) {
        if (busy)
            last_activity_ = now;  // calls in flight are activity
        else
            due.idle = true;
    }
    return due;
}

}  // namespace sdmp::detail
