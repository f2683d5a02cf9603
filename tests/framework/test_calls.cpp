// Loopback tests of calls on a session: concurrency, both directions, deadlines, cancellation,
// completion tokens, errors, limits, back-pressure, compression, idle timeout.
#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <numeric>
#include <random>
#include <type_traits>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
// GCC 12 warns (-Wmaybe-uninitialized) inside Asio's use_future machinery when it inlines it
// here; the variable is set on every path. Silenced for this header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/asio/use_future.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "framework_test_util.hpp"
#include "sdmp/json.hpp"

using namespace fwtest;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

struct AddRequest {
    int a = 0;
    int b = 0;
};
struct AddResponse {
    int sum = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AddRequest, a, b)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AddResponse, sum)

void add_echo(sdmp::Router& router) {
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::move(body));
    });
}

sdmp::Bytes pseudo_random(std::size_t size, std::uint32_t seed) {
    std::mt19937 random(seed);
    sdmp::Bytes out(size);
    for (auto& b : out)
        b = static_cast<std::uint8_t>(random());
    return out;
}

// Observes how a blocked handler ended.
struct Blocker {
    explicit Blocker(asio::io_context& io)
        : started(io.get_executor(), 64), ended(io.get_executor(), 64) {}
    Signal started;
    Signal ended;
    std::atomic<int> reason{-1};  // Context::cancel_reason() seen by the handler
    std::atomic<bool> had_deadline{false};

    void install(sdmp::Router& router) {
        router.add("block", [this](sdmp::Context& ctx, sdmp::Bytes) -> awaitable<sdmp::Reply> {
            had_deadline = ctx.deadline().has_value();
            notify(started);
            try {
                co_await wait_forever();
            } catch (const boost::system::system_error& e) {
                reason = static_cast<int>(ctx.cancel_reason());
                notify(ended);
                throw;
            }
            co_return sdmp::Reply::ok();
        });
    }
};

}  // namespace

TEST_CASE("1000 concurrent calls on one session complete out of order, each with its own answer",
          "[framework][loopback][calls]") {
    constexpr std::size_t k_calls = 1000;
    asio::io_context io;
    Signal arrived(io.get_executor(), k_calls);
    std::vector<std::unique_ptr<Signal>> gates;
    for (std::size_t i = 0; i < k_calls; ++i) {
        gates.push_back(std::make_unique<Signal>(io.get_executor(), 1));
    }
    sdmp::Router router;
    router.add("gate", [&](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        const std::size_t index = std::stoul(std::string(sdmp::as_string_view(body)));
        notify(arrived);
        co_await wait(*gates.at(index));
        co_return sdmp::Reply::ok("answer " + std::to_string(index));
    });
    TestServer server(std::move(router));

    std::vector<std::string> answers(k_calls);
    std::vector<std::size_t> completion_order;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const sdmp::Session session = co_await connect_client(server);
        Signal all_done(executor, 1);
        for (std::size_t i = 0; i < k_calls; ++i) {
            asio::co_spawn(executor,
                           session.call("gate", sdmp::bytes_of(std::to_string(i)),
                                        sdmp::CallOptions{}.with_timeout(std::chrono::seconds(60))),
                           [&, i](std::exception_ptr error, sdmp::Reply reply) {
                               answers[i] = error ? "exception" : std::string(reply.text());
                               completion_order.push_back(i);
                               if (completion_order.size() == k_calls)
                                   notify(all_done);
                           });
        }
        for (std::size_t i = 0; i < k_calls; ++i)
            co_await wait(arrived);
        std::vector<std::size_t> release(k_calls);
        std::iota(release.begin(), release.end(), std::size_t{0});
        std::shuffle(release.begin(), release.end(), std::mt19937(42));
        for (const std::size_t i : release)
            notify(*gates[i]);
        co_await wait(all_done);
    }());
    for (std::size_t i = 0; i < k_calls; ++i)
        CHECK(answers[i] == "answer " + std::to_string(i));
    CHECK_FALSE(std::is_sorted(completion_order.begin(), completion_order.end()));
    drain(io);
}

