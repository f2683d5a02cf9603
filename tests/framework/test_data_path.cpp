// Loopback tests of the session's data path: gathered large bodies, the automatic compression
// policy's probing and back-off, calls submitted from many threads at once (the call inbox), and
// calls that wait for send-queue space, with cancellation.
#include <atomic>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include "framework_test_util.hpp"

using namespace fwtest;

namespace {

void add_echo(sdmp::Router& router) {
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::move(body));
    });
}

sdmp::Bytes noise(std::size_t size, std::uint32_t seed) {
    std::mt19937 random(seed);
    sdmp::Bytes out(size);
    for (auto& b : out)
        b = static_cast<std::uint8_t>(random());
    return out;
}

sdmp::Bytes text(std::size_t size, std::uint32_t seed) {
    static const char* const words[] = {"alpha ", "beta ", "gamma ", "delta ", "{\"id\":", "}\n"};
    std::mt19937 random(seed);
    std::string s;
    while (s.size() < size)
        s += words[random() % 6];
    s.resize(size);
    return sdmp::bytes_of(s);
}

}  // namespace

TEST_CASE("bodies around the gather threshold echo intact under every compression policy",
          "[framework][loopback][datapath]") {
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router));
    asio::io_context io;
    const auto policy = GENERATE(sdmp::CompressionPolicy::automatic, sdmp::CompressionPolicy::never,
                                 sdmp::CompressionPolicy::always);
    CAPTURE(static_cast<int>(policy));
    run(io, [&]() -> awaitable<void> {
        auto options = client_options();
        options.session.compression = policy;
        const sdmp::Session session = co_await connect_client(server, options);
        std::uint32_t seed = 1;
        for (const std::size_t size : {65535u, 65536u, 65537u, 300000u}) {
            for (const bool compressible : {false, true}) {
                for (const bool no_compress : {false, true}) {
                    CAPTURE(size, compressible, no_compress);
                    const sdmp::Bytes body = compressible ? text(size, seed) : noise(size, seed);
                    ++seed;
                    const sdmp::Reply reply = co_await session.call(
                        "echo", body,
                        no_compress ? sdmp::CallOptions{}.uncompressed() : sdmp::CallOptions{});
                    CHECK(reply.is_ok());
                    CHECK(reply.body == body);
                }
            }
        }
    }());
    drain(io);
}

TEST_CASE("when_smaller compression probes again after incompressible traffic",
          "[framework][loopback][compression]") {
    constexpr std::size_t k_size = 64 * 1024;
    constexpr std::size_t k_noise = 5;
    constexpr std::size_t k_text = 40;
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router));
    asio::io_context io;
    auto metrics = std::make_shared<sdmp::Metrics>();
    run(io, [&]() -> awaitable<void> {
        auto options = client_options();
        options.metrics = metrics;
        options.session.compression = sdmp::CompressionPolicy::when_smaller;
        const sdmp::Session session = co_await connect_client(server, options);
        // (Never co_await inside a Catch assertion: GCC evaluates the expression again.)
        for (std::size_t i = 0; i < k_noise + k_text; ++i) {
            const auto seed = static_cast<std::uint32_t>(i);
            const sdmp::Bytes body = i < k_noise ? noise(k_size, seed) : text(k_size, seed);
            const sdmp::Reply reply = co_await session.call("echo", body);
            CHECK(reply.body == body);
        }
        // Every write is counted once the session is closed.
        session.close();
        const std::error_code reason = co_await session.wait_closed();
        CHECK_FALSE(reason);
    }());
    // The text compresses about 2x at level 1; had the back-off after the noise kept the
    // policy from probing, all of it would have gone out stored.
    const std::uint64_t sent = metrics->snapshot().bytes_out;
    CHECK(sent > k_noise * k_size);
    CHECK(sent < k_noise * k_size * 21 / 20 + k_text * k_size * 3 / 4);
    drain(io);
}

