// Loopback tests of a session's identity (id, equality, hash), SessionSet fan-out, and
// sdmp::is.
#include <algorithm>
#include <array>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "framework_test_util.hpp"

using namespace fwtest;

namespace {

sdmp::Router id_router() {
    sdmp::Router router;
    router.add("id", [](sdmp::Context& ctx, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::to_string(ctx.session().id()));
    });
    return router;
}

}  // namespace

TEST_CASE("handles of one session share its id, compare equal and hash alike",
          "[framework][loopback][session_set]") {
    std::mutex mutex;
    std::vector<std::uint64_t> accepted_ids;
    auto options = server_options();
    options.on_session = [&](const sdmp::Session& session) {
        const std::lock_guard lock(mutex);
        accepted_ids.push_back(session.id());
    };
    TestServer server(id_router(), options);
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session one = co_await connect_client(server);
        const sdmp::Session two = co_await connect_client(server);
        const sdmp::Session copy = one;
        CHECK(one.id() != 0);
        CHECK(two.id() != 0);
        CHECK(copy.id() == one.id());
        CHECK(copy == one);
        CHECK(std::hash<sdmp::Session>{}(copy) == std::hash<sdmp::Session>{}(one));
        CHECK(one != two);
        CHECK(one.id() != two.id());

        std::unordered_set<sdmp::Session> set{one, copy, two};
        CHECK(set.size() == 2);
        CHECK(set.contains(copy));

        const sdmp::Session empty;
        CHECK(empty.id() == 0);
        CHECK(empty == sdmp::Session{});
        CHECK(empty != one);

        // The server's handles (on_session, Context::session()) name the server's session:
        // one id whichever handle it is read from, and never a client session's id.
        const sdmp::Reply reply = co_await one.call("id", {});
        REQUIRE(reply.is_ok());
        const std::uint64_t server_side = std::stoull(std::string(reply.text()));
        const std::lock_guard lock(mutex);
        CHECK(std::count(accepted_ids.begin(), accepted_ids.end(), server_side) == 1);
        CHECK(server_side != one.id());
        CHECK(server_side != two.id());
    }());
    drain(io);
}