TEST_CASE("the server calls the client back and both sides send notifications",
          "[framework][loopback][calls]") {
    asio::io_context io;
    Signal client_noted(io.get_executor(), 1);
    Signal server_noted(io.get_executor(), 1);
    std::string client_note;
    std::string server_note;
    std::mutex mutex;

    sdmp::Router server_router;
    server_router.add("ask_back",
                      [](sdmp::Context& ctx, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
                          // A peer-initiated call on the same session, and a notification.
                          const sdmp::Session back = ctx.session();
                          sdmp::Reply reply = co_await back.call("client.echo", std::move(body));
                          co_await back.notify("client.note", sdmp::bytes_of("from server"));
                          co_return reply;
                      });
    server_router.on_notification("server.note",
                                  [&](sdmp::Context&, sdmp::Bytes body) -> awaitable<void> {
                                      {
                                          const std::lock_guard lock(mutex);
                                          server_note = std::string(sdmp::as_string_view(body));
                                      }
                                      notify(server_noted);
                                      co_return;
                                  });
    TestServer server(std::move(server_router));

    auto client_router = std::make_shared<sdmp::Router>();
    client_router->add(
        "client.echo", [](sdmp::Context& ctx, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
            CHECK(ctx.peer_fingerprint() == keys().server.fingerprint());
            co_return sdmp::Reply::ok("client:" + std::string(sdmp::as_string_view(body)));
        });
    client_router->on_notification("client.note",
                                   [&](sdmp::Context&, sdmp::Bytes body) -> awaitable<void> {
                                       client_note = std::string(sdmp::as_string_view(body));
                                       notify(client_noted);
                                       co_return;
                                   });
    run(io, [&]() -> awaitable<void> {
        auto options = client_options();
        options.router = client_router;
        const sdmp::Session session = co_await connect_client(server, options);
        const sdmp::Reply reply = co_await session.call("ask_back", sdmp::bytes_of("ping"));
        CHECK(reply.status == sdmp::Status::ok);
        CHECK(reply.text() == "client:ping");
        co_await wait(client_noted);
        CHECK(client_note == "from server");
        co_await session.notify("server.note", sdmp::bytes_of("from client"));
        co_await wait(server_noted);
    }());
    {
        const std::lock_guard lock(mutex);
        CHECK(server_note == "from client");
    }
    drain(io);
}

TEST_CASE("a deadline that passes reaches the handler as cancellation",
          "[framework][loopback][deadline]") {
    asio::io_context io;
    Blocker blocker(io);
    sdmp::Router router;
    blocker.install(router);
    TestServer server(std::move(router));
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        const sdmp::Reply reply = co_await session.call(
            "block", {}, sdmp::CallOptions{}.with_timeout(std::chrono::milliseconds(200)));
        CHECK(reply.status == sdmp::Status::deadline_exceeded);
        co_await wait(blocker.ended);
    }());
    CHECK(blocker.had_deadline);
    CHECK(blocker.reason == static_cast<int>(sdmp::Status::deadline_exceeded));
    drain(io);
    server.stop();
    CHECK(server.server().metrics().served.at("block").count(sdmp::Status::deadline_exceeded) == 1);
}

TEST_CASE("cancelling a call through its cancellation slot cancels the handler",
          "[framework][loopback][cancel]") {
    asio::io_context io;
    Blocker blocker(io);
    sdmp::Router router;
    blocker.install(router);
    TestServer server(std::move(router));
    std::optional<sdmp::Reply> result;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const sdmp::Session session = co_await connect_client(server);
        asio::cancellation_signal cancel;
        Signal done(executor, 1);
        asio::co_spawn(executor, session.call("block", {}),
                       asio::bind_cancellation_slot(
                           cancel.slot(), [&](std::exception_ptr error, sdmp::Reply reply) {
                               if (!error)
                                   result = std::move(reply);
                               notify(done);
                           }));
        co_await wait(blocker.started);
        cancel.emit(asio::cancellation_type::terminal);
        co_await wait(done);
        co_await wait(blocker.ended);
        // The session is still fine.
        const sdmp::Reply again = co_await session.call("missing", {});
        CHECK(again.status == sdmp::Status::unknown_method);
    }());
    REQUIRE(result.has_value());
    CHECK(result->status == sdmp::Status::cancelled);
    CHECK(blocker.reason == static_cast<int>(sdmp::Status::cancelled));
    drain(io);
}

