// Adversarial peers against a running server (loopback, port 0): junk, truncation, slowloris,
// connection churn, replay, tampered / reordered / duplicated records, a decompression bomb,
// oversized fields, request floods, key updates under load and the per-source handshake limits.
// Each test checks the outcome the protocol prescribes (`nope` then close during the
// handshake, close without `nope` after it, a status for request-level abuse) and that a
// well-behaved client is still served. No sleeps and no timing assertions: the only clocks are
// safety nets (framework_test_util.hpp) and, where a test needs one, a short handshake deadline.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/thread_pool.hpp>

#include "adversarial_support.hpp"

using namespace fwtest;
using namespace boost::asio::experimental::awaitable_operators;

TEST_CASE("junk of many lengths instead of a connection message: nope, then close",
          "[framework][loopback][adversarial]") {
    TestServer server(echo_router(), adversarial_options());
    asio::io_context io;
    std::mt19937 random(20240601);
    std::vector<std::size_t> lengths = {1,    2,    3,    4,    5,    7,    8,   9,   39,
                                        40,   41,   159,  160,  161,  255,  256, 257, 1023,
                                        1024, 1025, 2047, 2048, 2049, 4095, 4096};
    while (lengths.size() < 50)
        lengths.push_back(1 + random() % 4096);

    std::vector<tcp::socket> sockets;
    for (const std::size_t length : lengths) {
        sdmp::Bytes junk = pseudo_random(length, random);
        if (junk[0] == 'S')
            junk[0] = 'X';  // never a prefix of the magic, so never a valid message
        sockets.push_back(raw_connect(io, server.endpoint()));
        asio::write(sockets.back(), asio::buffer(junk));
    }
    good_call(io, server, "while junk is pending");
    for (std::size_t i = 0; i < sockets.size(); ++i) {
        INFO("junk of " << lengths[i] << " bytes");
        const ReadResult result = read_to_eof(sockets[i]);
        CHECK(result.bytes == nope_bytes());
        CHECK(result.end == asio::error::eof);
        sockets[i].close();
    }
    good_call(io, server, "after the junk");
    drain(io);
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(total_refused(metrics) == lengths.size());
    CHECK(metrics.handshakes_completed == 2);
}

TEST_CASE("a truncated connection message then end of stream: nope, then close, never served",
          "[framework][loopback][adversarial]") {
    TestServer server(echo_router(), adversarial_options());
    asio::io_context io;
    const sdmp::Bytes hello = client_hello();
    for (const std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8},
                                  std::size_t{40}, std::size_t{100}, std::size_t{159}}) {
        INFO("first " << cut << " bytes");
        tcp::socket socket = raw_connect(io, server.endpoint());
        asio::write(socket, asio::buffer(hello.data(), cut));
        socket.shutdown(tcp::socket::shutdown_send);
        const ReadResult result = read_to_eof(socket);
        // protocol.md §3.6: truncation is refused like any other failure; the peer only shut
        // down its sending side, so it reads the `nope`.
        CHECK(result.bytes == nope_bytes());
        CHECK(result.end == asio::error::eof);
    }
    good_call(io, server, "after truncation");
    drain(io);
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(metrics.handshakes_completed == 1);
    CHECK(refused(metrics, "truncated") == 7);
}

TEST_CASE("slowloris: 300 stalled handshakes all get nope, a good client is served meanwhile",
          "[framework][loopback][adversarial][limits]") {
    auto options = adversarial_options();
    options.source_limits.exempt_loopback = false;  // 127.0.0.3 and 127.0.0.1 are two sources
    TestServer server(echo_router(), options);
    asio::io_context io;
    constexpr int k_stalled = 300;
    std::vector<tcp::socket> sockets;
    for (int i = 0; i < k_stalled; ++i) {
        sockets.push_back(raw_connect_from(io, server.endpoint(), "127.0.0.3"));
        const std::uint8_t first = 'S';  // a valid start, then nothing
        asio::write(sockets.back(), asio::buffer(&first, 1));
    }
    // The stalled source holds at most max_handshakes_per_source of the server's handshake
    // slots, so another source gets in while they are pending.
    good_call(io, server, "meanwhile");
    for (auto& socket : sockets) {
        const ReadResult result = read_to_eof(socket);
        CHECK(result.bytes == nope_bytes());
        CHECK(result.end == asio::error::eof);
        socket.close();
    }
    good_call(io, server, "afterwards");
    drain(io);
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(total_refused(metrics) == k_stalled);
    // Over the per-source limits at once; the rest at the handshake deadline.
    CHECK(refused(metrics, "rate_limited") + refused(metrics, "max_handshakes_per_source") > 0);
    CHECK(refused(metrics, "timeout") > 0);
    CHECK(metrics.handshakes_completed == 2);
}

