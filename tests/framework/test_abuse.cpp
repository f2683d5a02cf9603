// Refusal and abuse paths found by an outside review: handshake-table eviction, refusal
// logging under a flood, one record turned into unbounded work, compression across calls,
// authenticated ends, the envelope size rule and the per-peer session cap. Each test fails on
// the code before its fix. No sleeps and no timing assertions.
#include <poll.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "adversarial_support.hpp"
#include "detail/refusal_log.hpp"

using namespace fwtest;

namespace {

// Level-0 record size (protocol.md §5.1): stored blocks of at most 65,535 bytes, 5 bytes of
// header each, padded to a multiple of 256, plus the 16-byte tag.
std::size_t level0_sealed_size(std::size_t payload) {
    const std::size_t blocks = (payload + 65534) / 65535;
    const std::size_t plain = payload + 5 * blocks;
    return (plain + 255) / 256 * 256 + 16;
}

std::size_t framed_size(const protocol::Message& message) {
    sdmp::Bytes encoded;
    REQUIRE_FALSE(protocol::encode_message(message, encoded));
    return encoded.size();
}

class CaptureSink : public sdmp::LogSink {
  public:
    void write(sdmp::LogLevel, std::string_view message) override {
        const std::lock_guard lock(mutex_);
        lines_.emplace_back(message);
    }
    std::vector<std::string> lines() const {
        const std::lock_guard lock(mutex_);
        return lines_;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

// Waits (safety net only) until at least `count` of `sockets` have something to read (bytes
// or end of stream) and returns their indexes.
std::vector<std::size_t> wait_answered(std::vector<tcp::socket>& sockets, std::size_t count) {
    const auto give_up = std::chrono::steady_clock::now() + k_safety_net;
    for (;;) {
        std::vector<pollfd> polled;
        for (auto& socket : sockets)
            polled.push_back({socket.native_handle(), POLLIN, 0});
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            give_up - std::chrono::steady_clock::now());
        REQUIRE(left.count() > 0);
        REQUIRE(::poll(polled.data(), polled.size(), static_cast<int>(left.count())) >= 0);
        std::vector<std::size_t> answered;
        for (std::size_t i = 0; i < polled.size(); ++i) {
            if (polled[i].revents != 0)
                answered.push_back(i);
        }
        if (answered.size() >= count)
            return answered;
    }
}

}  // namespace

TEST_CASE("a full handshake table evicts the oldest stalled handshake for a newcomer",
          "[framework][loopback][abuse]") {
    auto options = server_options();
    options.max_handshakes = 4;
    options.handshake_eviction_age = std::chrono::milliseconds(0);  // test_handshake_table.cpp
    options.handshake.first_byte_timeout = std::chrono::hours(1);   // only eviction can help
    options.handshake.message_timeout = std::chrono::hours(1);
    options.handshake.timeout = std::chrono::hours(1);
    TestServer server(echo_router(), options);
    asio::io_context io;
    // Five stalled handshakes for four places: whatever order the server accepted them in, the
    // fifth found the table full and one of them was refused with `nope` (the oldest).
    std::vector<tcp::socket> stalled;
    for (int i = 0; i < 5; ++i) {
        stalled.push_back(raw_connect(io, server.endpoint()));
        const std::uint8_t first = 'S';
        asio::write(stalled.back(), asio::buffer(&first, 1));
    }
    const std::vector<std::size_t> first_evicted = wait_answered(stalled, 1);
    REQUIRE(first_evicted.size() == 1);
    const ReadResult evicted = read_to_eof(stalled[first_evicted.front()]);
    CHECK(evicted.bytes == nope_bytes());
    CHECK(evicted.end == asio::error::eof);

    // The table is full of stalled handshakes again. Before the fix the good client got `nope`.
    good_call(io, server, "while four handshakes stall");
    // It made room by evicting one more stalled handshake, and only one.
    const std::vector<std::size_t> answered = wait_answered(stalled, 2);
    CHECK(answered.size() == 2);
    for (const std::size_t i : answered) {
        if (i == first_evicted.front())
            continue;
        const ReadResult second = read_to_eof(stalled[i]);
        CHECK(second.bytes == nope_bytes());
        CHECK(second.end == asio::error::eof);
    }
    for (auto& socket : stalled)
        socket.close();
    drain(io);
    server.stop();
    CHECK(refused(server.server().metrics(), "evicted") == 2);
}

TEST_CASE("a connection that sends nothing is refused at the first-byte deadline",
          "[framework][loopback][abuse]") {
    auto options = server_options();
    options.handshake.first_byte_timeout = std::chrono::milliseconds(100);
    options.handshake.timeout = std::chrono::hours(1);  // not the overall deadline
    TestServer server(echo_router(), options);
    asio::io_context io;
    tcp::socket silent = raw_connect(io, server.endpoint());
    const ReadResult result = read_to_eof(silent);
    CHECK(result.bytes == nope_bytes());
    CHECK(result.end == asio::error::eof);
    good_call(io, server, "afterwards");
    drain(io);
    server.stop();
    CHECK(refused(server.server().metrics(), "timeout") == 1);
}

TEST_CASE("refusal log lines are rate-limited per cause, with a count of what was held back",
          "[framework][abuse]") {
    auto sink = std::make_shared<CaptureSink>();
    sdmp::detail::RefusalLog log(sdmp::Logger(sink, sdmp::LogLevel::info));
    using Clock = sdmp::detail::RefusalLog::Clock;
    const Clock::time_point start{};
    for (int i = 0; i < 1000; ++i)
        log.refused("127.0.0.1:1", "bad_magic", start);
    log.refused("127.0.0.1:2", "unknown_peer", start);  // another cause has its own allowance
    auto lines = sink->lines();
    REQUIRE(lines.size() == sdmp::detail::RefusalLog::k_burst + 1);
    CHECK(lines.front() == "server: refused 127.0.0.1:1: bad_magic");
    CHECK(lines.back() == "server: refused 127.0.0.1:2: unknown_peer");

    // An interval later: what was held back is reported in one line, then one more line fits.
    log.refused("127.0.0.1:3", "bad_magic", start + sdmp::detail::RefusalLog::k_interval);
    lines = sink->lines();
    REQUIRE(lines.size() == sdmp::detail::RefusalLog::k_burst + 3);
    CHECK(lines[lines.size() - 2] ==
          "server: " + std::to_string(1000 - sdmp::detail::RefusalLog::k_burst) +
              " more connections refused (bad_magic) were not logged");
    CHECK(lines.back() == "server: refused 127.0.0.1:3: bad_magic");
    for (int i = 0; i < 5; ++i)
        log.refused("127.0.0.1:4", "bad_magic", start + sdmp::detail::RefusalLog::k_interval);
    log.flush();
    CHECK(sink->lines().back() == "server: 5 more connections refused (bad_magic) were not logged");
}

TEST_CASE("pings of one record are answered by one pong, cancels of unknown ids by nothing",
          "[framework][loopback][abuse]") {
    TestServer server(echo_router(), server_options());
    asio::io_context io;
    RawPeer peer = RawPeer::connect(io, server.endpoint());
    // A record of 100,000 envelopes: 3-byte cancels between pings. Decoded one at a time, it
    // holds no memory per envelope and queues one pong, not one per ping.
    std::vector<protocol::Message> flood;
    flood.emplace_back(protocol::Ping{1});
    for (std::uint64_t i = 0; i < 100000; ++i) {
        if (i % 1000 == 999)
            flood.emplace_back(protocol::Ping{i});
        else
            flood.emplace_back(protocol::Cancel{1 + i % 100});
    }
    flood.emplace_back(protocol::Ping{424242});
    peer.send(peer.seal(flood, 6));
    std::vector<protocol::Message> received;
    std::size_t sealed = 0;
    REQUIRE(peer.receive_record(received, sealed));
    REQUIRE(received.size() == 1);
    const auto* pong = std::get_if<protocol::Pong>(&received.front());
    REQUIRE(pong != nullptr);
    CHECK(pong->opaque == 424242);  // the last ping's
    // Nothing else was queued: the next record is the answer to this call.
    CHECK(peer.echo(7, "still serving") == "still serving");
    drain(io);
}

TEST_CASE("messages of different calls never share a compressed record",
          "[framework][loopback][abuse]") {
    const std::string secret(3000, 's');
    sdmp::Router router = echo_router();
    router.add("secret", [&](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(secret);
    });
    router.add("secret.private", [&](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(secret).uncompressed();
    });
    auto options = server_options();
    options.session.compression = sdmp::CompressionPolicy::always;  // as when writes back up
    TestServer server(std::move(router), options);
    asio::io_context io;
    RawPeer peer = RawPeer::connect(io, server.endpoint());
    const std::string guess(3000, 's');  // attacker-chosen bytes that match the secret

    SECTION("a secret answered next to an echo goes out at level 0") {
        std::size_t mixed_records = 0;
        for (std::uint64_t round = 0; round < 20 && mixed_records == 0; ++round) {
            peer.send(peer.seal(
                {protocol::Request{2 * round + 1, "secret", 0, {}, {}},
                 protocol::Request{2 * round + 2, "echo", 0, {}, sdmp::bytes_of(guess)}}));
            for (std::size_t answered = 0; answered < 2;) {
                std::vector<protocol::Message> messages;
                std::size_t sealed = 0;
                REQUIRE(peer.receive_record(messages, sealed));
                std::size_t payload = 0;
                for (const auto& m : messages)
                    payload += framed_size(m);
                answered += messages.size();
                if (messages.size() > 1) {
                    ++mixed_records;
                    CHECK(sealed == level0_sealed_size(payload));
                }
            }
        }
        // The server coalesced the two answers at least once...
        CHECK(mixed_records > 0);
        // ...and does compress an answer alone in its record (compression really is forced).
        peer.send(peer.seal({protocol::Request{100, "echo", 0, {}, sdmp::bytes_of(guess)}}));
        std::vector<protocol::Message> lone;
        std::size_t sealed = 0;
        REQUIRE(peer.receive_record(lone, sealed));
        REQUIRE(lone.size() == 1);
        CHECK(sealed < level0_sealed_size(framed_size(lone.front())));
    }
    SECTION("Reply::uncompressed and a request's sdmp-no-compress keep the answer at level 0") {
        protocol::Request inherit{1, "echo", 0, {{"sdmp-no-compress", "1"}}, sdmp::bytes_of(guess)};
        for (const auto& request : {protocol::Request{2, "secret.private", 0, {}, {}}, inherit}) {
            INFO(request.method);
            peer.send(peer.seal({request}));
            std::vector<protocol::Message> messages;
            std::size_t sealed = 0;
            REQUIRE(peer.receive_record(messages, sealed));
            REQUIRE(messages.size() == 1);
            const auto* response = std::get_if<protocol::Response>(&messages.front());
            REQUIRE(response != nullptr);
            CHECK(response->body.size() == 3000);
            CHECK(response->metadata.empty());  // the reserved entry is not echoed back
            CHECK(sealed == level0_sealed_size(framed_size(messages.front())));
        }
    }
    drain(io);
}

TEST_CASE("a graceful end is goaway then end both ways, an end of stream without end is a cut",
          "[framework][loopback][abuse]") {
    auto sink = std::make_shared<WatchSink>();
    auto options = server_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::info);
    TestServer server(echo_router(), options);
    asio::io_context io;

