// Server::update_trust (key rotation and revocation at runtime) and closing a reconnecting
// client during its backoff.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "framework_test_util.hpp"

using namespace fwtest;

namespace {

sdmp::Router echo_router() {
    sdmp::Router router;
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::move(body));
    });
    return router;
}

// Peers of these tests, on top of keys(): the server trusts some of them at a time. Every one
// of them trusts the server (keys().client_trust).
struct Peers {
    sdmp::crypto::Identity alice = keys().client;
    sdmp::crypto::Identity bob = sdmp::crypto::Identity::generate(provider());
    sdmp::crypto::Identity carol = sdmp::crypto::Identity::generate(provider());

    sdmp::crypto::TrustStore store(std::initializer_list<const sdmp::crypto::Identity*> ids) const {
        sdmp::crypto::TrustStore store;
        for (const auto* id : ids)
            REQUIRE_FALSE(store.add(peer_entry(*id, "peer-" + id->fingerprint().short_hex())));
        return store;
    }
};

awaitable<sdmp::Session> connect_as(const TestServer& server, const sdmp::crypto::Identity& id) {
    co_return co_await sdmp::connect(
        co_await asio::this_coro::executor,
        sdmp::Target::address(server.endpoint(), keys().server.fingerprint()), id,
        keys().client_trust, client_options());
}

awaitable<bool> echoes(const sdmp::Session& session, std::string text) {
    const sdmp::Reply reply = co_await session.call("echo", sdmp::bytes_of(text));
    co_return reply.is_ok() && reply.text() == text;
}

// A log sink the test can wait on (lines arrive from the server's threads).
class WatchSink : public sdmp::LogSink {
  public:
    void write(sdmp::LogLevel, std::string_view message) override {
        {
            const std::lock_guard lock(mutex_);
            lines_.emplace_back(message);
        }
        changed_.notify_all();
    }
    // Waits (up to the safety net) for a line containing `needle`.
    bool wait_for(std::string_view needle) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, k_safety_net, [&] { return has(needle); });
    }
    bool contains(std::string_view needle) {
        const std::lock_guard lock(mutex_);
        return has(needle);
    }

  private:
    bool has(std::string_view needle) const {
        return std::any_of(lines_.begin(), lines_.end(), [&](const std::string& line) {
            return line.find(needle) != std::string::npos;
        });
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> lines_;
};

}  // namespace

TEST_CASE("update_trust closes removed peers' sessions, keeps the others and admits new peers",
          "[framework][loopback][trust]") {
    const Peers peers;
    TestServer server(echo_router());
    CHECK(server.server().update_trust(peers.store({&peers.alice, &peers.bob})) == 0);
    asio::io_context io;
    bool bob_refused = false;
    bool carol_refused_before = false;
    run(io, [&]() -> awaitable<void> {
        // (Never co_await inside a Catch assertion: GCC evaluates the expression again.)
        // Carol is not trusted yet.
        try {
            co_await connect_as(server, peers.carol);
        } catch (const boost::system::system_error& e) {
            carol_refused_before = has_code(e, sdmp::framework_errc::refused_by_peer);
        }
        const sdmp::Session alice = co_await connect_as(server, peers.alice);
        const sdmp::Session bob = co_await connect_as(server, peers.bob);
        const bool alice_echoed = co_await echoes(alice, "alice");
        CHECK(alice_echoed);
        const bool bob_echoed = co_await echoes(bob, "bob");
        CHECK(bob_echoed);
        CHECK(server.server().session_count() == 2);

        // Bob out, Carol in.
        CHECK(server.server().update_trust(peers.store({&peers.alice, &peers.carol})) == 1);

        // Bob's session is closed by the server; a call on it fails.
        const std::error_code reason = co_await bob.wait_closed();
        CHECK(reason);  // not a graceful close
        CHECK_FALSE(bob.is_open());
        bool closed = false;
        try {
            co_await bob.call("echo", sdmp::bytes_of("gone"));
        } catch (const boost::system::system_error& e) {
            // The server aborted it: the stream ended without `end` (protocol.md §6.6).
            closed = has_code(e, sdmp::framework_errc::connection_lost);
        }
        CHECK(closed);

        // Alice's session was left alone.
        CHECK(alice.is_open());
        const bool alice_echoed_again = co_await echoes(alice, "alice again");
        CHECK(alice_echoed_again);

        // Carol gets in; Bob is refused at the handshake.
        const sdmp::Session carol = co_await connect_as(server, peers.carol);
        const bool carol_echoed = co_await echoes(carol, "carol");
        CHECK(carol_echoed);
        try {
            co_await connect_as(server, peers.bob);
        } catch (const boost::system::system_error& e) {
            bob_refused = has_code(e, sdmp::framework_errc::refused_by_peer);
        }
        const bool alice_echoed_still = co_await echoes(alice, "alice still");
        CHECK(alice_echoed_still);
        CHECK(server.server().session_count() == 2);  // alice and carol
    }());
    CHECK(carol_refused_before);
    CHECK(bob_refused);

    // On the wire Bob's refusal is exactly `nope` then end of stream.
    {
        tcp::socket socket = raw_connect(io, server.endpoint());
        auto state = sdmp::protocol::HandshakeState::initiator(
            handshake_config(peers.bob, keys().client_trust), keys().server.fingerprint());
        auto action = state.next();
        auto* hello = std::get_if<sdmp::protocol::action::Send>(&action);
        REQUIRE(hello != nullptr);
        asio::write(socket, asio::buffer(hello->bytes));
        const ReadResult result = read_to_eof(socket);
        CHECK(result.bytes == nope_bytes());
        CHECK(result.end == asio::error::eof);
    }
    drain(io);
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(metrics.handshakes_refused.at("unknown_peer") == 3);  // carol before, bob twice after
    CHECK(metrics.handshakes_completed == 3);                   // alice, bob, carol
}

