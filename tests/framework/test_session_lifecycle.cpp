// The session's lifecycle (framework/src/session_lifecycle.cpp, protocol.md §6.6) driven with
// event sequences: which state each event leads to and what the session is told to do. No
// sockets, no timers.
#include <catch2/catch.hpp>

#include "detail/session_lifecycle.hpp"
#include "sdmp/error.hpp"
#include "sdmp/framework/error.hpp"

using sdmp::Status;
using sdmp::detail::SessionLifecycle;
using State = SessionLifecycle::State;

TEST_CASE("a graceful close drains, then closes once nothing is in flight",
          "[framework][lifecycle]") {
    SessionLifecycle life;
    REQUIRE(life.state() == State::open);
    REQUIRE(life.accepts_requests());

    const auto drain = life.close();
    CHECK(life.state() == State::draining);
    CHECK_FALSE(life.accepts_requests());
    CHECK(life.sending());  // answers and calls still go out
    CHECK(drain.send_goaway);
    CHECK(drain.arm_drain_timer);
    CHECK_FALSE(drain.cancel_tasks);
    CHECK_FALSE(drain.fail_calls);
    CHECK_FALSE(drain.close_socket);

    // A second close changes nothing.
    CHECK_FALSE(life.close().any());

    const auto closing = life.drained();
    CHECK(life.state() == State::closing);
    CHECK_FALSE(life.sending());
    CHECK(closing.stop_drain_timer);
    CHECK(closing.finish_writer);
    CHECK(closing.start_linger);
    CHECK_FALSE(closing.close_socket);
    CHECK(closing.fail_waiters == sdmp::framework_errc::connection_closed);
    CHECK(closing.fail_calls == sdmp::framework_errc::connection_closed);
    CHECK_FALSE(life.reason());  // a clean end has no reason

    // The peer's `end`, then its end of stream: nothing more to do, nothing lost.
    const auto ended = life.peer_end();
    CHECK_FALSE(ended.arm_drain_timer);
    CHECK_FALSE(ended.send_goaway);
    CHECK(life.state() == State::closing);
    CHECK_FALSE(life.read_ended(true, false, {}).any());
    life.finished();
    CHECK(life.state() == State::closed);
    CHECK_FALSE(life.reason());
    CHECK(life.reason_or_closed() == sdmp::framework_errc::connection_closed);
}

TEST_CASE("drained() outside draining does nothing", "[framework][lifecycle]") {
    SessionLifecycle life;
    CHECK_FALSE(life.drained().any());
    CHECK(life.state() == State::open);
    life.abort(sdmp::errc::malformed);
    CHECK_FALSE(life.drained().any());
    CHECK(life.state() == State::closing);
}

TEST_CASE("the drain deadline cancels handlers and fails what is left, waiters first",
          "[framework][lifecycle]") {
    SessionLifecycle life;
    CHECK_FALSE(life.drain_deadline().any());  // not draining: a stale timer
    life.close();
    const auto late = life.drain_deadline();
    CHECK(life.state() == State::draining);  // closes once the cancelled handlers finish
    REQUIRE(late.cancel_tasks);
    CHECK(*late.cancel_tasks == Status::shutting_down);
    CHECK(late.fail_waiters == sdmp::framework_errc::session_shutting_down);
    CHECK(late.fail_calls == sdmp::framework_errc::session_shutting_down);
    CHECK(life.drained().finish_writer);
}

TEST_CASE("new work starts while open or draining, never after the drain deadline",
          "[framework][lifecycle]") {
    SessionLifecycle life;
    CHECK(life.accepts_new_work());
    CHECK_FALSE(life.drain_deadline().any());  // a stale timer changes nothing
    CHECK(life.accepts_new_work());
    life.close();
    CHECK(life.accepts_new_work());  // the peer's notifications sent before our goaway
    life.drain_deadline();
    // Nothing would cancel it any more: the drain would not be bounded.
    CHECK_FALSE(life.accepts_new_work());
    CHECK(life.state() == State::draining);

    SessionLifecycle drained;
    drained.close();
    drained.drained();
    CHECK_FALSE(drained.accepts_new_work());

    SessionLifecycle aborted;
    aborted.abort(sdmp::errc::malformed);
    CHECK_FALSE(aborted.accepts_new_work());
}

