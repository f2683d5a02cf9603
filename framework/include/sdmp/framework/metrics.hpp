// Counters and latency histograms of a server or a client, readable as a snapshot.
// Thread-safe: every session of a server updates the same Metrics from its own strand. Counters
// are atomics; the per-method maps are sharded by thread, so the sessions of different threads
// never wait for one another, and snapshot() merges the shards.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "sdmp/protocol/message.hpp"

namespace sdmp {

// Fixed log-spaced buckets: cheap to update, good enough for p50/p99 at a glance.
struct LatencyHistogram {
    static constexpr std::size_t k_bucket_count = 17;
    // Inclusive upper bound of each bucket in microseconds; the last bucket is unbounded.
    static constexpr std::array<std::uint64_t, k_bucket_count - 1> k_bounds_us = {
        50,    100,   250,    500,    1000,   2500,    5000,    10000,
        25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000};

    std::array<std::uint64_t, k_bucket_count> counts{};
    std::uint64_t count = 0;
    std::uint64_t sum_us = 0;
    std::uint64_t max_us = 0;

    void add(std::chrono::nanoseconds latency) noexcept;
    // Upper bound (µs) of the bucket holding the q-quantile (0 < q <= 1); 0 when empty.
    std::uint64_t quantile_upper_bound_us(double q) const noexcept;
};

struct MethodStats {
    std::array<std::uint64_t, protocol::k_max_status + 1> by_status{};  // index = Status value
    LatencyHistogram latency;

    std::uint64_t total() const noexcept;
    std::uint64_t count(protocol::Status status) const noexcept {
        return by_status[static_cast<std::size_t>(status)];
    }
};

struct MetricsSnapshot {
    // Handshakes. `handshakes_refused` is keyed by the local reason (HandshakeError names,
    // plus "max_sessions" / "max_handshakes" for admission limits); the wire only ever saw `nope`.
    std::uint64_t handshakes_completed = 0;
    std::map<std::string, std::uint64_t, std::less<>> handshakes_refused;
    std::uint64_t handshakes_refused_by_peer = 0;  // we initiated and got `nope`
    std::uint64_t handshakes_failed = 0;           // I/O errors, timeouts on our side, ...

    std::uint64_t sessions_open = 0;
    std::uint64_t sessions_total = 0;

    std::uint64_t bytes_in = 0;  // record bytes after the handshake
    std::uint64_t bytes_out = 0;
    std::uint64_t records_in = 0;
    std::uint64_t records_out = 0;
    std::uint64_t messages_in = 0;
    std::uint64_t messages_out = 0;

    std::uint64_t notifications_in = 0;
    std::uint64_t notifications_out = 0;
    std::uint64_t notifications_dropped = 0;  // unknown method or over max_in_flight
    std::uint64_t send_queue_waits = 0;       // a sender had to wait for queue space

    // Requests this side served, by method ("<unknown>" for methods without a handler, so a
    // peer cannot grow this map), and calls this side made, by method.
    std::map<std::string, MethodStats, std::less<>> served;
    std::map<std::string, MethodStats, std::less<>> called;
};

class Metrics {
  public:
    Metrics() = default;
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    void handshake_completed() noexcept { add(handshakes_completed_); }
    void handshake_refused(std::string_view reason);
    void handshake_refused_by_peer() noexcept { add(handshakes_refused_by_peer_); }
    void handshake_failed() noexcept { add(handshakes_failed_); }

    void session_opened() noexcept;
    void session_closed() noexcept;

    void bytes_received(std::size_t bytes, std::size_t records) noexcept;
    void bytes_sent(std::size_t bytes, std::size_t records) noexcept;
    void messages_received(std::size_t n) noexcept { add(messages_in_, n); }
    void messages_sent(std::size_t n) noexcept { add(messages_out_, n); }
    void notification_received() noexcept { add(notifications_in_); }
    void notification_sent() noexcept { add(notifications_out_); }
    void notification_dropped() noexcept { add(notifications_dropped_); }
    void send_queue_wait() noexcept { add(send_queue_waits_); }

    void request_served(std::string_view method, protocol::Status status,
                        std::chrono::nanoseconds latency);
    void call_completed(std::string_view method, protocol::Status status,
                        std::chrono::nanoseconds latency);

    MetricsSnapshot snapshot() const;

  private:
    // Saturating: a counter never wraps around to a small value.
    static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept;

    std::atomic<std::uint64_t> handshakes_completed_{0};
    std::atomic<std::uint64_t> handshakes_refused_by_peer_{0};
    std::atomic<std::uint64_t> handshakes_failed_{0};
    std::atomic<std::uint64_t> sessions_open_{0};
    std::atomic<std::uint64_t> sessions_total_{0};
    std::atomic<std::uint64_t> bytes_in_{0};
    std::atomic<std::uint64_t> bytes_out_{0};
    std::atomic<std::uint64_t> records_in_{0};
    std::atomic<std::uint64_t> records_out_{0};
    std::atomic<std::uint64_t> messages_in_{0};
    std::atomic<std::uint64_t> messages_out_{0};
    std::atomic<std::uint64_t> notifications_in_{0};
    std::atomic<std::uint64_t> notifications_out_{0};
    std::atomic<std::uint64_t> notifications_dropped_{0};
    std::atomic<std::uint64_t> send_queue_waits_{0};

    mutable std::mutex mutex_;  // guards refused_ (refusals are rare next to requests)
    std::map<std::string, std::uint64_t, std::less<>> refused_;

    // Per-method figures of the threads that share a slot. A request takes its own thread's
    // shard lock, which only snapshot() also takes. Made on first use, so a client's Metrics
    // (one per connection by default) costs a few pointers until it records a call.
    struct MethodShard {
        mutable std::mutex mutex;
        std::map<std::string, MethodStats, std::less<>> served;
        std::map<std::string, MethodStats, std::less<>> called;
    };
    static constexpr std::size_t k_shards = 16;
    MethodShard& shard();
    std::array<std::atomic<MethodShard*>, k_shards> shards_{};
};

}  // namespace sdmp
