// The table of handshakes in progress (framework/src/detail/handshake_table.hpp): who gets a
// slot, who is evicted, who waits and for how long. No sockets: a watch without a descriptor
// only completes its message when told so.
#include <chrono>
#include <memory>
#include <optional>

#include <boost/asio/detached.hpp>

#include "detail/handshake_table.hpp"
#include "framework_test_util.hpp"

using namespace fwtest;
using sdmp::detail::HandshakeTable;
using sdmp::detail::HandshakeWatch;
using Admission = HandshakeTable::Admission;

namespace {

constexpr auto k_forever = std::chrono::hours(1);

std::shared_ptr<HandshakeWatch> watch(asio::io_context& io) {
    return std::make_shared<HandshakeWatch>(io.get_executor());
}

// Starts enter() on `io`; `out` is set when it completes.
void start_enter(asio::io_context& io, HandshakeTable& table,
                 const std::shared_ptr<HandshakeWatch>& w,
                 sdmp::detail::SteadyClock::time_point until, std::optional<Admission>& out) {
    asio::co_spawn(
        io,
        [&table, w, until, &out]() -> awaitable<void> {
            const Admission verdict = co_await table.enter(w, until);
            out = verdict;
        },
        asio::detached);
}

Admission enter_now(asio::io_context& io, HandshakeTable& table,
                    const std::shared_ptr<HandshakeWatch>& w,
                    sdmp::detail::SteadyClock::time_point until) {
    std::optional<Admission> out;
    start_enter(io, table, w, until, out);
    io.restart();
    io.poll();
    REQUIRE(out);
    return *out;
}

void run_until_set(asio::io_context& io, const std::optional<Admission>& out) {
    const auto give_up = std::chrono::steady_clock::now() + k_safety_net;
    while (!out) {
        io.restart();
        REQUIRE(io.run_one_until(give_up) == 1);
    }
}

}  // namespace

TEST_CASE("a full table makes a newcomer wait for a slot instead of evicting a young handshake",
          "[framework][handshake_table]") {
    asio::io_context io;
    HandshakeTable table(2, k_forever);
    const auto until = sdmp::detail::SteadyClock::now() + k_forever;
    const auto first = watch(io);
    const auto second = watch(io);
    REQUIRE(enter_now(io, table, first, until) == Admission::admitted);
    REQUIRE(enter_now(io, table, second, until) == Admission::admitted);

    // Both are incomplete but young: the newcomer waits.
    std::optional<Admission> third;
    start_enter(io, table, watch(io), until, third);
    io.restart();
    io.poll();
    CHECK_FALSE(third);
    CHECK(table.size() == 2);

    table.leave(*first);  // a handshake finished: its slot goes to the one waiting
    run_until_set(io, third);
    CHECK(*third == Admission::admitted);
    CHECK_FALSE(second->evicted());
    CHECK(table.size() == 2);
}

TEST_CASE("the oldest incomplete handshake is evicted once it has held its slot long enough",
          "[framework][handshake_table]") {
    asio::io_context io;
    const auto until = sdmp::detail::SteadyClock::now() + k_forever;
    SECTION("at once with no eviction age") {
        HandshakeTable table(2, std::chrono::milliseconds(0));
        const auto complete = watch(io);
        const auto stalled = watch(io);
        REQUIRE(enter_now(io, table, complete, until) == Admission::admitted);
        REQUIRE(enter_now(io, table, stalled, until) == Admission::admitted);
        complete->message_complete();  // older, but not evictable
        CHECK(enter_now(io, table, watch(io), until) == Admission::admitted_by_eviction);
        io.restart();
        io.poll();  // the eviction is posted to the victim's executor
        CHECK(stalled->evicted());
        CHECK_FALSE(complete->evicted());
    }
    SECTION("after waiting for the age") {
        HandshakeTable table(1, std::chrono::milliseconds(50));
        const auto stalled = watch(io);
        REQUIRE(enter_now(io, table, stalled, until) == Admission::admitted);
        std::optional<Admission> newcomer;
        start_enter(io, table, watch(io), until, newcomer);
        run_until_set(io, newcomer);
        CHECK(*newcomer == Admission::admitted_by_eviction);
        io.restart();
        io.poll();
        CHECK(stalled->evicted());
    }
}

TEST_CASE("a newcomer is turned away when no slot comes free in time or the table closes",
          "[framework][handshake_table]") {
    asio::io_context io;
    HandshakeTable table(1, k_forever);
    const auto until = sdmp::detail::SteadyClock::now() + k_forever;
    const auto complete = watch(io);
    REQUIRE(enter_now(io, table, complete, until) == Admission::admitted);
    complete->message_complete();

    // Its time is already up: no wait at all.
    CHECK(enter_now(io, table, watch(io), sdmp::detail::SteadyClock::now()) == Admission::full);

    // A short wait that no leave() ends.
    std::optional<Admission> late;
    start_enter(io, table, watch(io),
                sdmp::detail::SteadyClock::now() + std::chrono::milliseconds(20), late);
    run_until_set(io, late);
    CHECK(*late == Admission::full);

    // Shutdown: waiters and newcomers are turned away, handshakes in progress evicted.
    std::optional<Admission> waiting;
    start_enter(io, table, watch(io), until, waiting);
    io.restart();
    io.poll();
    REQUIRE_FALSE(waiting);
    table.evict_all();
    run_until_set(io, waiting);
    CHECK(*waiting == Admission::full);
    io.restart();
    io.poll();
    CHECK(complete->evicted());
    CHECK(enter_now(io, table, watch(io), until) == Admission::full);
    CHECK(table.size() == 0);
}

TEST_CASE("a table of no places admits nobody and makes nobody wait",
          "[framework][handshake_table]") {
    asio::io_context io;
    HandshakeTable table(0, std::chrono::milliseconds(0));
    CHECK(enter_now(io, table, watch(io), sdmp::detail::SteadyClock::now() + k_forever) ==
          Admission::full);
}
