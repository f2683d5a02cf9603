// protocol.md §6.6: how a session ends, as transitions of SessionLifecycle.
#include "detail/session_lifecycle.hpp"

#include "sdmp/framework/error.hpp"

namespace sdmp::detail {

SessionLifecycle::Actions SessionLifecycle::close() {
    Actions actions;
    if (state_ != State::open)
        return actions;
    state_ = State::draining;
    // protocol.md §6.2: requests up to the highest we have seen are still answered. After the
    // peer's `end` it reads nothing of ours but our own `end`.
    actions.send_goaway = !peer_ended_;
    actions.arm_drain_timer = true;
    return actions;
}

SessionLifecycle::Actions SessionLifecycle::peer_end() {
    peer_ended_ = true;
    Actions actions = close();
    actions.fail_waiters = framework_errc::connection_closed;
    actions.fail_calls = framework_errc::connection_closed;
    return actions;
}

SessionLifecycle::Actions SessionLifecycle::drain_deadline() {
    Actions actions;
    if (state_ != State::draining)
        return actions;
    deadline_passed_ = true;
    actions.cancel_tasks = Status::shutting_down;
    actions.fail_waiters = framework_errc::session_shutting_down;
    actions.fail_calls = framework_errc::session_shutting_down;
    return actions;
}

SessionLifecycle::Actions SessionLifecycle::drained() {
    Actions actions;
    if (state_ != State::draining)
        return actions;
    state_ = State::closing;
    actions.stop_drain_timer = true;
    actions.fail_waiters = framework_errc::connection_closed;
    actions.fail_calls = framework_errc::connection_closed;
    actions.finish_writer = true;
    actions.start_linger = true;
    return actions;
}

SessionLifecycle::Actions SessionLifecycle::abort(std::error_code reason) {
    Actions actions;
    if (aborted_ || state_ == State::closed)
        return actions;
    aborted_ = true;
    if (!reason_)
        reason_ = reason ? reason : std::error_code(framework_errc::connection_closed);
    state_ = State::closing;
    actions.cancel_tasks = Status::cancelled;
    actions.fail_waiters = reason_;
    actions.fail_calls = reason_;
    actions.stop_drain_timer = true;
    actions.close_socket = true;
    actions.finish_writer = true;
    return actions;
}

SessionLifecycle::Actions SessionLifecycle::read_ended(bool eof, bool record_incomplete,
                                                       std::error_code error) {
    if (aborted_)
        return {};
    if (eof && peer_ended_ && !record_incomplete) {
        // The peer's `end`, then its end of stream: a graceful end. What it sent before is
        // handled; the drain that peer_end() began bounds the handlers.
        return {};
    }
    if (eof) {
        // The stream ended without the peer's `end`, or inside a record: the connection was
        // cut, whatever came before, and is closed as after any error (§5.6): nothing more is
        // sent.
        return abort(framework_errc::connection_lost);
    }
    if (state_ == State::closing) {
        // We had finished; the peer's end did not come within the linger (we closed the
        // socket) or came as a reset. Either way nothing was lost.
        return {};
    }
    return abort(error ? error : std::error_code(framework_errc::connection_closed));
}

std::error_code SessionLifecycle::reason_or_closed() const noexcept {
    return reason_ ? reason_ : std::error_code(framework_errc::connection_closed);
}

}  // namespace sdmp::detail