    SECTION("a stream that just ends is reported as cut") {
        RawPeer peer = RawPeer::connect(io, server.endpoint());
        CHECK(peer.echo(1, "hello") == "hello");
        peer.socket().shutdown(tcp::socket::shutdown_send);  // no `end` envelope
        const ReadResult result = read_to_eof(peer.socket());
        CHECK(result.bytes.empty());  // an error close sends nothing more (§5.6)
        CHECK(sink->wait_for(ends_because(sdmp::framework_errc::connection_lost)) == 1);
    }
    SECTION("a stream that ends inside a record is reported as cut, even after a request") {
        RawPeer peer = RawPeer::connect(io, server.endpoint());
        const sdmp::Bytes record = peer.seal({protocol::Request{1, "echo", 0, {}, {}}});
        peer.send(sdmp::Bytes(record.begin(), record.begin() + 10));
        peer.socket().shutdown(tcp::socket::shutdown_send);
        read_to_eof(peer.socket());
        CHECK(sink->wait_for(ends_because(sdmp::framework_errc::connection_lost)) == 1);
    }
    SECTION("the server's shutdown: goaway, end, and it waits for ours") {
        RawPeer peer = RawPeer::connect(io, server.endpoint());
        CHECK(peer.echo(1, "hello") == "hello");
        std::thread stopping([&] { server.stop(); });
        std::vector<protocol::Message> messages;
        while (messages.empty() || !std::holds_alternative<protocol::End>(messages.back())) {
            std::size_t sealed = 0;
            REQUIRE(peer.receive_record(messages, sealed));
        }
        REQUIRE(messages.size() >= 2);
        CHECK(std::holds_alternative<protocol::GoAway>(messages.front()));
        peer.send(peer.seal({protocol::End{}}));
        peer.socket().shutdown(tcp::socket::shutdown_send);
        const ReadResult rest = read_to_eof(peer.socket());
        CHECK(rest.bytes.empty());  // nothing after its `end`
        CHECK(rest.end == asio::error::eof);
        stopping.join();
        CHECK(sink->wait_for("ends:", 0) == 0);  // a graceful end is no error
    }
    drain(io);
}