TEST_CASE("a server fans a notification out to every session in its SessionSet",
          "[framework][loopback][session_set]") {
    constexpr std::size_t k_clients = 3;
    asio::io_context io;
    sdmp::SessionSet sessions;
    Signal accepted(io.get_executor(), k_clients);
    auto options = server_options();
    options.on_session = [&](const sdmp::Session& session) {
        sessions.add(session);
        sessions.add(session);  // a second add of the same session is a no-op
        notify(accepted);
    };
    TestServer server(sdmp::Router{}, options);

    // Client handlers run on `io`, on this thread: no lock needed.
    std::array<std::vector<std::string>, k_clients> received;
    Signal delivered(io.get_executor(), 2 * k_clients);
    auto router_for = [&](std::size_t index) {
        auto router = std::make_shared<sdmp::Router>();
        router->on_notification("news",
                                [&, index](sdmp::Context&, sdmp::Bytes body) -> awaitable<void> {
                                    received[index].emplace_back(sdmp::as_string_view(body));
                                    notify(delivered);
                                    co_return;
                                });
        return router;
    };

    run(io, [&]() -> awaitable<void> {
        std::vector<sdmp::Session> clients;
        for (std::size_t i = 0; i < k_clients; ++i) {
            auto client = client_options();
            client.router = router_for(i);
            clients.push_back(co_await connect_client(server, client));
        }
        for (std::size_t i = 0; i < k_clients; ++i)
            co_await wait(accepted);
        REQUIRE(sessions.size() == k_clients);

        std::unordered_set<std::uint64_t> ids;
        CHECK(sessions.for_each_open([&](const sdmp::Session& s) { ids.insert(s.id()); }) ==
              k_clients);
        CHECK(ids.size() == k_clients);

        for (const sdmp::Session& s : sessions.open_sessions())
            co_await s.notify("news", sdmp::bytes_of("first"));
        for (std::size_t i = 0; i < k_clients; ++i)
            co_await wait(delivered);
        for (const auto& got : received)
            CHECK(got == std::vector<std::string>{"first"});

        // The server's session of client 0: its remote end is the client's local end.
        const std::string leaving_end = clients[0].peer().local_endpoint;
        sdmp::Session leaving;
        sessions.for_each_open([&](const sdmp::Session& s) {
            if (s.peer().remote_endpoint == leaving_end)
                leaving = s;
        });
        REQUIRE(leaving);

        // Client 0 closes in the middle of the broadcast: its notify either still goes out
        // (queued before the server saw the close) or fails with connection_closed; the loop
        // reaches everyone else either way.
        std::size_t sent = 0;
        bool closed_client = false;
        for (const sdmp::Session& s : sessions.open_sessions()) {
            if (!closed_client) {
                clients[0].close();
                closed_client = true;
            }
            try {
                co_await s.notify("news", sdmp::bytes_of("second"));
                ++sent;
            } catch (const boost::system::system_error& e) {
                CHECK(s == leaving);
                CHECK(sdmp::is(e, sdmp::framework_errc::connection_closed));
            }
        }
        CHECK(sent >= k_clients - 1);
        const std::error_code left = co_await leaving.wait_closed();
        CHECK(left == std::error_code{});
        CHECK(sessions.open_sessions().size() == k_clients - 1);
        CHECK(sessions.size() == k_clients - 1);
        for (const sdmp::Session& s : sessions.open_sessions())
            CHECK(s != leaving);

        // Client 0 may have had "second" too, so count what the others got, not signals.
        while (received[1].size() < 2 || received[2].size() < 2)
            co_await wait(delivered);
        for (std::size_t i = 1; i < k_clients; ++i)
            CHECK(received[i] == std::vector<std::string>{"first", "second"});

        sessions.remove(leaving);     // removing a session no longer in the set does nothing
        sessions.remove(clients[1]);  // a client handle is not in the server's set
        CHECK(sessions.size() == k_clients - 1);
    }());
    drain(io);
    server.stop();
    // Every session closed with the server: the set drops them and holds no handle past it.
    CHECK(sessions.size() == 0);
}

TEST_CASE("a SessionSet keeps a client session open until it is removed",
          "[framework][loopback][session_set]") {
    TestServer server(id_router());
    asio::io_context io;
    sdmp::SessionSet sessions;
    run(io, [&]() -> awaitable<void> {
        std::uint64_t id = 0;
        {
            const sdmp::Session session = co_await connect_client(server);
            id = session.id();
            sessions.add(session);
        }
        // Our handle is gone; the set's keeps the client session open.
        const std::vector<sdmp::Session> kept = sessions.open_sessions();
        REQUIRE(kept.size() == 1);
        CHECK(kept.front().id() == id);
        const sdmp::Reply reply = co_await kept.front().call("id", {});
        CHECK(reply.is_ok());
        CHECK(sessions.abort_if([](const sdmp::PeerInfo& peer) {
            return peer.fingerprint == keys().server.fingerprint();
        }) == 1);
        CHECK(sessions.size() == 0);
        const std::error_code reason = co_await kept.front().wait_closed();
        CHECK(sdmp::is(reason, sdmp::framework_errc::connection_closed));
    }());
    drain(io);
}

