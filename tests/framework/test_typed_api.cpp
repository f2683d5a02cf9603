// Loopback tests of the typed API: sdmp::call_as, sdmp::notify_as, Router::on_notification<T>
// and Context::call_as, with request types that own heap memory, so that ASan sees any object
// destroyed twice. The request is written the way users write it, braced inside the co_await
// (framework/README.md, "Compilers": GCC 12 mishandles only aggregates there).
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "framework_test_util.hpp"
#include "sdmp/json.hpp"

using namespace fwtest;

namespace {

// A user-declared constructor keeps `Item{...}` out of aggregate initialization, which is
// what GCC 12 gets wrong inside a co_await expression.
struct Item {
    Item() = default;
    Item(std::string name_, std::vector<int> values_)
        : name(std::move(name_)), values(std::move(values_)) {}
    std::string name;
    std::vector<int> values;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Item, name, values)

// An aggregate: safe on every compiler as a named object, or braced in a statement of its own.
struct Batch {
    std::string label;
    std::vector<std::string> entries;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Batch, label, entries)

struct Summary {
    std::size_t characters = 0;
    long long total = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Summary, characters, total)

// Counts encodings, to show that call_as encodes before it returns.
std::atomic<int> g_counted_encodings{0};
struct Counted {
    int value = 0;
};
void to_json(nlohmann::json& json, const Counted& counted) {
    ++g_counted_encodings;
    json = counted.value;
}
void from_json(const nlohmann::json& json, Counted& counted) {
    counted.value = json.get<int>();
}

Summary summarize(const Item& item) {
    Summary s{item.name.size(), 0};
    for (const int v : item.values)
        s.total += v;
    return s;
}

void add_summarizers(sdmp::Router& router) {
    router.add<Item, Summary>("summarize", [](sdmp::Context&, Item item) -> awaitable<Summary> {
        co_return summarize(item);
    });
    router.add<Batch, Summary>("count", [](sdmp::Context&, Batch batch) -> awaitable<Summary> {
        Summary s{batch.label.size(), 0};
        for (const std::string& entry : batch.entries)
            s.total += static_cast<long long>(entry.size());
        co_return s;
    });
    router.add<Counted, Counted>("double", [](sdmp::Context&, Counted c) -> awaitable<Counted> {
        co_return Counted{c.value * 2};
    });
}

}  // namespace

TEST_CASE("call_as with a braced request holding heap memory, in a loop",
          "[framework][loopback][json][typed]") {
    sdmp::Router router;
    add_summarizers(router);
    TestServer server(std::move(router));
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        for (int i = 0; i < 200; ++i) {
            // GCC 12 does not compile std::vector<int>{...} (a std::initializer_list) inside a
            // co_await expression at all ("array used as initializer"), hence the counted form.
            const Summary s = co_await sdmp::call_as<Summary>(
                session, "summarize", Item{std::string(100, 'x'), std::vector<int>(64, i)});
            CHECK(s.characters == 100);
            CHECK(s.total == 64LL * i);
        }
        for (int i = 0; i < 50; ++i) {
            const Summary s = co_await sdmp::call_as<Summary>(
                session, "summarize", Item{std::string(1000, 'y'), std::vector<int>(1000, 1)},
                sdmp::CallOptions{}.with_timeout(10s).with_metadata("who", std::string(64, 'm')));
            CHECK(s.total == 1000);
        }
    }());
    drain(io);
}

TEST_CASE("call_as with an aggregate request: named, or made in a statement of its own",
          "[framework][loopback][json][typed]") {
    sdmp::Router router;
    add_summarizers(router);
    TestServer server(std::move(router));
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        for (int i = 0; i < 100; ++i) {
            const Batch batch{std::string(100, 'b'),
                              std::vector<std::string>(8, std::string(50, 'e'))};
            const Summary named = co_await sdmp::call_as<Summary>(session, "count", batch);
            CHECK(named.characters == 100);
            CHECK(named.total == 400);

            // The awaitable holds only the encoded body, so the temporary may end with the
            // statement that made it.
            auto call = sdmp::call_as<Summary>(
                session, "count", Batch{std::string(30, 'c'), std::vector<std::string>(3, "xyz")});
            const Summary split = co_await std::move(call);
            CHECK(split.characters == 30);
            CHECK(split.total == 9);
        }
#if defined(__clang__) || !defined(__GNUC__) || __GNUC__ >= 13
        // The pattern GCC 12 destroys twice (in the caller's frame, whatever the callee is):
        // only compiled where it is safe.
        for (int i = 0; i < 100; ++i) {
            const Summary inline_braced = co_await sdmp::call_as<Summary>(
                session, "count",
                Batch{std::string(100, 'b'), std::vector<std::string>(4, std::string(50, 'e'))});
            CHECK(inline_braced.total == 200);
        }
#endif
    }());
    drain(io);
}

TEST_CASE("call_as encodes the request before it returns", "[framework][loopback][json][typed]") {
    sdmp::Router router;
    add_summarizers(router);
    TestServer server(std::move(router));
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        const int before = g_counted_encodings.load();
        auto call = sdmp::call_as<Counted>(session, "double", Counted{21});
        CHECK(g_counted_encodings.load() == before + 1);
        const Counted doubled = co_await std::move(call);
        CHECK(doubled.value == 42);
        // Made and dropped without being awaited: nothing is sent, nothing leaks.
        { auto unused = sdmp::call_as<Counted>(session, "double", Counted{1}); }
        CHECK(session.is_open());
    }());
    drain(io);
}