TEST_CASE("a client session closed by the server ends gracefully on both sides",
          "[framework][loopback][abuse]") {
    std::atomic<int> notified{0};
    sdmp::Router router = echo_router();
    router.on_notification("note", [&](sdmp::Context&, sdmp::Bytes) -> awaitable<void> {
        ++notified;
        co_return;
    });
    TestServer server(std::move(router), server_options());
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        for (int i = 0; i < 50; ++i)
            co_await session.notify("note", sdmp::bytes_of("n"));
        const sdmp::Reply reply = co_await session.call("echo", sdmp::bytes_of("x"));
        CHECK(reply.is_ok());
        session.close();
        const std::error_code reason = co_await session.wait_closed();
        CHECK_FALSE(reason);
    }());
    drain(io);
    server.stop();
    CHECK(notified == 50);  // every notification sent before the end was handled
}

TEST_CASE("the envelope limit counts the envelope, not its length frame",
          "[framework][loopback][abuse]") {
    auto options = server_options();
    options.session.max_message_size = 1000;
    TestServer server(echo_router(), options);
    asio::io_context io;
    RawPeer peer = RawPeer::connect(io, server.endpoint());
    // type, id 1, timeout 0, method "echo" (1 + 4), no metadata: 9 bytes before the body.
    for (const std::size_t envelope : {std::size_t{1000}, std::size_t{1001}}) {
        INFO("envelope of " << envelope << " bytes");
        const protocol::Request request{1, "echo", 0, {}, sdmp::Bytes(envelope - 9, 'a')};
        REQUIRE(protocol::envelope_size(request) == envelope);
        peer.send(peer.seal({request}));
        std::vector<protocol::Message> messages;
        std::size_t sealed = 0;
        REQUIRE(peer.receive_record(messages, sealed));
        REQUIRE(messages.size() == 1);
        const auto* response = std::get_if<protocol::Response>(&messages.front());
        REQUIRE(response != nullptr);
        CHECK(response->status == (envelope <= 1000 ? sdmp::Status::ok : sdmp::Status::too_large));
    }
    drain(io);
}

