// Keepalive and idle-timeout decisions (framework/src/keepalive_clock.cpp, protocol.md §6.5)
// driven with made-up times: no timers, no sockets.
#include <catch2/catch.hpp>
#include <chrono>

#include "detail/keepalive_clock.hpp"

using sdmp::detail::KeepaliveClock;
using namespace std::chrono_literals;

namespace {
const KeepaliveClock::Clock::time_point t0{std::chrono::hours(1)};
}

TEST_CASE("a silent peer is pinged after one interval and given up after two",
          "[framework][keepalive]") {
    KeepaliveClock clock(30s, 0ms, t0);
    REQUIRE(clock.enabled());
    CHECK(clock.next_wake(true) == t0 + 30s);

    auto due = clock.on_timer(t0 + 30s, true, false);
    REQUIRE(due.ping);
    CHECK(*due.ping == 1);
    CHECK_FALSE(due.peer_silent);
    // Waiting for its answer now: the next wake is one interval after the ping.
    CHECK(clock.next_wake(true) == t0 + 60s);

    due = clock.on_timer(t0 + 60s, true, false);
    CHECK(due.peer_silent);
    CHECK_FALSE(due.ping);
}

TEST_CASE("anything received answers the ping and restarts the interval",
          "[framework][keepalive]") {
    KeepaliveClock clock(30s, 0ms, t0);
    auto due = clock.on_timer(t0 + 30s, true, false);
    REQUIRE(due.ping);
    clock.on_receive(t0 + 31s);
    CHECK(clock.next_wake(true) == t0 + 61s);
    // An early wake (the timer raced a receive) decides nothing.
    due = clock.on_timer(t0 + 45s, true, false);
    CHECK_FALSE(due.ping);
    CHECK_FALSE(due.peer_silent);
    due = clock.on_timer(t0 + 61s, true, false);
    REQUIRE(due.ping);
    CHECK(*due.ping == 2);  // a fresh opaque value per ping
}

TEST_CASE("an idle session ends only when nothing is in flight, and only while open",
          "[framework][keepalive]") {
    KeepaliveClock clock(0ms, 10s, t0);
    CHECK(clock.next_wake(true) == t0 + 10s);
    CHECK_FALSE(clock.next_wake(false));  // draining: the idle timeout no longer applies

    clock.on_activity(t0 + 4s);
    CHECK(clock.next_wake(true) == t0 + 14s);
    // Calls in flight count as activity: the idle clock restarts instead.
    auto due = clock.on_timer(t0 + 14s, true, true);
    CHECK_FALSE(due.idle);
    CHECK(clock.next_wake(true) == t0 + 24s);
    due = clock.on_timer(t0 + 24s, true, false);
    CHECK(due.idle);
    CHECK_FALSE(due.ping);
    // Not while draining.
    CHECK_FALSE(clock.on_timer(t0 + 40s, false, false).idle);
}

TEST_CASE("both watches off means no timer at all", "[framework][keepalive]") {
    KeepaliveClock clock(0ms, 0ms, t0);
    CHECK_FALSE(clock.enabled());
    CHECK_FALSE(clock.next_wake(true));
    const auto due = clock.on_timer(t0 + 1000s, true, false);
    CHECK_FALSE(due.ping);
    CHECK_FALSE(due.peer_silent);
    CHECK_FALSE(due.idle);
}

TEST_CASE("the earlier of keepalive and idle timeout sets the wake", "[framework][keepalive]") {
    KeepaliveClock clock(30s, 10s, t0);
    CHECK(clock.next_wake(true) == t0 + 10s);
    CHECK(clock.next_wake(false) == t0 + 30s);
}