TEST_CASE("2000 connect/close cycles: the server keeps serving and forgets them all",
          "[framework][loopback][adversarial]") {
    TestServer server(echo_router(), adversarial_options());
    asio::io_context io;
    const auto spec = sdmp::EndpointSpec::parse(server.endpoint());
    const tcp::endpoint target(asio::ip::make_address(spec.host), spec.port);
    constexpr int k_batches = 20;
    constexpr int k_per_batch = 100;
    for (int batch = 0; batch < k_batches; ++batch) {
        for (int i = 0; i < k_per_batch; ++i) {
            tcp::socket socket(io);
            socket.connect(target);
            if (i % 2 == 1)
                socket.set_option(asio::socket_base::linger(true, 0));  // close with a reset
            socket.close();
        }
        good_call(io, server, "batch " + std::to_string(batch));
    }
    drain(io);
    server.stop();  // returns once every connection coroutine has finished
    CHECK(server.server().session_count() == 0);
    const auto metrics = server.server().metrics();
    CHECK(metrics.handshakes_completed == k_batches);
    CHECK(metrics.handshakes_failed + total_refused(metrics) == k_batches * k_per_batch);
    CHECK(metrics.sessions_open == 0);
    CHECK(metrics.sessions_total == k_batches);
}

TEST_CASE("a 1 MiB junk stream gets nope, then close", "[framework][loopback][adversarial]") {
    TestServer server(echo_router(), adversarial_options());
    asio::io_context io;
    std::mt19937 random(7);
    sdmp::Bytes junk = pseudo_random(std::size_t{1} << 20, random);
    junk[0] = 'X';
    ReadResult result;
    run(io, [&]() -> awaitable<void> {
        tcp::socket socket(co_await asio::this_coro::executor);
        const auto spec = sdmp::EndpointSpec::parse(server.endpoint());
        co_await socket.async_connect(tcp::endpoint(asio::ip::make_address(spec.host), spec.port),
                                      asio::use_awaitable);
        // Write everything while reading: the server stops reading long before 1 MiB.
        auto writer = [&]() -> awaitable<void> {
            co_await asio::async_write(socket, asio::buffer(junk),
                                       asio::as_tuple(asio::use_awaitable));
        };
        auto reader = [&]() -> awaitable<void> {
            std::array<std::uint8_t, 4096> buffer{};
            for (;;) {
                auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer),
                                                               asio::as_tuple(asio::use_awaitable));
                result.bytes.insert(result.bytes.end(), buffer.begin(),
                                    buffer.begin() + static_cast<std::ptrdiff_t>(n));
                if (ec) {
                    result.end = ec;
                    co_return;
                }
            }
        };
        co_await (writer() && reader());
    }());
    CHECK(result.bytes == nope_bytes());
    CHECK(ended(result));
    good_call(io, server, "after the stream");
    drain(io);
    server.stop();
    CHECK(refused(server.server().metrics(), "bad_magic") == 1);
}