TEST_CASE("a call raced with an awaitable operator is cancelled when the other side wins",
          "[framework][loopback][calls]") {
    // The pattern framework/README.md shows for cancelling a call from a coroutine.
    asio::io_context io;
    Blocker blocker(io);
    sdmp::Router router;
    blocker.install(router);
    TestServer server(std::move(router));
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const sdmp::Session session = co_await connect_client(server);
        Signal stop_requested(executor, 1);
        asio::co_spawn(
            executor,
            [&]() -> awaitable<void> {
                co_await wait(blocker.started);
                notify(stop_requested);
            },
            asio::detached);
        const auto raced = co_await (session.call("block", {}) ||
                                     stop_requested.async_receive(asio::use_awaitable));
        CHECK(raced.index() == 1);
        co_await wait(blocker.ended);
        CHECK(blocker.reason == static_cast<int>(sdmp::Status::cancelled));
    }());
    drain(io);
}

namespace {

// The remaining budget (ms) the client's "inner" handler sees when the server's "outer" handler
// calls it back through ctx.call: the client gives "outer" `outer_timeout`, and "outer" gives
// its nested call `nested_timeout` (none when zero). -2 when "inner" saw no deadline.
long long nested_budget_ms(std::chrono::milliseconds outer_timeout,
                           std::chrono::milliseconds nested_timeout) {
    std::atomic<long long> inner_budget_ms{-1};
    sdmp::Router router;
    router.add("outer",
               [nested_timeout](sdmp::Context& ctx, sdmp::Bytes) -> awaitable<sdmp::Reply> {
                   sdmp::CallOptions options;
                   if (nested_timeout.count() > 0)
                       options.with_timeout(nested_timeout);
                   co_return co_await ctx.call(ctx.session(), "inner", {}, std::move(options));
               });
    TestServer server(std::move(router));
    auto client_router = std::make_shared<sdmp::Router>();
    client_router->add("inner", [&](sdmp::Context& ctx, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        inner_budget_ms = ctx.remaining() ? ctx.remaining()->count() : -2;
        co_return sdmp::Reply::ok();
    });
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        auto options = client_options();
        options.router = client_router;
        const sdmp::Session session = co_await connect_client(server, options);
        const sdmp::Reply reply =
            co_await session.call("outer", {}, sdmp::CallOptions{}.with_timeout(outer_timeout));
        CHECK(reply.is_ok());
    }());
    drain(io);
    return inner_budget_ms;
}

}  // namespace

TEST_CASE("a handler's remaining budget travels with its own calls",
          "[framework][loopback][deadline]") {
    const long long budget = nested_budget_ms(std::chrono::seconds(20), {});
    CHECK(budget > 0);
    CHECK(budget <= 20000);
}

// Only the framework makes a Context (detail::ContextAccess): an application cannot make one
// that belongs to no received request.
static_assert(!std::is_default_constructible_v<sdmp::Context>);
static_assert(
    !std::is_constructible_v<sdmp::Context, std::shared_ptr<sdmp::detail::SessionImpl>,
                             std::shared_ptr<const sdmp::PeerInfo>, std::uint64_t, std::string,
                             sdmp::Metadata, std::optional<sdmp::Context::Clock::time_point>>);