TEST_CASE("automatic compression stays off while the socket takes every write",
          "[framework][loopback][compression]") {
    constexpr std::size_t k_size = 8 * 1024;
    constexpr std::size_t k_calls = 20;
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router));
    asio::io_context io;
    auto metrics = std::make_shared<sdmp::Metrics>();
    run(io, [&]() -> awaitable<void> {
        auto options = client_options();
        options.metrics = metrics;
        const sdmp::Session session = co_await connect_client(server, options);
        // One call at a time: each request meets an empty socket that the peer drains.
        for (std::size_t i = 0; i < k_calls; ++i) {
            const sdmp::Bytes body = text(k_size, static_cast<std::uint32_t>(i));
            const sdmp::Reply reply = co_await session.call("echo", body);
            CHECK(reply.body == body);
        }
        session.close();
        const std::error_code reason = co_await session.wait_closed();
        CHECK_FALSE(reason);
    }());
    // Compressible records over the threshold, all sent stored.
    CHECK(metrics->snapshot().bytes_out > k_calls * k_size);
    drain(io);
}

TEST_CASE("automatic compression starts once writes back up behind a stalled peer",
          "[framework][loopback][compression]") {
    constexpr std::size_t k_size = 1 << 20;
    // Enough to fill the send queue and both kernel buffers (whatever their size, up to this)
    // while the peer reads nothing.
    constexpr std::size_t k_cap = 160;
    std::vector<sdmp::Bytes> texts;
    for (std::uint32_t seed = 0; seed < 4; ++seed)
        texts.push_back(text(k_size, seed));
    // The server has one thread; its "stall" handler blocks that thread until the test opens
    // the gate, so nothing of the session is read meanwhile and the client's writes back up.
    std::promise<void> gate;
    std::shared_future<void> opened = gate.get_future().share();
    struct OpenAtExit {
        std::promise<void>& gate;
        bool open = false;
        void now() {
            if (!std::exchange(open, true))
                gate.set_value();
        }
        ~OpenAtExit() { now(); }
    } open_gate{gate};
    sdmp::Router router;
    std::atomic<bool> stalled{false};
    router.on_notification("stall",
                           [opened, &stalled](sdmp::Context&, sdmp::Bytes) -> awaitable<void> {
                               stalled = true;
                               opened.wait();
                               co_return;
                           });
    router.on_notification("sink",
                           [](sdmp::Context&, sdmp::Bytes) -> awaitable<void> { co_return; });
    auto options = server_options();
    options.threads = 1;
    TestServer server(std::move(router), options);
    asio::io_context io;
    auto metrics = std::make_shared<sdmp::Metrics>();
    std::uint64_t sent_before = 0;
    std::size_t messages = 0;
    run(io, [&]() -> awaitable<void> {
        auto client = client_options();
        client.metrics = metrics;
        const sdmp::Session session = co_await connect_client(server, client);
        co_await session.notify("stall", sdmp::Bytes{});
        bool sender_done = false;
        bool gate_open = false;
        std::exception_ptr sender_error;
        asio::co_spawn(
            io,
            [&]() -> awaitable<void> {
                // Stops once the gate is open: the one message waiting for space then goes too.
                while (messages < k_cap && !gate_open) {
                    co_await session.notify("sink", texts[messages % texts.size()]);
                    ++messages;
                }
            },
            [&](std::exception_ptr error) {
                sender_error = error;
                sender_done = true;
            });
        // Wait (polling the queue, bounded by the safety net) until the sender waits for queue
        // space: the writer is then stuck in a write the socket could not take whole.
        asio::steady_timer poll(io);
        const auto give_up = std::chrono::steady_clock::now() + k_safety_net;
        while (session.stats().blocked_senders == 0 && !sender_done &&
               std::chrono::steady_clock::now() < give_up) {
            poll.expires_after(std::chrono::milliseconds(1));
            co_await poll.async_wait(asio::use_awaitable);
        }
        CHECK(stalled);
        CHECK(session.stats().blocked_senders > 0);
        // Every write completed so far went out before the backlog, stored.
        sent_before = metrics->snapshot().bytes_out;
        gate_open = true;
        open_gate.now();
        while (!sender_done && std::chrono::steady_clock::now() < give_up) {
            poll.expires_after(std::chrono::milliseconds(1));
            co_await poll.async_wait(asio::use_awaitable);
        }
        CHECK(sender_done);
        CHECK_FALSE(sender_error);
        session.close();
        const std::error_code reason = co_await session.wait_closed();
        CHECK_FALSE(reason);
    }());
    // What was still to go when the link backed up: the write it could not take (stored, at
    // most one record of the text) and the full send queue behind it (at least 3 MiB of text),
    // which went out compressed: the text shrinks about 6-fold at level 1.
    const std::uint64_t sent = metrics->snapshot().bytes_out;
    const std::uint64_t text_total = std::uint64_t{messages} * k_size;
    CAPTURE(sent, sent_before, text_total);
    REQUIRE(text_total > sent_before);
    CHECK(sent - sent_before < (text_total - sent_before) * 3 / 4);
    drain(io);
}