TEST_CASE("a replayed connection message is refused, the first copy never yields a session",
          "[framework][loopback][adversarial][replay]") {
    auto sink = std::make_shared<WatchSink>();
    auto options = adversarial_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::warn);
    TestServer server(echo_router(), options);
    asio::io_context io;
    // A real client's connection message, captured (it never reached the server itself).
    const sdmp::Bytes hello = client_hello();

    // First copy: the server answers with its own connection message, as for any valid one...
    tcp::socket first = raw_connect(io, server.endpoint());
    asio::write(first, asio::buffer(hello));
    sdmp::Bytes answer(protocol::k_connection_message_size);
    asio::read(first, asio::buffer(answer));
    CHECK(sdmp::as_string_view(sdmp::ByteView(answer).first(4)) == "SDMP");

    // ...second copy, on another connection: refused as a replay.
    {
        tcp::socket second = raw_connect(io, server.endpoint());
        asio::write(second, asio::buffer(hello));
        const ReadResult result = read_to_eof(second);
        CHECK(result.bytes == nope_bytes());
        CHECK(result.end == asio::error::eof);
    }

    // The first copy cannot go on: without the initiator's ephemeral private key the session
    // keys are out of reach (protocol.md §4), and a record under any other key closes the
    // connection without `nope`.
    sdmp::crypto::SecretBytes guess(32);
    provider().random(sdmp::MutableByteView(guess.data(), guess.size()));
    protocol::RecordSealer forger(provider(), sdmp::crypto::AeadAlgorithm::aes_256_gcm, guess);
    sdmp::Bytes payload;
    REQUIRE_FALSE(protocol::encode_message(protocol::Request{1, "echo", 0, {}, sdmp::bytes_of("x")},
                                           payload));
    sdmp::Bytes record;
    REQUIRE_FALSE(forger.seal(payload, 0, record));
    asio::write(first, asio::buffer(record));
    const ReadResult result = read_to_eof(first);
    CHECK(result.bytes.empty());
    CHECK(ended(result));
    CHECK(sink->wait_for(ends_because(sdmp::errc::authentication_failed)) == 1);

    good_call(io, server, "after the replay");
    drain(io);
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(refused(metrics, "replay") == 1);
    CHECK(metrics.served.size() == 1);  // only the good client's echo
    CHECK(metrics.served.at("echo").total() == 1);
}

TEST_CASE("a single flipped bit in a record closes the connection without nope",
          "[framework][loopback][adversarial]") {
    auto sink = std::make_shared<WatchSink>();
    auto options = adversarial_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::warn);
    TestServer server(echo_router(), options);
    asio::io_context io;

    // Control: the untampered record is answered.
    {
        RawPeer peer = RawPeer::connect(io, server.endpoint());
        CHECK(peer.echo(1, "intact") == "intact");
    }
    // Every bit of the length prefix, and one bit in every 9th byte of ciphertext and tag.
    std::vector<std::size_t> bits;
    for (std::size_t bit = 0; bit < 32; ++bit)
        bits.push_back(bit);
    std::size_t record_size = 0;
    {
        RawPeer sizing = RawPeer::connect(io, server.endpoint());
        record_size =
            sizing.seal({protocol::Request{1, "echo", 0, {}, sdmp::bytes_of("x")}}).size();
    }
    std::size_t body_flips = 0;
    for (std::size_t byte = protocol::k_record_prefix_size; byte < record_size; byte += 9) {
        bits.push_back(byte * 8 + byte % 8);
        ++body_flips;
    }
    for (const std::size_t bit : bits) {
        INFO("bit " << bit);
        RawPeer peer = RawPeer::connect(io, server.endpoint());
        sdmp::Bytes record =
            peer.seal({protocol::Request{1, "echo", 0, {}, sdmp::bytes_of("tampered")}});
        REQUIRE(record.size() == record_size);
        record[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        peer.send(record);
        // A flip that makes the length larger leaves the server waiting for the rest; our end
        // of stream settles it. No answer either way.
        peer.socket().shutdown(tcp::socket::shutdown_send);
        const ReadResult result = read_to_eof(peer.socket());
        CHECK(result.bytes.empty());
        CHECK(ended(result));
    }
    CHECK(sink->wait_for(ends_because(sdmp::errc::authentication_failed), body_flips) >=
          body_flips);
    good_call(io, server, "after the flips");
    drain(io);
    server.stop();
    CHECK(server.server().metrics().served.at("echo").total() == 2);  // control + good client
}