TEST_CASE("inherited options carry the parent's deadline by value, past the handler's end",
          "[framework][loopback][deadline]") {
    asio::io_context io;
    // The client's "block" handler never answers on its own.
    Blocker blocker(io);
    auto client_router = std::make_shared<sdmp::Router>();
    blocker.install(*client_router);
    Signal inner_done(io.get_executor(), 1);
    std::atomic<int> inner_status{-1};
    std::atomic<bool> inner_error{false};
    std::atomic<bool> copied{false};
    sdmp::Router router;
    router.add("outer", [&](sdmp::Context& ctx, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        // The options hold a copy of the deadline, so the call may outlive this handler (and
        // its Context): it still ends when the outer caller's budget does.
        const auto inherited = sdmp::CallOptions{}.inherit(ctx);
        copied =
            inherited.parent_deadline.has_value() && inherited.parent_deadline == ctx.deadline();
        ctx.session().async_call("block", {}, inherited,
                                 [&](boost::system::error_code ec, sdmp::Reply reply) {
                                     inner_error = static_cast<bool>(ec);
                                     inner_status = static_cast<int>(reply.status);
                                     notify(inner_done);
                                 });
        co_return sdmp::Reply::ok();
    });
    TestServer server(std::move(router));
    run(io, [&]() -> awaitable<void> {
        auto options = client_options();
        options.router = client_router;
        const sdmp::Session session = co_await connect_client(server, options);
        const auto started = std::chrono::steady_clock::now();
        const sdmp::Reply reply = co_await session.call(
            "outer", {}, sdmp::CallOptions{}.with_timeout(std::chrono::milliseconds(300)));
        CHECK(reply.is_ok());
        co_await wait(inner_done);
        CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(250));
        co_await wait(blocker.ended);
    }());
    CHECK(copied);
    CHECK_FALSE(inner_error);
    CHECK(inner_status == static_cast<int>(sdmp::Status::deadline_exceeded));
    CHECK(blocker.had_deadline);
    CHECK(blocker.reason == static_cast<int>(sdmp::Status::deadline_exceeded));
    drain(io);
}

TEST_CASE("an inherited budget wins over a longer timeout of the nested call",
          "[framework][loopback][deadline]") {
    const long long budget = nested_budget_ms(std::chrono::seconds(2), std::chrono::seconds(20));
    CHECK(budget > 0);
    CHECK(budget <= 2000);
}

TEST_CASE("async_call completes a plain callback with an error code or a reply",
          "[framework][loopback][token]") {
    asio::io_context io;
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router));
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const sdmp::Session session = co_await connect_client(server);
        Signal done(executor, 1);
        boost::system::error_code error = asio::error::would_block;
        sdmp::Reply reply;
        session.async_call("echo", sdmp::bytes_of("callback"), {},
                           [&](boost::system::error_code ec, sdmp::Reply r) {
                               error = ec;
                               reply = std::move(r);
                               notify(done);
                           });
        co_await wait(done);
        CHECK_FALSE(error);
        CHECK(reply.text() == "callback");

        // A status is a reply, not an error.
        session.async_call("missing", {}, {}, [&](boost::system::error_code ec, sdmp::Reply r) {
            error = ec;
            reply = std::move(r);
            notify(done);
        });
        co_await wait(done);
        CHECK_FALSE(error);
        CHECK(reply.status == sdmp::Status::unknown_method);

        // A transport failure is the error code call() would throw, with an empty reply.
        session.abort();
        co_await session.wait_closed();
        session.async_call("echo", sdmp::bytes_of("late"), {},
                           [&](boost::system::error_code ec, sdmp::Reply r) {
                               error = ec;
                               reply = std::move(r);
                               notify(done);
                           });
        co_await wait(done);
        CHECK(error == std::error_code(sdmp::framework_errc::connection_closed));
        CHECK(reply.body.empty());
        bool thrown = false;
        try {
            co_await session.call("echo", sdmp::bytes_of("late"));
        } catch (const boost::system::system_error& e) {
            thrown = has_code(e, sdmp::framework_errc::connection_closed);
        }
        CHECK(thrown);
    }());
    CHECK_THROWS_AS(sdmp::Session{}.async_call("echo", {}, {}, asio::deferred), std::logic_error);
    drain(io);
}