TEST_CASE("a server session handle kept past its Server reads as closed and is released",
          "[framework][loopback][session_set]") {
    // Declared before the server: the handle outlives the server's io_context, as handles
    // kept in handler state do.
    std::mutex mutex;
    std::vector<sdmp::Session> kept;
    std::optional<TestServer> server;
    asio::io_context io;
    Signal accepted(io.get_executor(), 1);
    auto options = server_options();
    options.on_session = [&](const sdmp::Session& session) {
        const std::lock_guard lock(mutex);
        kept.push_back(session);
        notify(accepted);
    };
    server.emplace(id_router(), options);
    std::uint64_t server_side_id = 0;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session client = co_await connect_client(*server);
        co_await wait(accepted);
        const sdmp::Reply reply = co_await client.call("id", {});
        REQUIRE(reply.is_ok());
        server_side_id = std::stoull(std::string(reply.text()));
        client.close();
        CHECK_FALSE(co_await client.wait_closed());
    }());
    server.reset();  // the Server and its io_context are gone; the handle is not

    REQUIRE(kept.size() == 1);
    const sdmp::Session& session = kept.front();
    CHECK(session.id() == server_side_id);
    CHECK(session.peer().fingerprint == keys().client.fingerprint());
    CHECK_FALSE(session.is_open());
    CHECK_FALSE(session.stats().open);
    session.close();  // nothing to do, and nothing touched
    session.abort();
    asio::io_context later;
    run(later, [&]() -> awaitable<void> {
        CHECK_FALSE(co_await session.wait_closed());  // the client's graceful close
        CHECK_FALSE(co_await session.next_notification());
        bool call_refused = false;
        try {
            co_await session.call("id", {});
        } catch (const boost::system::system_error& e) {
            call_refused = sdmp::is(e, sdmp::framework_errc::connection_closed);
        }
        CHECK(call_refused);
        bool notify_refused = false;
        try {
            co_await session.notify("id", {});
        } catch (const boost::system::system_error& e) {
            notify_refused = sdmp::is(e, sdmp::framework_errc::connection_closed);
        }
        CHECK(notify_refused);
    }());
    CHECK_THROWS_AS(session.async_call("id", {}, sdmp::CallOptions{}, [](auto, auto) {}),
                    boost::system::system_error);
}

TEST_CASE("sdmp::is compares a failure with an sdmp or framework code",
          "[framework][loopback][errors]") {
    const boost::system::system_error closed{
        boost::system::error_code(std::error_code(sdmp::framework_errc::connection_closed))};
    CHECK(sdmp::is(closed, sdmp::framework_errc::connection_closed));
    CHECK_FALSE(sdmp::is(closed, sdmp::framework_errc::connection_lost));
    CHECK_FALSE(sdmp::is(closed, sdmp::errc::unknown_peer));
    const std::exception& as_exception = closed;
    CHECK(sdmp::is(as_exception, sdmp::framework_errc::connection_closed));
    CHECK(sdmp::is(std::system_error(sdmp::errc::unknown_peer), sdmp::errc::unknown_peer));
    CHECK_FALSE(sdmp::is(std::runtime_error("other"), sdmp::errc::unknown_peer));
    CHECK(sdmp::is(boost::system::error_code(std::error_code(sdmp::errc::limit_exceeded)),
                   sdmp::errc::limit_exceeded));
    CHECK_FALSE(sdmp::is(boost::system::error_code(asio::error::operation_aborted),
                         sdmp::framework_errc::connection_closed));
    CHECK(sdmp::is(std::error_code(sdmp::errc::unknown_peer), sdmp::errc::unknown_peer));

    // As the framework throws them.
    TestServer server(id_router());
    asio::io_context io;
    bool unknown = false;
    bool after_close = false;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        try {
            co_await sdmp::connect(executor, sdmp::Target::named("no-such-peer"), keys().client,
                                   keys().client_trust, client_options());
        } catch (const std::exception& e) {
            unknown = sdmp::is(e, sdmp::errc::unknown_peer);
        }
        const sdmp::Session session = co_await connect_client(server);
        session.close();
        const std::error_code reason = co_await session.wait_closed();
        CHECK(reason == std::error_code{});
        try {
            co_await session.call("id", {});
        } catch (const boost::system::system_error& e) {
            after_close = sdmp::is(e, sdmp::framework_errc::connection_closed);
        }
    }());
    CHECK(unknown);
    CHECK(after_close);
    drain(io);
}
