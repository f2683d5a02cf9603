// The handshakes a server has in progress, and the deadline of each (protocol.md §3.6,
// ServerOptions::max_handshakes, HandshakeOptions' timeouts).
//
// Mature servers keep slow and silent clients from locking out good ones with short deadlines
// for the first bytes and for the whole first message, and by dropping the oldest incomplete
// handshake when the table is full: a legitimate initiator sends its 160 bytes at once, so it
// is never the oldest incomplete one for long, while a stalled connection is evicted by every
// newcomer once it is the oldest and has held its slot for the eviction age. A connection whose
// whole message waits in the kernel's receive buffer is not stalled, only not read yet: it
// counts as complete. A newcomer that finds no handshake to evict waits for a slot instead of
// being refused, for a bounded time: complete handshakes end within one crypto step, and a
// client that connects a thousand times at once writes its messages a little after the
// server accepted them, so a burst is served, not refused.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>

#include "detail/asio.hpp"

namespace sdmp::detail {

// The deadline of one handshake, raced against the exchange. It lives on the connection's
// executor; the table only ever posts evict() there.
class HandshakeWatch {
  public:
    // `native_socket`: the connection's descriptor, asked how many bytes wait unread (-1: never).
    explicit HandshakeWatch(Executor executor, int native_socket = -1);

    // Completes once the deadline has passed (or at once after evict()).
    asio::awaitable<void> expire();
    // Moves the deadline; an earlier one takes effect at once.
    void set_deadline(SteadyClock::time_point deadline);
    void evict();
    bool evicted() const noexcept { return evicted_; }
    // The whole connection message has arrived: the handshake is no longer evictable.
    void message_complete() noexcept { message_complete_.store(true, std::memory_order_relaxed); }
    // Read, or waiting whole in the socket's receive buffer.
    bool is_message_complete() const noexcept;
    const Executor& executor() const noexcept { return executor_; }

  private:
    friend class HandshakeTable;
    Executor executor_;
    int native_socket_;
    Timer timer_;
    SteadyClock::time_point deadline_;
    bool evicted_ = false;
    std::atomic<bool> message_complete_{false};
    // HandshakeTable's, under its mutex.
    bool in_table_ = false;
    std::list<std::shared_ptr<HandshakeWatch>>::iterator position_;
    SteadyClock::time_point entered_;  // when it took its slot
};

// At most `capacity` handshakes at once, oldest first. Thread-safe; O(1) but for the scan past
// handshakes whose message is already complete (they finish within one crypto step).
class HandshakeTable {
  public:
    // `eviction_age`: how long an incomplete handshake keeps its slot before a newcomer may
    // evict it.
    HandshakeTable(std::size_t capacity, SteadyClock::duration eviction_age)
        : capacity_(capacity), eviction_age_(eviction_age) {}

    enum class Admission {
        admitted,
        admitted_by_eviction,  // the oldest incomplete handshake was evicted to make room
        full,                  // no slot came free in time, or the table is closed
    };
    // Enters the table, evicting the oldest incomplete handshake if it is old enough; while
    // the table is full, waits (on the caller's executor) for a handshake to leave or for the
    // oldest incomplete one to grow old enough, until `until`.
    asio::awaitable<Admission> enter(const std::shared_ptr<HandshakeWatch>& watch,
                                     SteadyClock::time_point until);
    // Evicts every handshake in progress and closes the table: waiters and newcomers are
    // turned away (server shutdown: none may hold it up).
    void evict_all();
    // Idempotent; a no-op for a handshake that was evicted.
    void leave(HandshakeWatch& watch);
    std::size_t size() const;

  private:
    // A newcomer waiting for a slot; woken by leave() through its own executor.
    struct Waiter {
        explicit Waiter(const Executor& executor) : timer(executor) {}
        Timer timer;
        bool woken = false;
    };
    // `full` sets `retry_at` when an incomplete handshake will be old enough to evict.
    Admission enter_locked(const std::shared_ptr<HandshakeWatch>& watch,
                           std::shared_ptr<HandshakeWatch>& victim, SteadyClock::time_point now,
                           SteadyClock::time_point& retry_at);
    void wake_one_locked();

    const std::size_t capacity_;
    const SteadyClock::duration eviction_age_;
    mutable std::mutex mutex_;
    std::list<std::shared_ptr<HandshakeWatch>> entries_;  // oldest first
    std::list<std::shared_ptr<Waiter>> waiters_;          // first come, first woken
    bool closed_ = false;
};

}  // namespace sdmp::detail
