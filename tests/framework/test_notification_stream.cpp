// Receiving on a client: notifications that no handler takes, pulled with
// Session::next_notification() from a bounded buffer; drops counted.
#include <catch2/catch.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include "framework_test_util.hpp"

using namespace fwtest;

namespace {

// "push" sends the body's count of notifications "note" (bodies "n0", "n1", ...) and one
// "handled" notification, then answers.
sdmp::Router pushing_router() {
    sdmp::Router router;
    router.add("push", [](sdmp::Context& ctx, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        const int count = std::stoi(std::string(sdmp::as_string_view(body)));
        const sdmp::Session back = ctx.session();
        for (int i = 0; i < count; ++i) {
            std::string text = "n" + std::to_string(i);
            co_await back.notify("note", sdmp::bytes_of(text));
        }
        co_await back.notify("handled", sdmp::bytes_of("by the router"));
        co_return sdmp::Reply::ok("pushed");
    });
    return router;
}

sdmp::ClientOptions buffered(std::size_t bytes, std::shared_ptr<sdmp::Router> router = {}) {
    auto options = client_options();
    options.session.notification_buffer_bytes = bytes;
    options.router = router ? std::move(router) : std::make_shared<sdmp::Router>();
    return options;
}

}  // namespace

TEST_CASE("notifications without a handler are pulled in order, handled ones are not",
          "[framework][loopback][notifications]") {
    asio::io_context io;
    TestServer server(pushing_router());
    auto client_router = std::make_shared<sdmp::Router>();
    int handled = 0;
    client_router->on_notification("handled", [&](sdmp::Context&, sdmp::Bytes) -> awaitable<void> {
        ++handled;  // the client's own io_context: one thread
        co_return;
    });
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session =
            co_await connect_client(server, buffered(std::size_t{1} << 20, client_router));
        const sdmp::Reply reply = co_await session.call("push", sdmp::bytes_of("5"));
        CHECK(reply.text() == "pushed");
        for (int i = 0; i < 5; ++i) {
            const auto note = co_await session.next_notification();
            REQUIRE(note);
            CHECK(note->method == "note");
            CHECK(sdmp::as_string_view(note->body) == "n" + std::to_string(i));
        }
        CHECK(session.stats().notifications_dropped == 0);
        session.close();
        // Closed and nothing buffered: the end.
        CHECK_FALSE(co_await session.next_notification());
        CHECK_FALSE(co_await session.next_notification());
    }());
    CHECK(handled == 1);
    drain(io);
}

TEST_CASE("a full notification buffer drops and counts, and the buffered ones outlive the close",
          "[framework][loopback][notifications]") {
    asio::io_context io;
    TestServer server(pushing_router());
    run(io, [&]() -> awaitable<void> {
        // Room for a few of the 20 envelopes ("note" + "nNN" + framing: ~10 bytes each).
        const sdmp::Session session = co_await connect_client(server, buffered(40));
        co_await session.call("push", sdmp::bytes_of("20"));
        const std::uint64_t dropped = session.stats().notifications_dropped;
        // The "handled" notification has no handler on this client: buffered or dropped too.
        CHECK(dropped >= 1);
        session.close();
        co_await session.wait_closed();
        std::uint64_t pulled = 0;
        while (const auto note = co_await session.next_notification()) {
            if (note->method == "note")
                CHECK(sdmp::as_string_view(note->body) == "n" + std::to_string(pulled));
            ++pulled;
        }
        CHECK(pulled >= 1);
        CHECK(pulled + dropped == 21);
    }());
    drain(io);
}

TEST_CASE("next_notification without a buffer is a logic error at once",
          "[framework][loopback][notifications]") {
    asio::io_context io;
    TestServer server(pushing_router());
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        CHECK_THROWS_AS(session.next_notification(), std::logic_error);
        // Dropped, and counted.
        co_await session.call("push", sdmp::bytes_of("3"));
        CHECK(session.stats().notifications_dropped == 4);
    }());
    drain(io);
}

TEST_CASE("a waiting next_notification ends with the session, or when cancelled loses nothing",
          "[framework][loopback][notifications]") {
    asio::io_context io;
    TestServer server(pushing_router());
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server, buffered(1 << 16));

        // Cancelled while waiting: operation_aborted.
        asio::cancellation_signal cancel;
        Signal finished(io.get_executor(), 1);
        bool aborted = false;
        asio::co_spawn(
            io, session.next_notification(),
            asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr error, auto) {
                try {
                    if (error)
                        std::rethrow_exception(error);
                } catch (const boost::system::system_error& e) {
                    aborted = e.code() == asio::error::operation_aborted;
                }
                notify(finished);
            }));
        co_await asio::post(io, asio::use_awaitable);  // let it start waiting
        cancel.emit(asio::cancellation_type::terminal);
        co_await wait(finished);
        CHECK(aborted);
        // What arrives afterwards is still delivered.
        co_await session.call("push", sdmp::bytes_of("1"));
        const auto note = co_await session.next_notification();
        REQUIRE(note);
        CHECK(sdmp::as_string_view(note->body) == "n0");
        const auto handled = co_await session.next_notification();
        REQUIRE(handled);
        CHECK(handled->method == "handled");

        // Waiting when the session closes: the end.
        std::optional<bool> ended;
        asio::co_spawn(io, session.next_notification(),
                       [&](std::exception_ptr error, std::optional<sdmp::IncomingNotification> n) {
                           ended = !error && !n;
                           notify(finished);
                       });
        co_await asio::post(io, asio::use_awaitable);
        session.close();
        co_await wait(finished);
        REQUIRE(ended);
        CHECK(*ended);
    }());
    drain(io);
}
