// Keepalive and the idle timeout (protocol.md §6.5) as decisions on the times the session
// reports: when to ping a silent peer, when to give up on one that stays silent, and when an
// idle session may end. Sans-IO: the session owns the timer and acts on the decisions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace sdmp::detail {

class KeepaliveClock {
  public:
    using Clock = std::chrono::steady_clock;

    // An interval or timeout of 0 switches that watch off.
    KeepaliveClock(std::chrono::milliseconds keepalive_interval,
                   std::chrono::milliseconds idle_timeout, Clock::time_point now);

    // Bytes arrived from the peer: it is alive, and an outstanding ping is answered.
    void on_receive(Clock::time_point at) noexcept;
    // A request, response or notification moved, in either direction.
    void on_activity(Clock::time_point at) noexcept { last_activity_ = at; }

    // When the timer should next fire; nullopt when nothing is watched. The idle timeout only
    // applies while the session is `open` (not draining).
    std::optional<Clock::time_point> next_wake(bool open) const noexcept;

    struct Due {
        std::optional<std::uint64_t> ping;  // send a ping with this opaque value
        bool peer_silent = false;           // nothing for two intervals: close the session
        bool idle = false;                  // idle and nothing in flight: end gracefully
    };
    // The timer fired at `now`. `busy`: calls or requests are in flight, which counts as
    // activity (the idle clock restarts).
    Due on_timer(Clock::time_point now, bool open, bool busy) noexcept;

    bool enabled() const noexcept { return interval_.count() > 0 || idle_.count() > 0; }

  private:
    std::chrono::milliseconds interval_;
    std::chrono::milliseconds idle_;
    Clock::time_point last_receive_;
    Clock::time_point last_activity_;
    bool ping_outstanding_ = false;
    Clock::time_point ping_sent_;
    std::uint64_t ping_counter_ = 0;
};

}  // namespace sdmp::detail
