// Loopback tests of the server's threading models (ServerOptions::threading): many clients with
// many calls in flight, server-initiated calls, graceful shutdown and the structured end of
// run(), on several threads; a server on the application's executor, where the option does not
// apply (a strand per connection either way).
// Catch2's assertions are not thread-safe: handlers only record, the test thread asserts.
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>

#include "framework_test_util.hpp"

using namespace fwtest;

namespace {

const char* name_of(sdmp::ThreadingModel model) {
    return model == sdmp::ThreadingModel::context_per_thread ? "context_per_thread"
                                                             : "strand_per_session";
}

sdmp::ServerOptions threaded_options(sdmp::ThreadingModel model, std::size_t threads) {
    auto options = server_options();
    options.threads = threads;
    options.threading = model;
    return options;
}

// "<client>:<call>" → client.
int client_of(const sdmp::Bytes& body) {
    const std::string text(sdmp::as_string_view(body));
    return std::stoi(text.substr(0, text.find(':')));
}

// Which server threads ran the handlers of each client's session.
struct ThreadLog {
    std::mutex mutex;
    std::map<int, std::set<std::thread::id>> by_client;

    void record(int client) {
        const std::lock_guard lock(mutex);
        by_client[client].insert(std::this_thread::get_id());
    }
};

// Spawns `count` coroutines made by `make(i)` on the current executor and waits for all of
// them; returns how many failed (threw).
template <typename Make>
awaitable<int> all_of(int count, Make make) {
    const auto executor = co_await asio::this_coro::executor;
    Signal done(executor, 1);
    int finished = 0;
    int failed = 0;
    for (int i = 0; i < count; ++i) {
        asio::co_spawn(executor, make(i), [&](std::exception_ptr error) {
            if (error)
                ++failed;
            if (++finished == count)
                notify(done);
        });
    }
    co_await wait(done);
    co_return failed;
}

}  // namespace

TEST_CASE("many clients with many calls in flight get their own answers in every threading model",
          "[framework][loopback][threading]") {
    constexpr int k_clients = 16;
    constexpr int k_in_flight = 8;
    constexpr int k_rounds = 25;
    const auto model = GENERATE(sdmp::ThreadingModel::strand_per_session,
                                sdmp::ThreadingModel::context_per_thread);
    const std::size_t threads = GENERATE(2u, 4u);
    CAPTURE(name_of(model), threads);

    ThreadLog log;
    sdmp::Router router;
    router.add("echo", [&log](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        log.record(client_of(body));
        // Suspend once, so calls of one session overlap on the server as well.
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        log.record(client_of(body));
        co_return sdmp::Reply::ok(std::move(body));
    });
    TestServer server(std::move(router), threaded_options(model, threads));
    asio::io_context io;
    std::atomic<int> wrong{0};
    const int failed =
        run(io, all_of(k_clients, [&](int client) -> awaitable<void> {
                const sdmp::Session session = co_await connect_client(server);
                for (int round = 0; round < k_rounds; ++round) {
                    const int bad = co_await all_of(
                        k_in_flight, [&, client, round](int call) -> awaitable<void> {
                            const std::string text = std::to_string(client) + ":" +
                                                     std::to_string(round * k_in_flight + call);
                            const sdmp::Reply reply =
                                co_await session.call("echo", sdmp::bytes_of(text));
                            if (!reply.is_ok() || reply.text() != text)
                                ++wrong;
                        });
                    wrong += bad;
                }
            }));
    CHECK(failed == 0);
    CHECK(wrong == 0);
    drain(io);
    server.stop();
    CHECK(server.error().empty());
    constexpr int k_calls = k_clients * k_in_flight * k_rounds;
    const auto metrics = server.server().metrics();
    CHECK(metrics.handshakes_completed == k_clients);
    CHECK(metrics.served.at("echo").count(sdmp::Status::ok) == k_calls);
    CHECK(server.server().session_count() == 0);

    const std::lock_guard lock(log.mutex);
    REQUIRE(log.by_client.size() == k_clients);
    if (model == sdmp::ThreadingModel::context_per_thread) {
        // Pinned: every session's handlers ran on one thread. The clients connected together
        // and stayed, so the least-loaded choice gave every context its share.
        std::set<std::thread::id> used;
        for (const auto& [client, ids] : log.by_client) {
            CAPTURE(client);
            CHECK(ids.size() == 1);
            used.insert(ids.begin(), ids.end());
        }
        CHECK(used.size() == threads);
    }
}