TEST_CASE("async_call works with use_future and deferred", "[framework][loopback][token]") {
    asio::io_context io;
    std::atomic<int> echoed{0};
    sdmp::Router router;
    router.add("echo", [&](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        ++echoed;
        co_return sdmp::Reply::ok(std::move(body));
    });
    TestServer server(std::move(router));
    sdmp::Session session = run(io, connect_client(server));

    SECTION("use_future, waited for from another thread") {
        auto work = asio::make_work_guard(io);
        std::thread runner([&io] { io.run(); });
        std::future<sdmp::Reply> reply =
            session.async_call("echo", sdmp::bytes_of("future"), {}, asio::use_future);
        REQUIRE(reply.wait_for(k_safety_net) == std::future_status::ready);
        CHECK(reply.get().text() == "future");
        // Errors arrive as the future's exception, the type and code call() throws.
        session.abort();
        asio::co_spawn(io, session.wait_closed(), asio::use_future).wait();
        std::future<sdmp::Reply> late =
            session.async_call("echo", sdmp::bytes_of("late"), {}, asio::use_future);
        REQUIRE(late.wait_for(k_safety_net) == std::future_status::ready);
        // The runner lets go of the promise, and so of the exception it holds, after the
        // future is ready; joining it first orders that for ThreadSanitizer, which does not see
        // libstdc++'s own synchronization of exception_ptr and future.
        work.reset();
        io.stop();
        runner.join();
        bool thrown = false;
        try {
            late.get();
        } catch (const boost::system::system_error& e) {
            thrown = has_code(e, sdmp::framework_errc::connection_closed);
        }
        CHECK(thrown);
    }
    SECTION("deferred: nothing is sent until the operation is launched") {
        run(io, [&]() -> awaitable<void> {
            auto later = session.async_call("echo", sdmp::bytes_of("deferred"), {}, asio::deferred);
            sdmp::Reply echo = co_await session.call("echo", sdmp::bytes_of("first"));
            CHECK(echo.text() == "first");
            CHECK(echoed == 1);
            const sdmp::Reply reply = co_await std::move(later)(asio::use_awaitable);
            CHECK(reply.text() == "deferred");
            CHECK(echoed == 2);
        }());
    }
    session = {};
    drain(io);
}

TEST_CASE("async_call is cancelled through a bound cancellation slot",
          "[framework][loopback][token][cancel]") {
    asio::io_context io;
    Blocker blocker(io);
    sdmp::Router router;
    blocker.install(router);
    TestServer server(std::move(router));
    const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                               asio::cancellation_type::total);
    CAPTURE(static_cast<int>(type));
    boost::system::error_code error = asio::error::would_block;
    std::optional<sdmp::Reply> result;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const sdmp::Session session = co_await connect_client(server);
        asio::cancellation_signal cancel;
        Signal done(executor, 1);
        session.async_call("block", {}, {},
                           asio::bind_cancellation_slot(
                               cancel.slot(), [&](boost::system::error_code ec, sdmp::Reply reply) {
                                   error = ec;
                                   result = std::move(reply);
                                   notify(done);
                               }));
        co_await wait(blocker.started);
        cancel.emit(type);
        co_await wait(done);
        co_await wait(blocker.ended);
        // The session is still fine.
        const sdmp::Reply again = co_await session.call("missing", {});
        CHECK(again.status == sdmp::Status::unknown_method);
    }());
    CHECK_FALSE(error);
    REQUIRE(result.has_value());
    CHECK(result->status == sdmp::Status::cancelled);
    CHECK(blocker.reason == static_cast<int>(sdmp::Status::cancelled));
    drain(io);
}