TEST_CASE("the peer's end fails our calls and drains without a goaway", "[framework][lifecycle]") {
    SessionLifecycle life;
    const auto ended = life.peer_end();
    CHECK(life.peer_ended());
    CHECK(life.state() == State::draining);
    CHECK_FALSE(ended.send_goaway);  // it reads nothing of ours but our `end`
    CHECK(ended.arm_drain_timer);
    CHECK(ended.fail_waiters == sdmp::framework_errc::connection_closed);
    CHECK(ended.fail_calls == sdmp::framework_errc::connection_closed);
    life.drained();
    // Its end of stream with no partial record: graceful.
    CHECK_FALSE(life.read_ended(true, false, {}).any());
    CHECK_FALSE(life.aborted());
}

TEST_CASE("the peer's end while we drain: no second drain timer", "[framework][lifecycle]") {
    SessionLifecycle life;
    life.close();
    const auto ended = life.peer_end();
    CHECK_FALSE(ended.arm_drain_timer);
    CHECK_FALSE(ended.send_goaway);
    CHECK(ended.fail_calls == sdmp::framework_errc::connection_closed);
    CHECK(life.state() == State::draining);
}

TEST_CASE("a close after the peer's end sends no goaway", "[framework][lifecycle]") {
    SessionLifecycle life;
    life.peer_end();
    life.drained();
    CHECK_FALSE(life.close().any());  // already closing
}

TEST_CASE("end of stream without the peer's end is a cut connection", "[framework][lifecycle]") {
    for (const State from : {State::open, State::draining}) {
        SessionLifecycle life;
        if (from == State::draining)
            life.close();
        const auto cut = life.read_ended(true, false, {});
        CHECK(life.aborted());
        CHECK(life.reason() == sdmp::framework_errc::connection_lost);
        CHECK(cut.close_socket);
        CHECK(cut.fail_calls == sdmp::framework_errc::connection_lost);
        REQUIRE(cut.cancel_tasks);
        CHECK(*cut.cancel_tasks == Status::cancelled);
    }
}

TEST_CASE("end of stream inside a record is cut even after the peer's end",
          "[framework][lifecycle]") {
    SessionLifecycle life;
    life.peer_end();
    const auto cut = life.read_ended(true, true, {});
    CHECK(life.aborted());
    CHECK(life.reason() == sdmp::framework_errc::connection_lost);
    CHECK(cut.close_socket);
}

TEST_CASE("a read error aborts with that error, except once we are closing",
          "[framework][lifecycle]") {
    const std::error_code reset = std::make_error_code(std::errc::connection_reset);
    {
        SessionLifecycle life;
        life.read_ended(false, false, reset);
        CHECK(life.reason() == reset);
    }
    {
        SessionLifecycle life;
        life.read_ended(false, false, {});
        CHECK(life.reason() == sdmp::framework_errc::connection_closed);
        CHECK(life.aborted());
    }
    {
        // We finished and closed the socket after the linger: nothing was lost.
        SessionLifecycle life;
        life.close();
        life.drained();
        CHECK_FALSE(life.read_ended(false, false, reset).any());
        CHECK_FALSE(life.aborted());
        CHECK_FALSE(life.reason());
    }
}

TEST_CASE("abort keeps the first reason and acts once", "[framework][lifecycle]") {
    for (const State from : {State::open, State::draining, State::closing}) {
        SessionLifecycle life;
        if (from != State::open)
            life.close();
        if (from == State::closing)
            life.drained();
        const auto first = life.abort(sdmp::errc::malformed);
        CHECK(life.state() == State::closing);
        CHECK_FALSE(life.sending());
        CHECK(first.close_socket);
        CHECK(first.finish_writer);
        CHECK(first.stop_drain_timer);
        CHECK(first.fail_waiters == sdmp::errc::malformed);
        CHECK(first.fail_calls == sdmp::errc::malformed);
        CHECK_FALSE(life.abort(sdmp::framework_errc::queue_full).any());
        CHECK(life.reason() == sdmp::errc::malformed);
        // Whatever the reader reports afterwards changes nothing.
        CHECK_FALSE(life.read_ended(true, false, {}).any());
        CHECK(life.reason() == sdmp::errc::malformed);
    }
}

TEST_CASE("an abort without a reason reads as connection_closed, and none after closed",
          "[framework][lifecycle]") {
    SessionLifecycle life;
    life.abort({});
    CHECK(life.reason() == sdmp::framework_errc::connection_closed);
    SessionLifecycle done;
    done.finished();
    CHECK_FALSE(done.abort(sdmp::errc::malformed).any());
    CHECK_FALSE(done.reason());
}