TEST_CASE("server-initiated calls and call-backs work in every threading model",
          "[framework][loopback][threading]") {
    constexpr int k_clients = 8;
    constexpr int k_calls = 20;
    const auto model = GENERATE(sdmp::ThreadingModel::strand_per_session,
                                sdmp::ThreadingModel::context_per_thread);
    CAPTURE(name_of(model));

    // The server's handler calls back the client that called it, on the same session.
    sdmp::Router router;
    router.add("relay", [](sdmp::Context& ctx, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        const sdmp::Session peer = ctx.session();
        auto inherit = sdmp::CallOptions{}.inherit(ctx);
        const sdmp::Reply back = co_await peer.call("mirror", std::move(body), inherit);
        if (!back.is_ok())
            throw sdmp::StatusError(back.status, "call-back failed");
        co_return sdmp::Reply::ok(std::string(back.text()) + "!");
    });
    std::mutex mutex;
    std::vector<sdmp::Session> server_sessions;
    asio::io_context io;
    Signal have_sessions(io.get_executor(), 1);
    auto serving = threaded_options(model, 2);
    serving.on_session = [&](const sdmp::Session& session) {
        const std::lock_guard lock(mutex);
        server_sessions.push_back(session);
        if (server_sessions.size() == k_clients)
            notify(have_sessions);
    };
    TestServer server(std::move(router), serving);

    // Each client answers "mirror" with its body and "whoami" with its number.
    std::atomic<int> wrong{0};
    auto client_options_for = [](int client) {
        auto options = client_options();
        auto client_router = std::make_shared<sdmp::Router>();
        client_router->add("mirror",
                           [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
                               co_return sdmp::Reply::ok(std::move(body));
                           });
        client_router->add("whoami",
                           [client](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
                               co_return sdmp::Reply::ok(std::to_string(client));
                           });
        options.router = std::move(client_router);
        return options;
    };
    run(io, [&]() -> awaitable<void> {
        std::vector<sdmp::Session> clients;
        for (int client = 0; client < k_clients; ++client) {
            const auto answering = client_options_for(client);
            clients.push_back(co_await connect_client(server, answering));
        }
        co_await wait(have_sessions);

        // Client → server → same client, many at once on every session.
        const int failed = co_await all_of(k_clients * k_calls, [&](int i) -> awaitable<void> {
            const std::string text = "call " + std::to_string(i);
            const sdmp::Reply reply =
                co_await clients[static_cast<std::size_t>(i % k_clients)].call(
                    "relay", sdmp::bytes_of(text));
            if (!reply.is_ok() || reply.text() != text + "!")
                ++wrong;
        });
        CHECK(failed == 0);

        // Server → client, started from this thread on sessions that live on the server's.
        std::vector<sdmp::Session> targets;
        {
            const std::lock_guard lock(mutex);
            targets = server_sessions;
        }
        std::set<std::string> answers;
        const int failed_calls = co_await all_of(k_clients, [&](int i) -> awaitable<void> {
            const sdmp::Bytes empty;
            const sdmp::Reply reply =
                co_await targets[static_cast<std::size_t>(i)].call("whoami", empty);
            if (!reply.is_ok())
                ++wrong;
            answers.insert(std::string(reply.text()));
        });
        CHECK(failed_calls == 0);
        CHECK(answers.size() == k_clients);
    }());
    CHECK(wrong == 0);
    {
        const std::lock_guard lock(mutex);
        server_sessions.clear();  // a handle must not outlive the server's io_contexts
    }
    drain(io);
    server.stop();
    CHECK(server.error().empty());
    CHECK(server.server().metrics().served.at("relay").count(sdmp::Status::ok) ==
          k_clients * k_calls);
}

TEST_CASE("graceful shutdown completes every call in flight on every thread in every model",
          "[framework][loopback][threading][shutdown]") {
    constexpr int k_clients = 8;
    constexpr int k_calls = 6;  // per client
    constexpr int k_total = k_clients * k_calls;
    const auto model = GENERATE(sdmp::ThreadingModel::strand_per_session,
                                sdmp::ThreadingModel::context_per_thread);
    CAPTURE(name_of(model));

    asio::io_context io;
    Signal started(io.get_executor(), k_total);
    Signal release(io.get_executor(), k_total);
    std::atomic<int> finished_handlers{0};
    sdmp::Router router;
    router.add("slow", [&](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        notify(started);
        co_await wait(release);
        // Still work to do on the server's thread after the release, so run() returning early
        // would show in the count below.
        for (int i = 0; i < 10; ++i)
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        ++finished_handlers;
        co_return sdmp::Reply::ok(std::move(body));
    });
    TestServer server(std::move(router), threaded_options(model, 2));
    int ok = 0;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        std::vector<sdmp::Session> clients;
        for (int client = 0; client < k_clients; ++client)
            clients.push_back(co_await connect_client(server));
        Signal all_done(executor, 1);
        int finished = 0;
        for (int i = 0; i < k_total; ++i) {
            asio::co_spawn(executor,
                           clients[static_cast<std::size_t>(i % k_clients)].call(
                               "slow", sdmp::bytes_of(std::to_string(i))),
                           [&, i](std::exception_ptr error, sdmp::Reply reply) {
                               if (!error && reply.is_ok() && reply.text() == std::to_string(i))
                                   ++ok;
                               if (++finished == k_total)
                                   notify(all_done);
                           });
        }
        for (int i = 0; i < k_total; ++i)
            co_await wait(started);

        server.server().shutdown();
        for (int i = 0; i < k_total; ++i)
            notify(release);
        co_await wait(all_done);
        // The server closes every session once its calls are done, cleanly.
        for (const auto& client : clients) {
            const std::error_code reason = co_await client.wait_closed();
            CHECK_FALSE(reason);
        }
    }());
    CHECK(ok == k_total);
    drain(io);
    server.stop();  // joins the thread that returned from run()
    CHECK(server.error().empty());
    CHECK(finished_handlers == k_total);
    CHECK(server.server().session_count() == 0);
    CHECK(server.server().metrics().served.at("slow").count(sdmp::Status::ok) == k_total);
}