TEST_CASE("typed calls throw StatusError where raw calls return the status",
          "[framework][loopback][json][typed]") {
    sdmp::Router router;
    add_summarizers(router);
    router.add("not_json", [](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok("{not json");
    });
    TestServer server(std::move(router));
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        const Item item{"n", {1, 2}};

        const sdmp::Reply raw = co_await session.call("missing", sdmp::Bytes{});
        CHECK(raw.status == sdmp::Status::unknown_method);
        sdmp::Status thrown = sdmp::Status::ok;
        std::string typed_message;
        try {
            co_await sdmp::call_as<Summary>(session, "missing", item);
        } catch (const sdmp::StatusError& e) {
            thrown = e.status();
            typed_message = e.what();
        }
        CHECK(thrown == sdmp::Status::unknown_method);
        // ensure_ok() reports the raw answer as the typed call did.
        try {
            raw.ensure_ok();
            FAIL("ensure_ok() did not throw for unknown_method");
        } catch (const sdmp::StatusError& e) {
            CHECK(e.status() == sdmp::Status::unknown_method);
            CHECK(std::string(e.what()) == typed_message);
        }
        CHECK_NOTHROW(sdmp::Reply::ok("fine").ensure_ok());

        thrown = sdmp::Status::ok;
        try {
            co_await sdmp::call_as<Summary>(session, "not_json", item);
        } catch (const sdmp::StatusError& e) {
            thrown = e.status();
        }
        CHECK(thrown == sdmp::Status::invalid_argument);
        CHECK(session.is_open());
    }());
    drain(io);
}

TEST_CASE(
    "notify_as reaches a typed notification handler and a body that does not decode is dropped",
    "[framework][loopback][json][typed]") {
    asio::io_context io;
    Signal received(io.get_executor(), 64);
    std::mutex mutex;
    std::vector<Summary> seen;
    std::atomic<int> handler_runs{0};

    sdmp::Router router;
    router.on_notification<Item>("item", [&](sdmp::Context& ctx, Item item) -> awaitable<void> {
        ++handler_runs;
        {
            const std::lock_guard lock(mutex);
            if (ctx.is_notification())
                seen.push_back(summarize(item));
        }
        notify(received);
        co_return;
    });
    TestServer server(std::move(router));
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        co_await session.notify("item", sdmp::bytes_of("{not json"));
        for (int i = 0; i < 20; ++i) {
            co_await sdmp::notify_as(session, "item",
                                     Item{std::string(100, 'n'), std::vector<int>(10, i)});
        }
        co_await sdmp::notify_as<Item>(session, "item", Item{"last", std::vector<int>(1, 7)},
                                       sdmp::CallOptions{}.with_metadata("k", "v"));
        for (int i = 0; i < 21; ++i)
            co_await wait(received);
    }());
    drain(io);
    server.stop();
    CHECK(handler_runs.load() == 21);
    const std::lock_guard lock(mutex);
    REQUIRE(seen.size() == 21);
    long long hundreds = 0;
    long long lasts = 0;
    for (const Summary& s : seen) {
        hundreds += s.characters == 100 ? 1 : 0;
        lasts += s.characters == 4 && s.total == 7 ? 1 : 0;
    }
    CHECK(hundreds == 20);
    CHECK(lasts == 1);
}

TEST_CASE("Context::call_as calls on behalf of the request and inherits its deadline",
          "[framework][loopback][json][typed][deadline]") {
    // The server relays a typed call back to the client through its context; the client's
    // handler reports the deadline it was given.
    sdmp::Router server_router;
    server_router.add<Item, Summary>(
        "relay", [](sdmp::Context& ctx, Item item) -> awaitable<Summary> {
            co_return co_await ctx.call_as<Summary>(
                ctx.session(), "client.summarize",
                Item{item.name + std::string(10, '+'), std::move(item.values)});
        });
    TestServer server(std::move(server_router));

    std::atomic<long long> seen_remaining_ms{-1};
    auto client_router = std::make_shared<sdmp::Router>();
    client_router->add<Item, Summary>("client.summarize",
                                      [&](sdmp::Context& ctx, Item item) -> awaitable<Summary> {
                                          const auto remaining = ctx.remaining();
                                          seen_remaining_ms = remaining ? remaining->count() : -2;
                                          co_return summarize(item);
                                      });
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        auto options = client_options();
        options.router = client_router;
        const sdmp::Session session = co_await connect_client(server, options);
        const Item request{std::string(20, 'r'), std::vector<int>(5, 3)};
        const Summary s = co_await sdmp::call_as<Summary>(session, "relay", request,
                                                          sdmp::CallOptions{}.with_timeout(20s));
        CHECK(s.characters == 30);
        CHECK(s.total == 15);
        // Inherited: bounded by the 20 s of the first call, not unbounded (-2).
        CHECK(seen_remaining_ms.load() > 0);
        CHECK(seen_remaining_ms.load() <= 20000);

        seen_remaining_ms = -1;
        const Summary unbounded = co_await sdmp::call_as<Summary>(session, "relay", request);
        CHECK(unbounded.total == 15);
        CHECK(seen_remaining_ms.load() == -2);
    }());
    drain(io);
}