TEST_CASE("a handshake in progress finishes with the old store but its session is closed",
          "[framework][loopback][trust]") {
    const Peers peers;
    auto sink = std::make_shared<WatchSink>();
    auto options = server_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::debug);
    TestServer server(echo_router(), options);
    REQUIRE(server.server().update_trust(peers.store({&peers.alice, &peers.bob})) == 0);

    asio::io_context io;
    tcp::socket socket = raw_connect(io, server.endpoint());
    const std::string local = socket.local_endpoint().address().to_string() + ":" +
                              std::to_string(socket.local_endpoint().port());
    auto state = sdmp::protocol::HandshakeState::initiator(
        handshake_config(peers.bob, keys().client_trust), keys().server.fingerprint());
    auto action = state.next();
    auto* hello = std::get_if<sdmp::protocol::action::Send>(&action);
    REQUIRE(hello != nullptr);

    // The server has taken its store for this handshake; only then is Bob removed.
    asio::write(socket, asio::buffer(hello->bytes.data(), 100));
    REQUIRE(sink->wait_for("handshake with " + local + " started"));
    CHECK(server.server().update_trust(peers.store({&peers.alice})) == 0);
    asio::write(socket, asio::buffer(hello->bytes.data() + 100, hello->bytes.size() - 100));

    // The server completes the handshake (with the store it started with) and then closes.
    const ReadResult result = read_to_eof(socket);
    REQUIRE(result.bytes.size() == sdmp::protocol::k_connection_message_size);
    state.feed(result.bytes);
    CHECK(std::holds_alternative<sdmp::protocol::action::Done>(state.next()));
    CHECK(sink->wait_for("no longer trusted"));
    CHECK(server.server().session_count() == 0);
    socket.close();
    server.stop();
    CHECK(server.server().metrics().sessions_total == 0);  // never ran as a session
}

TEST_CASE("close() ends a reconnecting client's backoff at once",
          "[framework][loopback][reconnect]") {
    // The server refuses the stranger, so the client backs off for an hour after the first try.
    TestServer server(echo_router());
    asio::io_context io;
    Signal attempt_failed(io.get_executor(), 1);

    class FailureSink : public sdmp::LogSink {
      public:
        explicit FailureSink(Signal& signal) : signal_(signal) {}
        void write(sdmp::LogLevel, std::string_view message) override {
            if (message.find("failed (attempt 1)") == std::string_view::npos)
                return;
            line = std::string(message);
            notify(signal_);
        }
        std::string line;

      private:
        Signal& signal_;
    };
    auto sink = std::make_shared<FailureSink>(attempt_failed);
    auto options = client_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::info);
    sdmp::ReconnectOptions reconnect;
    reconnect.initial_backoff = std::chrono::hours(1);
    reconnect.max_backoff = std::chrono::hours(1);
    sdmp::ReconnectingClient client(
        io.get_executor(), sdmp::Target::address(server.endpoint(), keys().server.fingerprint()),
        keys().stranger, keys().stranger_trust, options, reconnect);

    bool aborted = false;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        Signal finished(executor, 1);
        watch_session(executor, client, aborted, finished);
        // The first attempt was refused; the client is now waiting out its hour.
        co_await wait(attempt_failed);
        client.close();
        co_await wait(finished);  // without the fix this waits an hour (the safety net fails)
    }());
    CHECK(aborted);
    CHECK(client.connects() == 0);
    // The log names the cause by its message, without Boost's source locations.
    CHECK(sink->line.find(sdmp::make_error_code(sdmp::framework_errc::refused_by_peer).message()) !=
          std::string::npos);
    CHECK(sink->line.find(".hpp") == std::string::npos);
    CHECK(sink->line.find(" at ") == std::string::npos);
    // Nothing is left on the io_context: no hour-long timer.
    drain(io);
}