TEST_CASE("reordered and duplicated records close the connection",
          "[framework][loopback][adversarial]") {
    auto sink = std::make_shared<WatchSink>();
    auto options = adversarial_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::warn);
    TestServer server(echo_router(), options);
    asio::io_context io;
    SECTION("reordered") {
        RawPeer peer = RawPeer::connect(io, server.endpoint());
        CHECK(peer.echo(1, "in order") == "in order");
        const sdmp::Bytes second =
            peer.seal({protocol::Request{2, "echo", 0, {}, sdmp::bytes_of("2")}});
        const sdmp::Bytes third =
            peer.seal({protocol::Request{3, "echo", 0, {}, sdmp::bytes_of("3")}});
        peer.send(third);
        peer.send(second);
        const ReadResult result = read_to_eof(peer.socket());
        CHECK(result.bytes.empty());
        CHECK(ended(result));
    }
    SECTION("duplicated") {
        RawPeer peer = RawPeer::connect(io, server.endpoint());
        const sdmp::Bytes record =
            peer.seal({protocol::Request{1, "echo", 0, {}, sdmp::bytes_of("once")}});
        peer.send(record);
        std::vector<protocol::Message> messages;
        REQUIRE(peer.receive(messages));  // the original is answered
        REQUIRE(messages.size() == 1);
        CHECK(std::get<protocol::Response>(messages.front()).id == 1);
        peer.send(record);  // the copy is not
        const ReadResult result = read_to_eof(peer.socket());
        CHECK(result.bytes.empty());
        CHECK(ended(result));
    }
    CHECK(sink->wait_for(ends_because(sdmp::errc::authentication_failed)) == 1);
    good_call(io, server, "after reordering");
    drain(io);
}

TEST_CASE("a decompression bomb closes the connection before it inflates past the limit",
          "[framework][loopback][adversarial]") {
    auto sink = std::make_shared<WatchSink>();
    auto options = adversarial_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::warn);
    TestServer server(echo_router(), options);
    asio::io_context io;
    // Our sealer may build what the server's opener must not inflate (protocol.md §5.5).
    protocol::RecordLimits bomb_limits;
    bomb_limits.max_payload_size = std::size_t{64} << 20;
    bomb_limits.max_record_size = std::size_t{65} << 20;
    RawPeer peer = RawPeer::connect(io, server.endpoint(), bomb_limits);
    // A well-formed notification with 20 MiB of zeros: were it inflated, it would decode.
    sdmp::Bytes payload;
    REQUIRE_FALSE(protocol::encode_message(
        protocol::Notification{"log", {}, sdmp::Bytes(std::size_t{20} << 20, 0)}, payload,
        unlimited_messages()));
    const sdmp::Bytes bomb = peer.seal_payload(payload, 12);
    CHECK(bomb.size() < std::size_t{1} << 20);  // it really is a bomb
    peer.send(bomb);
    const ReadResult result = read_to_eof(peer.socket());
    CHECK(result.bytes.empty());
    CHECK(ended(result));
    CHECK(sink->wait_for(ends_because(sdmp::errc::limit_exceeded)) == 1);
    good_call(io, server, "after the bomb");
    drain(io);
}

TEST_CASE("a 300-byte method name closes the connection", "[framework][loopback][adversarial]") {
    auto sink = std::make_shared<WatchSink>();
    auto options = adversarial_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::warn);
    TestServer server(echo_router(), options);
    asio::io_context io;
    RawPeer peer = RawPeer::connect(io, server.endpoint());
    CHECK(peer.echo(1, "fine") == "fine");
    // protocol.md §6.2 by hand (encode_message enforces the 255-byte limit): type 1, id,
    // timeout, string method, metadata (none), body.
    const std::string method(300, 'm');
    sdmp::Bytes envelope{1};
    protocol::put_varint(2, envelope);
    protocol::put_varint(0, envelope);
    protocol::put_varint(method.size(), envelope);
    envelope.insert(envelope.end(), method.begin(), method.end());
    protocol::put_varint(0, envelope);
    sdmp::Bytes payload;
    protocol::put_varint(envelope.size(), payload);
    payload.insert(payload.end(), envelope.begin(), envelope.end());
    peer.send(peer.seal_payload(payload));
    const ReadResult result = read_to_eof(peer.socket());
    CHECK(result.bytes.empty());
    CHECK(ended(result));
    CHECK(sink->wait_for(ends_because(sdmp::errc::limit_exceeded)) == 1);
    good_call(io, server, "after the long name");
    drain(io);
}