TEST_CASE("calls from many threads at once share one session", "[framework][loopback][inbox]") {
    constexpr int k_threads = 4;
    constexpr int k_calls = 300;
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router));
    asio::io_context io;
    sdmp::Session session = run(io, connect_client(server));
    {
        // The session lives on `io`, run by its own thread; the calls come from a pool.
        auto guard = asio::make_work_guard(io);
        std::thread io_thread([&] { io.run(); });
        asio::thread_pool pool(k_threads);
        std::atomic<int> ok{0};
        std::vector<std::future<void>> done;
        for (int t = 0; t < k_threads; ++t) {
            done.push_back(asio::co_spawn(
                pool,
                [&, t]() -> awaitable<void> {
                    for (int i = 0; i < k_calls; ++i) {
                        const std::string body = std::to_string(t) + ":" + std::to_string(i);
                        const sdmp::Reply reply =
                            co_await session.call("echo", sdmp::bytes_of(body));
                        if (reply.is_ok() && reply.text() == body)
                            ++ok;
                    }
                },
                asio::use_future));
        }
        for (auto& f : done)
            f.get();  // rethrows a call's exception
        pool.join();
        CHECK(ok == k_threads * k_calls);
        guard.reset();
        session = sdmp::Session{};  // the last handle: the session closes
        io_thread.join();
    }
    drain(io);
}

TEST_CASE("calls waiting for queue space complete, and cancelling some spares the rest",
          "[framework][loopback][backpressure]") {
    constexpr int k_calls = 60;
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router));
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto options = client_options();
        options.session.send_queue_bytes = 1024;  // each 4 KiB call waits for an empty queue
        const sdmp::Session session = co_await connect_client(server, options);
        std::vector<asio::cancellation_signal> cancels(k_calls);
        std::vector<std::optional<sdmp::Reply>> replies(k_calls);
        std::vector<sdmp::Bytes> bodies;
        Signal all(executor, 1);
        int finished = 0;
        for (int i = 0; i < k_calls; ++i) {
            bodies.push_back(noise(4096, static_cast<std::uint32_t>(100 + i)));
            asio::co_spawn(executor, session.call("echo", bodies.back()),
                           asio::bind_cancellation_slot(
                               cancels[static_cast<std::size_t>(i)].slot(),
                               [&, i](std::exception_ptr error, sdmp::Reply reply) {
                                   if (!error)
                                       replies[static_cast<std::size_t>(i)] = std::move(reply);
                                   if (++finished == k_calls)
                                       notify(all);
                               }));
        }
        for (int i = 7; i < k_calls; i += 10)
            cancels[static_cast<std::size_t>(i)].emit(asio::cancellation_type::terminal);
        co_await wait(all);
        int cancelled = 0;
        for (int i = 0; i < k_calls; ++i) {
            const auto& reply = replies[static_cast<std::size_t>(i)];
            REQUIRE(reply.has_value());
            if (i % 10 == 7 && reply->status == sdmp::Status::cancelled) {
                ++cancelled;
                continue;
            }
            CHECK(reply->is_ok());
            CHECK(reply->body == bodies[static_cast<std::size_t>(i)]);
        }
        CHECK(cancelled > 0);
        CHECK(session.stats().send_waits > 0);
        CHECK(session.stats().queued_bytes == 0);
        // Still usable.
        const sdmp::Reply after = co_await session.call("echo", sdmp::bytes_of("after"));
        CHECK(after.text() == "after");
    }());
    drain(io);
}