TEST_CASE("handler errors become statuses and the session stays up",
          "[framework][loopback][errors]") {
    sdmp::Router router;
    add_echo(router);
    router.add("throws", [](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        throw std::runtime_error("boom");
        co_return sdmp::Reply::ok();
    });
    router.add("not_found", [](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        throw sdmp::StatusError(sdmp::Status::not_found, "nothing here");
        co_return sdmp::Reply::ok();
    });
    router.add("explicit", [](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::error(sdmp::Status::invalid_argument, "bad input");
    });
    router.add("metadata", [](sdmp::Context& ctx, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::string(ctx.find_metadata("who")), {{"seen", "yes"}});
    });
    TestServer server(std::move(router));
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        sdmp::Reply r = co_await session.call("throws", {});
        CHECK(r.status == sdmp::Status::application_error);
        CHECK(r.text() == "boom");
        r = co_await session.call("not_found", {});
        CHECK(r.status == sdmp::Status::not_found);
        CHECK(r.text() == "nothing here");
        r = co_await session.call("explicit", {});
        CHECK(r.status == sdmp::Status::invalid_argument);
        r = co_await session.call("no.such.method", {});
        CHECK(r.status == sdmp::Status::unknown_method);
        r = co_await session.call("metadata", {}, sdmp::CallOptions{}.with_metadata("who", "me"));
        CHECK(r.text() == "me");
        CHECK(r.find_metadata("seen") == "yes");
        r = co_await session.call("echo", sdmp::bytes_of("alive"));
        CHECK(r.text() == "alive");
        CHECK(session.is_open());
    }());
    drain(io);
    server.stop();
    const auto metrics = server.server().metrics();
    CHECK(metrics.served.at("throws").count(sdmp::Status::application_error) == 1);
    CHECK(metrics.served.at("<unknown>").count(sdmp::Status::unknown_method) == 1);
}

TEST_CASE("typed JSON handlers and typed calls", "[framework][loopback][json]") {
    sdmp::Router router;
    router.add<AddRequest, AddResponse>("add",
                                        [](sdmp::Context&, AddRequest r) -> awaitable<AddResponse> {
                                            co_return AddResponse{r.a + r.b};
                                        });
    TestServer server(std::move(router));
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        const AddResponse sum =
            co_await sdmp::call_as<AddResponse>(session, "add", AddRequest{2, 40});
        CHECK(sum.sum == 42);
        const sdmp::Reply bad = co_await session.call("add", sdmp::bytes_of("{not json"));
        CHECK(bad.status == sdmp::Status::invalid_argument);
        bool threw = false;
        try {
            co_await sdmp::call_as<AddResponse>(session, "missing", AddRequest{1, 1});
        } catch (const sdmp::StatusError& e) {
            threw = e.status() == sdmp::Status::unknown_method;
        }
        CHECK(threw);
    }());
    drain(io);
}

TEST_CASE("messages over the limit: too_large for requests and answers, an error at the sender",
          "[framework][loopback][limits]") {
    sdmp::Router router;
    add_echo(router);
    router.add("big_answer", [](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(sdmp::Bytes(100 * 1024, 1));
    });
    auto options = server_options();
    options.session.max_message_size = 64 * 1024;
    TestServer server(std::move(router), options);
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        sdmp::Reply r = co_await session.call("echo", sdmp::Bytes(100 * 1024, 7));
        CHECK(r.status == sdmp::Status::too_large);
        r = co_await session.call("big_answer", {});
        CHECK(r.status == sdmp::Status::too_large);
        r = co_await session.call("echo", sdmp::Bytes(1000, 7));
        CHECK(r.status == sdmp::Status::ok);

        auto small = client_options();
        small.session.max_message_size = 1024;
        const sdmp::Session limited = co_await connect_client(server, small);
        bool limit = false;
        try {
            co_await limited.call("echo", sdmp::Bytes(2048, 7));
        } catch (const boost::system::system_error& e) {
            limit = has_code(e, sdmp::errc::limit_exceeded);
        }
        CHECK(limit);
        r = co_await limited.call("echo", sdmp::Bytes(100, 7));
        CHECK(r.status == sdmp::Status::ok);
    }());
    drain(io);
}