TEST_CASE("a request id reused within one record closes the connection and ends the session",
          "[framework][loopback][adversarial]") {
    // The first request is queued for a worker when the second aborts the session in the
    // middle of the record: it must still be run (cancelled) so that the session can end.
    auto sink = std::make_shared<WatchSink>();
    auto options = adversarial_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::info);
    TestServer server(echo_router(), options);
    asio::io_context io;
    RawPeer peer = RawPeer::connect(io, server.endpoint());
    peer.send(peer.seal({protocol::Request{1, "echo", 0, {}, sdmp::bytes_of("first")},
                         protocol::Request{1, "echo", 0, {}, sdmp::bytes_of("again")}}));
    const ReadResult result = read_to_eof(peer.socket());
    CHECK(ended(result));
    CHECK(sink->wait_for(ends_because(sdmp::errc::malformed)) == 1);
    const std::string closed =
        "session with " + keys().client.fingerprint().short_hex() + " closed";
    CHECK(sink->wait_for(closed) == 1);
    good_call(io, server, "after the reused id");
    drain(io);
}

TEST_CASE("answers sent as control messages do not use up the control allowance",
          "[framework][loopback][adversarial][limits]") {
    // Each unknown-method answer is a control message of ~40 bytes, and the writer, run inline,
    // usually sends it before send_control returns: the allowance must come back every time.
    constexpr int k_calls = 200;
    std::mutex mutex;
    std::optional<sdmp::Session> served;  // the server's end
    auto options = server_options();
    options.session.max_control_bytes = 512;
    options.on_session = [&](const sdmp::Session& session) {
        const std::lock_guard lock(mutex);
        served = session;
    };
    TestServer server(echo_router(), options);
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server, client_options());
        int unknown = 0;
        for (int i = 0; i < k_calls; ++i) {
            const sdmp::Reply reply = co_await session.call("no.such.method", sdmp::Bytes{});
            if (reply.status != sdmp::Status::unknown_method)
                break;
            ++unknown;
        }
        CHECK(unknown == k_calls);
        const sdmp::Reply echoed = co_await session.call("echo", sdmp::bytes_of("still here"));
        CHECK(echoed.body == sdmp::bytes_of("still here"));
        CHECK(session.is_open());
        {
            const std::lock_guard lock(mutex);
            CHECK(served.has_value());
            // Nothing is queued at the server's end once every answer has arrived.
            if (served)
                CHECK(served->stats().control_bytes == 0);
            served.reset();  // a handle must not outlive the server's io_context
        }
        session.close();
        const std::error_code reason = co_await session.wait_closed();
        CHECK_FALSE(reason);
    }());
    drain(io);
}

