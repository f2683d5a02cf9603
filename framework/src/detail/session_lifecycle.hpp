// The lifecycle of one session (protocol.md §6.6) as explicit states and the decisions taken on
// each event:
//
//   open ──close / idle / peer's end──▶ draining ──nothing in flight──▶ closing ──▶ closed
//     └───────────────abort (error, cut connection, protocol violation)───┘
//
// `draining` answers what the peer sent before our goaway and lets our calls finish, bounded by
// the drain timer; `closing` flushes what is queued, sends `end` and waits (close_linger) for the
// peer's end of stream; an abort goes to `closing` at once and sends nothing more.
//
// Sans-IO: each event returns the actions the session must carry out, in the order their fields
// are declared; the session owns the timers, the socket and the tables the actions name.
#pragma once

#include <optional>
#include <system_error>

#include "sdmp/framework/reply.hpp"

namespace sdmp::detail {

class SessionLifecycle {
  public:
    enum class State { open, draining, closing, closed };

    struct Actions {
        // Every handler still running or queued is cancelled with this status.
        std::optional<Status> cancel_tasks;
        // Senders waiting for queue space fail with this, before the calls below: finishing a
        // call could otherwise grant its space to a waiting call whose caller is about to be
        // told it failed, and that call's request would still go out.
        std::error_code fail_waiters;
        // Our calls still pending fail with this (those above the peer's goaway as refused).
        std::error_code fail_calls;
        bool send_goaway = false;  // protocol.md §6.2: the last request id we will answer
        bool arm_drain_timer = false;
        bool stop_drain_timer = false;
        bool close_socket = false;   // abort: the reader's and writer's operations complete
        bool finish_writer = false;  // flush what is queued, `end` unless aborted, shut down
        bool start_linger = false;   // bounds the flush and the wait for the peer's end

        bool any() const noexcept {
            return cancel_tasks || fail_waiters || fail_calls || send_goaway || arm_drain_timer ||
                   stop_drain_timer || close_socket || finish_writer || start_linger;
        }
    };

    // --- events ---
    // After each event the session checks whether it is drained (draining, no handler running,
    // no call of ours pending) and reports drained() when it is.

    // The application, the server or the idle timeout asks for a graceful close.
    Actions close();
    // The peer sent `end`: it sends nothing more, and any call of ours it had not answered
    // never will be; what it sent before is still handled.
    Actions peer_end();
    // The drain timer fired: whatever is left is cancelled, and nothing new starts after it
    // (accepts_new_work()).
    Actions drain_deadline();
    // Draining, and nothing is in flight any more.
    Actions drained();
    // A fatal condition: protocol violation, I/O error, peer silent, a limit the peer broke.
    // The first reason is kept.
    Actions abort(std::error_code reason);
    // The reader stopped: `eof` when the stream ended, `record_incomplete` when bytes of a
    // record were still buffered then; `error` otherwise.
    Actions read_ended(bool eof, bool record_incomplete, std::error_code error);
    // Everything has finished: the reader, the writer and every handler.
    void finished() noexcept { state_ = State::closed; }

    // --- queries ---
    State state() const noexcept { return state_; }
    // Requests from the peer are handled (else answered shutting_down).
    bool accepts_requests() const noexcept { return state_ == State::open; }
    // New work may start: a handler for the peer's notification, a call of ours. Past the
    // drain deadline nothing would cancel it, so the drain would no longer be bounded.
    bool accepts_new_work() const noexcept {
        return state_ == State::open || (state_ == State::draining && !deadline_passed_);
    }
    // Messages may still be queued: our end has not begun closing.
    bool sending() const noexcept { return state_ == State::open || state_ == State::draining; }
    bool aborted() const noexcept { return aborted_; }
    bool peer_ended() const noexcept { return peer_ended_; }
    // Why the session ended (empty while it has not, or after a clean close).
    std::error_code reason() const noexcept { return reason_; }
    // What a caller whose message can no longer be sent is told.
    std::error_code reason_or_closed() const noexcept;

  private:
    State state_ = State::open;
    std::error_code reason_;
    bool aborted_ = false;
    bool peer_ended_ = false;
    bool deadline_passed_ = false;
};

}  // namespace sdmp::detail