TEST_CASE("requests over max_in_flight are answered with overloaded",
          "[framework][loopback][limits]") {
    asio::io_context io;
    Blocker blocker(io);
    sdmp::Router router;
    blocker.install(router);
    auto options = server_options();
    options.session.max_in_flight = 2;
    TestServer server(std::move(router), options);
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const sdmp::Session session = co_await connect_client(server);
        Signal done(executor, 2);
        for (int i = 0; i < 2; ++i) {
            asio::co_spawn(executor, session.call("block", {}),
                           [&](std::exception_ptr, sdmp::Reply) { notify(done); });
        }
        co_await wait(blocker.started);
        co_await wait(blocker.started);
        const sdmp::Reply third = co_await session.call("block", {});
        CHECK(third.status == sdmp::Status::overloaded);
        session.abort();  // cancels the two blocked handlers on the server
        co_await wait(done);
        co_await wait(done);
    }());
    drain(io);
}

TEST_CASE("a peer that never reads cannot grow the sender's queue past its bound",
          "[framework][loopback][backpressure]") {
    constexpr std::size_t k_bound = 256 * 1024;
    constexpr std::size_t k_message = 64 * 1024;
    constexpr int k_messages = 1024;  // 64 MiB: far more than any socket buffers hold
    std::mutex mutex;
    std::optional<sdmp::Session> pushed_to;
    asio::io_context io;
    Signal have_session(io.get_executor(), 1);
    auto options = server_options();
    options.session.send_queue_bytes = k_bound;
    options.session.keepalive_interval = std::chrono::milliseconds(0);
    options.on_session = [&](const sdmp::Session& session) {
        {
            const std::lock_guard lock(mutex);
            pushed_to = session;
        }
        notify(have_session);
    };
    TestServer server(sdmp::Router{}, options);

    // A raw peer: completes the handshake with a tiny receive window, then never reads.
    tcp::socket peer = raw_connect(io, server.endpoint(), 4096);
    raw_handshake(peer, keys().client, keys().client_trust, keys().server.fingerprint());

    int pushed = 0;
    sdmp::SessionStats stats;
    run(io, [&]() -> awaitable<void> {
        co_await wait(have_session);
        sdmp::Session session;
        {
            const std::lock_guard lock(mutex);
            session = *pushed_to;
        }
        const sdmp::Bytes body = pseudo_random(k_message, 7);
        auto push = [&]() -> awaitable<void> {
            for (; pushed < k_messages; ++pushed) {
                co_await session.notify("push", body, sdmp::CallOptions{}.uncompressed());
            }
        };
        // Observe for a while (not a timing assertion: the pusher can never finish, and the
        // bound must hold whenever we look).
        asio::steady_timer window(co_await asio::this_coro::executor);
        window.expires_after(std::chrono::seconds(1));
        const auto raced = co_await (push() || window.async_wait(asio::use_awaitable));
        CHECK(raced.index() == 1);
        stats = session.stats();
        session.abort();
    }());
    CHECK(pushed < k_messages);
    CHECK(stats.send_waits > 0);
    CHECK(stats.max_queued_bytes <= k_bound);
    CHECK(stats.queued_bytes <= k_bound);
    peer.close();
    {
        const std::lock_guard lock(mutex);
        pushed_to.reset();  // a handle must not outlive the server's io_context
    }
    drain(io);
}

TEST_CASE("a silent peer is dropped by the keepalive", "[framework][loopback][keepalive]") {
    auto options = server_options();
    options.session.keepalive_interval = std::chrono::milliseconds(100);
    TestServer server(sdmp::Router{}, options);
    asio::io_context io;
    tcp::socket peer = raw_connect(io, server.endpoint());
    raw_handshake(peer, keys().client, keys().client_trust, keys().server.fingerprint());
    // Read (the server's pings) but never answer: the server must give up and close.
    const ReadResult result = read_to_eof(peer);
    CHECK(result.end == asio::error::eof);
    CHECK_FALSE(result.bytes.empty());  // at least one ping record arrived
    server.stop();
    CHECK(server.server().metrics().sessions_open == 0);
}