TEST_CASE("10000 pipelined requests: the excess is answered overloaded, in-flight stays bounded",
          "[framework][loopback][adversarial][limits]") {
    constexpr std::size_t k_requests = 10000;
    constexpr std::size_t k_per_record = 1000;
    constexpr std::size_t k_max_in_flight = 1024;
    asio::thread_pool gate_pool(1);
    Signal gate(gate_pool.get_executor(), k_requests);
    sdmp::Router router;
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::move(body));
    });
    router.add("block", [&gate](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        co_await wait(gate);
        co_return sdmp::Reply::ok();
    });
    std::mutex mutex;
    std::optional<sdmp::Session> flooder;  // the server's side of the raw peer's session
    auto options = adversarial_options();
    options.session.max_in_flight = k_max_in_flight;
    options.on_session = [&](const sdmp::Session& session) {
        const std::lock_guard lock(mutex);
        if (!flooder)
            flooder = session;
    };
    TestServer server(std::move(router), options);
    asio::io_context io;
    RawPeer peer = RawPeer::connect(io, server.endpoint());

    for (std::size_t first = 1; first <= k_requests; first += k_per_record) {
        std::vector<protocol::Message> requests;
        for (std::size_t id = first; id < first + k_per_record; ++id)
            requests.emplace_back(protocol::Request{id, "block", 0, {}, {}});
        peer.send(peer.seal(requests));
    }

    auto in_flight = [&] {
        const std::lock_guard lock(mutex);
        REQUIRE(flooder.has_value());
        return flooder->stats().in_flight;
    };
    std::set<std::uint64_t> answered;
    std::size_t overloaded = 0;
    std::size_t ok = 0;
    std::size_t other = 0;
    std::size_t max_in_flight_seen = 0;
    auto read_until = [&](auto done) {
        while (!done()) {
            std::vector<protocol::Message> messages;
            REQUIRE(peer.receive(messages));
            for (const auto& message : messages) {
                const auto* response = std::get_if<protocol::Response>(&message);
                REQUIRE(response != nullptr);
                answered.insert(response->id);
                if (response->status == sdmp::Status::overloaded) {
                    ++overloaded;
                } else if (response->status == sdmp::Status::ok) {
                    ++ok;
                } else {
                    ++other;
                }
            }
            max_in_flight_seen = std::max(max_in_flight_seen, in_flight());
        }
    };
    read_until([&] { return overloaded + other >= k_requests - k_max_in_flight; });
    CHECK(overloaded == k_requests - k_max_in_flight);
    CHECK(in_flight() == k_max_in_flight);
    CHECK(max_in_flight_seen <= k_max_in_flight);

    good_call(io, server, "while flooded");

    for (std::size_t i = 0; i < k_max_in_flight; ++i)
        notify(gate);
    read_until([&] { return ok + other >= k_max_in_flight; });
    CHECK(ok == k_max_in_flight);
    CHECK(other == 0);
    CHECK(answered.size() == k_requests);  // every request answered exactly once
    CHECK(max_in_flight_seen <= k_max_in_flight);

    peer.socket().close();
    {
        const std::lock_guard lock(mutex);
        flooder.reset();
    }
    drain(io);
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(metrics.served.at("block").count(sdmp::Status::overloaded) ==
          k_requests - k_max_in_flight);
    CHECK(metrics.served.at("block").count(sdmp::Status::ok) == k_max_in_flight);
}

TEST_CASE("key updates under load: 2000 calls in both directions with 4 records per key",
          "[framework][loopback][keyupdate]") {
    constexpr int k_chains = 2;   // per direction: at most 4 messages share a record
    constexpr int k_calls = 500;  // per chain
    sdmp::protocol::RecordLimits limits;
    limits.records_per_key = 4;  // both peers must agree (protocol.md §5.4)
    asio::io_context io;
    Signal have_session(io.get_executor(), 1);
    std::mutex mutex;
    std::optional<sdmp::Session> server_side;
    auto options = server_options();
    options.session.record_limits = limits;
    options.on_session = [&](const sdmp::Session& session) {
        {
            const std::lock_guard lock(mutex);
            server_side = session;
        }
        notify(have_session);
    };
    TestServer server(echo_router(), options);

    int ok = 0;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto client = client_options();
        client.session.record_limits = limits;
        auto client_router = std::make_shared<sdmp::Router>(echo_router());
        client.router = client_router;
        const sdmp::Session session = co_await connect_client(server, client);
        co_await wait(have_session);
        sdmp::Session back;
        {
            const std::lock_guard lock(mutex);
            back = *server_side;
        }
        auto chain = [](sdmp::Session target, std::string name, int& count) -> awaitable<void> {
            for (int i = 0; i < k_calls; ++i) {
                const std::string text = name + " " + std::to_string(i);
                const sdmp::Reply reply = co_await target.call("echo", sdmp::bytes_of(text));
                if (reply.is_ok() && reply.text() == text)
                    ++count;
            }
        };
        Signal done(executor, 2 * k_chains);
        for (int c = 0; c < k_chains; ++c) {
            asio::co_spawn(executor, chain(session, "up" + std::to_string(c), ok),
                           [&](std::exception_ptr) { notify(done); });
            asio::co_spawn(executor, chain(back, "down" + std::to_string(c), ok),
                           [&](std::exception_ptr) { notify(done); });
        }
        for (int c = 0; c < 2 * k_chains; ++c)
            co_await wait(done);
    }());
    CHECK(ok == 2 * k_chains * k_calls);
    {
        const std::lock_guard lock(mutex);
        server_side.reset();
    }
    drain(io);
    server.stop();
    // Every direction carried 2000 messages, at most 4 per record: at least 500 records, so
    // at least 125 key updates each way.
    const auto metrics = server.server().metrics();
    CHECK(metrics.records_in >= 500);
    CHECK(metrics.records_out >= 500);
    CHECK(metrics.served.at("echo").count(sdmp::Status::ok) == k_chains * k_calls);
}