TEST_CASE("a context_per_thread server that never runs, or runs idle, shuts down cleanly",
          "[framework][threading]") {
    const std::size_t threads = GENERATE(1u, 3u);
    CAPTURE(threads);
    auto options = threaded_options(sdmp::ThreadingModel::context_per_thread, threads);
    {
        // Listening but never run: the destructor must not touch a destroyed context.
        sdmp::Server server(keys().server, keys().server_trust, sdmp::Router{}, options);
        CHECK(server.listen("127.0.0.1:0").port != 0);
    }
    // Shut down before any connection: every context's thread still returns.
    sdmp::Server server(keys().server, keys().server_trust, sdmp::Router{}, options);
    server.listen("127.0.0.1:0");
    server.shutdown();
    server.run();
    CHECK(server.session_count() == 0);
    // Only run() can run several contexts; a single one may be run by the application.
    if (threads > 1) {
        CHECK_THROWS_AS(server.async_run(), std::logic_error);
    } else {
        CHECK_NOTHROW(server.async_run());
    }
}

TEST_CASE("a server on the application's executor gives each connection a strand in any model",
          "[framework][threading]") {
    constexpr int k_clients = 8;
    constexpr int k_in_flight = 8;
    constexpr int k_rounds = 10;
    // ServerOptions::threading does not apply there (server.hpp): both values must be safe on
    // an executor that several application threads run.
    const auto model = GENERATE(sdmp::ThreadingModel::strand_per_session,
                                sdmp::ThreadingModel::context_per_thread);
    CAPTURE(name_of(model));

    asio::io_context app(2);
    auto app_work = asio::make_work_guard(app);
    sdmp::Router router;
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        co_return sdmp::Reply::ok(std::move(body));
    });
    std::optional<sdmp::Server> server;
    REQUIRE_NOTHROW(server.emplace(app.get_executor(), keys().server, keys().server_trust,
                                   std::move(router), threaded_options(model, 2)));
    const std::string endpoint = server->listen("127.0.0.1:0").to_string();
    CHECK_THROWS_AS(server->run(), std::logic_error);  // no io_context of its own

    asio::io_context io;
    Signal finished(io.get_executor(), 1);
    std::atomic<bool> run_failed{false};
    asio::co_spawn(app, server->async_run(), [&](std::exception_ptr error) {
        if (error)
            run_failed = true;
        notify(finished);
    });
    std::vector<std::thread> app_threads;
    for (int i = 0; i < 2; ++i)
        app_threads.emplace_back([&app] { app.run(); });

    std::atomic<int> wrong{0};
    const int failed = run(
        io, all_of(k_clients, [&](int client) -> awaitable<void> {
            const sdmp::Session session =
                co_await sdmp::connect(co_await asio::this_coro::executor,
                                       sdmp::Target::address(endpoint, keys().server.fingerprint()),
                                       keys().client, keys().client_trust, client_options());
            for (int round = 0; round < k_rounds; ++round) {
                wrong +=
                    co_await all_of(k_in_flight, [&, client, round](int call) -> awaitable<void> {
                        const std::string text = std::to_string(client) + ":" +
                                                 std::to_string(round * k_in_flight + call);
                        const sdmp::Reply reply =
                            co_await session.call("echo", sdmp::bytes_of(text));
                        if (!reply.is_ok() || reply.text() != text)
                            ++wrong;
                    });
            }
        }));
    server->shutdown();
    run(io, wait(finished));  // async_run() has completed: every session closed
    app_work.reset();
    for (auto& thread : app_threads)
        thread.join();
    drain(io);
    CHECK(failed == 0);
    CHECK(wrong == 0);
    CHECK_FALSE(run_failed);
    CHECK(server->session_count() == 0);
    CHECK(server->metrics().served.at("echo").count(sdmp::Status::ok) ==
          k_clients * k_in_flight * k_rounds);
}