TEST_CASE("an idle session is closed gracefully", "[framework][loopback][idle]") {
    auto options = server_options();
    options.session.idle_timeout = std::chrono::milliseconds(150);
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router), options);
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        const sdmp::Reply reply = co_await session.call("echo", sdmp::bytes_of("x"));
        CHECK(reply.is_ok());
        const std::error_code reason = co_await session.wait_closed();
        CHECK_FALSE(reason);
        CHECK_FALSE(session.is_open());
        bool closed = false;
        try {
            co_await session.call("echo", sdmp::bytes_of("y"));
        } catch (const boost::system::system_error& e) {
            closed = has_code(e, sdmp::framework_errc::connection_closed);
        }
        CHECK(closed);
    }());
    drain(io);
}

TEST_CASE("compression policy and no_compress shape the bytes on the wire",
          "[framework][loopback][compression]") {
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router));
    asio::io_context io;
    const std::string text(1 << 20, 'a');
    const sdmp::Bytes noise = pseudo_random(256 * 1024, 3);

    auto measure = [&](sdmp::CompressionPolicy policy, bool no_compress,
                       const sdmp::Bytes& body) -> std::uint64_t {
        auto metrics = std::make_shared<sdmp::Metrics>();
        run(io, [&]() -> awaitable<void> {
            auto options = client_options();
            options.metrics = metrics;
            options.session.compression = policy;
            const sdmp::Session session = co_await connect_client(server, options);
            const sdmp::Reply reply = co_await session.call(
                "echo", body,
                no_compress ? sdmp::CallOptions{}.uncompressed() : sdmp::CallOptions{});
            CHECK(reply.body == body);
        }());
        return metrics->snapshot().bytes_out;
    };
    const sdmp::Bytes text_body = sdmp::bytes_of(text);
    CHECK(measure(sdmp::CompressionPolicy::when_smaller, false, text_body) < text.size() / 10);
    CHECK(measure(sdmp::CompressionPolicy::always, false, text_body) < text.size() / 10);
    CHECK(measure(sdmp::CompressionPolicy::never, false, text_body) > text.size());
    CHECK(measure(sdmp::CompressionPolicy::when_smaller, true, text_body) > text.size());
    CHECK(measure(sdmp::CompressionPolicy::always, true, text_body) > text.size());
    CHECK(measure(sdmp::CompressionPolicy::when_smaller, false, noise) > noise.size());
    drain(io);
}

TEST_CASE("small calls are coalesced into few records, flushed every flush_after_messages",
          "[framework][loopback][coalesce]") {
    constexpr int k_calls = 200;
    const std::size_t flush_after = GENERATE(std::size_t{0}, std::size_t{16});
    CAPTURE(flush_after);
    sdmp::Router router;
    add_echo(router);
    TestServer server(std::move(router));
    asio::io_context io;
    auto metrics = std::make_shared<sdmp::Metrics>();
    int ok = 0;
    run(io, [&]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        auto options = client_options();
        options.metrics = metrics;
        options.session.flush_after_messages = flush_after;
        const sdmp::Session session = co_await connect_client(server, options);
        Signal done(executor, 1);
        int finished = 0;
        for (int i = 0; i < k_calls; ++i) {
            asio::co_spawn(executor, session.call("echo", sdmp::bytes_of("small")),
                           [&](std::exception_ptr error, sdmp::Reply reply) {
                               if (!error && reply.is_ok())
                                   ++ok;
                               if (++finished == k_calls)
                                   notify(done);
                           });
        }
        co_await wait(done);
    }());
    CHECK(ok == k_calls);
    const auto snapshot = metrics->snapshot();
    CHECK(snapshot.messages_out >= k_calls);
    // All calls were queued before the writer ran: far fewer records than messages.
    CHECK(snapshot.records_out < snapshot.messages_out / 4);
    if (flush_after != 0) {
        // ... but the writer did not wait for all of them: on average a record carries at
        // most flush_after.
        CHECK(snapshot.records_out >= snapshot.messages_out / flush_after);
    }
    drain(io);
}