TEST_CASE("per-source handshake rate limit: nope over the burst, bounded table of sources",
          "[framework][loopback][limits]") {
    auto options = server_options();
    options.source_limits.exempt_loopback = false;
    options.source_limits.handshake_rate = 0.001;  // one token per 1000 s: none within the test
    options.source_limits.handshake_burst = 1;
    options.source_limits.max_sources = 2;
    TestServer server(echo_router(), options);
    asio::io_context io;
    // Gets in (and proves it with a call, so the server is done with the handshake) or is
    // refused with `nope`.
    auto admitted = [&](const std::string& source) {
        tcp::socket socket = raw_connect_from(io, server.endpoint(), source);
        auto established = try_handshake(socket);
        if (!established)
            return false;
        RawPeer peer(std::move(socket), std::move(*established));
        CHECK(peer.echo(1, source) == source);
        return true;
    };
    CHECK(admitted("127.0.0.1"));
    CHECK_FALSE(admitted("127.0.0.1"));  // its burst is spent
    CHECK(admitted("127.0.0.2"));
    CHECK(admitted("127.0.0.3"));  // the table is full: 127.0.0.1, seen longest ago, is forgotten
    CHECK(admitted("127.0.0.1"));  // ...and starts over (127.0.0.2 is forgotten now)
    CHECK_FALSE(admitted("127.0.0.3"));  // still remembered, still spent
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(refused(metrics, "rate_limited") == 2);
    CHECK(metrics.handshakes_completed == 4);
}

TEST_CASE("per-source limit on handshakes in progress, other sources are unaffected",
          "[framework][loopback][limits]") {
    auto sink = std::make_shared<WatchSink>();
    auto options = server_options();
    options.logger = sdmp::Logger(sink, sdmp::LogLevel::debug);
    options.source_limits.exempt_loopback = false;
    options.source_limits.max_handshakes_per_source = 2;
    TestServer server(echo_router(), options);
    asio::io_context io;
    const sdmp::Bytes hello = client_hello();
    // Two stalled handshakes from one source (admitted: the server logs their start)...
    std::vector<tcp::socket> stalled;
    for (int i = 0; i < 2; ++i) {
        stalled.push_back(raw_connect_from(io, server.endpoint(), "127.0.0.5"));
        asio::write(stalled.back(), asio::buffer(hello.data(), 10));
    }
    REQUIRE(sink->wait_for("handshake with 127.0.0.5:", 2) == 2);
    // ...so the third is refused at once (the handshake deadline is 10 s: this is not it)...
    {
        tcp::socket third = raw_connect_from(io, server.endpoint(), "127.0.0.5");
        const ReadResult result = read_to_eof(third);
        CHECK(result.bytes == nope_bytes());
        CHECK(result.end == asio::error::eof);
    }
    // ...while another source is served.
    {
        tcp::socket socket = raw_connect_from(io, server.endpoint(), "127.0.0.6");
        auto established = try_handshake(socket);
        REQUIRE(established.has_value());
        RawPeer peer(std::move(socket), std::move(*established));
        CHECK(peer.echo(1, "other source") == "other source");
    }
    for (auto& socket : stalled)
        socket.close();
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(refused(metrics, "max_handshakes_per_source") == 1);
    CHECK(metrics.handshakes_completed == 1);
}