TEST_CASE("sessions per peer are capped at the handshake with nope",
          "[framework][loopback][abuse][limits]") {
    auto options = server_options();
    options.max_sessions_per_peer = 2;
    TestServer server(echo_router(), options);
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        std::vector<sdmp::Session> sessions;
        sessions.push_back(co_await connect_client(server));
        sessions.push_back(co_await connect_client(server));
        bool refused_third = false;
        try {
            co_await connect_client(server);
        } catch (const boost::system::system_error& e) {
            refused_third = has_code(e, sdmp::framework_errc::refused_by_peer);
        }
        CHECK(refused_third);
        // A closed session gives its place back.
        sessions.front().close();
        co_await sessions.front().wait_closed();
        sessions.erase(sessions.begin());
        for (int attempt = 0; attempt < 100; ++attempt) {
            try {
                sessions.push_back(co_await connect_client(server));
                break;
            } catch (const boost::system::system_error& e) {
                // The server may not have seen the end of the closed session yet.
                REQUIRE(has_code(e, sdmp::framework_errc::refused_by_peer));
            }
        }
        CHECK(sessions.size() == 2);
        for (auto& session : sessions)
            session.close();
    }());
    drain(io);
    server.stop();
    CHECK(refused(server.server().metrics(), "not_accepted") >= 1);
}
