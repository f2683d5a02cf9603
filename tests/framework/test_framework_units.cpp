// Unit tests of the framework's Asio-free parts: endpoint strings, router registry, replies,
// metrics, logging.
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "sdmp/json.hpp"
#include "sdmp/sdmp.hpp"

// A named namespace: nlohmann's macro defines both directions, and each test uses one, which
// clang reports as an unused function in an anonymous namespace.
namespace units_json {

struct AddRequest {
    int a = 0;
    int b = 0;
};
struct AddResponse {
    int sum = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AddRequest, a, b)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AddResponse, sum)

}  // namespace units_json
using units_json::AddRequest;
using units_json::AddResponse;

TEST_CASE("endpoint strings parse host:port, a.b.c.d:port and [v6]:port", "[framework][endpoint]") {
    auto e = sdmp::EndpointSpec::parse("localhost:7000");
    CHECK(e.host == "localhost");
    CHECK(e.port == 7000);
    e = sdmp::EndpointSpec::parse("127.0.0.1:0");
    CHECK(e.host == "127.0.0.1");
    CHECK(e.port == 0);
    e = sdmp::EndpointSpec::parse("[::1]:65535");
    CHECK(e.host == "::1");
    CHECK(e.port == 65535);
    CHECK(e.to_string() == "[::1]:65535");
    CHECK(sdmp::EndpointSpec::parse(e.to_string()).host == "::1");
}

TEST_CASE("malformed endpoint strings are refused with a clear message", "[framework][endpoint]") {
    for (const char* bad : {"", "localhost", "::1:80", "[::1]80", "[::1", "host:", "host:65536",
                            "host:12a", ":80", "[]:80", "ho st:80", "[abc]:80"}) {
        std::string error;
        INFO(bad);
        CHECK_FALSE(sdmp::parse_endpoint(bad, &error).has_value());
        CHECK(error.find("invalid endpoint") != std::string::npos);
    }
    std::string error;
    CHECK_FALSE(sdmp::parse_endpoint("::1:80", &error));
    CHECK(error.find("brackets") != std::string::npos);
    CHECK_THROWS_AS(sdmp::EndpointSpec::parse("nope"), std::invalid_argument);
}

TEST_CASE("router registers raw, typed and notification handlers", "[framework][router]") {
    sdmp::Router router;
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> boost::asio::awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::move(body));
    });
    router.add<AddRequest, AddResponse>(
        "add", [](sdmp::Context&, AddRequest r) -> boost::asio::awaitable<AddResponse> {
            co_return AddResponse{r.a + r.b};
        });
    router.on_notification(
        "note", [](sdmp::Context&, sdmp::Bytes) -> boost::asio::awaitable<void> { co_return; });
    CHECK(router.find("echo") != nullptr);
    CHECK(router.find("add") != nullptr);
    CHECK(router.find("missing") == nullptr);
    CHECK(router.find("note") == nullptr);
    CHECK(router.find_notification("note") != nullptr);
    CHECK(router.methods() == std::vector<std::string>{"add", "echo"});

    auto again = [](sdmp::Context&, sdmp::Bytes) -> boost::asio::awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok();
    };
    CHECK_THROWS_AS(router.add("echo", again), std::invalid_argument);
    CHECK_THROWS_AS(router.add("", again), std::invalid_argument);
    CHECK_THROWS_AS(router.add(std::string(256, 'm'), again), std::invalid_argument);
}

namespace {
using RawResult = boost::asio::awaitable<sdmp::Reply>;
[[maybe_unused]] auto good = [](sdmp::Context&, sdmp::Bytes) -> RawResult {
    co_return sdmp::Reply::ok();
};
[[maybe_unused]] auto wrong_result =
    [](sdmp::Context&, sdmp::Bytes) -> boost::asio::awaitable<int> { co_return 1; };
[[maybe_unused]] auto wrong_args = [](sdmp::Bytes) -> RawResult { co_return sdmp::Reply::ok(); };
[[maybe_unused]] auto not_coroutine = [](sdmp::Context&, sdmp::Bytes) { return sdmp::Reply::ok(); };
}  // namespace

// The conditions behind Router::add's static_asserts (a wrong handler does not compile; the
// assert's message says what the signature must be).
static_assert(
    sdmp::detail::invocable_returning<RawResult, decltype(good), sdmp::Context&, sdmp::Bytes>());
static_assert(!sdmp::detail::invocable_returning<RawResult, decltype(wrong_result), sdmp::Context&,
                                                 sdmp::Bytes>());
static_assert(!sdmp::detail::invocable_returning<RawResult, decltype(wrong_args), sdmp::Context&,
                                                 sdmp::Bytes>());
static_assert(!sdmp::detail::invocable_returning<RawResult, decltype(not_coroutine), sdmp::Context&,
                                                 sdmp::Bytes>());

TEST_CASE("replies carry status, body and metadata", "[framework][reply]") {
    const auto ok = sdmp::Reply::ok("hello", {{"k", "v"}});
    CHECK(ok.is_ok());
    CHECK(ok.text() == "hello");
    CHECK(ok.find_metadata("k") == "v");
    CHECK(ok.find_metadata("x").empty());
    const auto error = sdmp::Reply::error(sdmp::Status::not_found, "no such thing");
    CHECK_FALSE(error.is_ok());
    CHECK(error.status == sdmp::Status::not_found);
    CHECK(error.text() == "no such thing");
}

TEST_CASE("JSON codec round-trips and rejects bad input", "[framework][codec]") {
    const sdmp::Bytes bytes = sdmp::JsonCodec::encode(AddRequest{2, 3});
    CHECK(sdmp::as_string_view(bytes) == R"({"a":2,"b":3})");
    const auto back = sdmp::JsonCodec::decode<AddRequest>(bytes);
    CHECK(back.a == 2);
    CHECK(back.b == 3);
    CHECK_THROWS(sdmp::JsonCodec::decode<AddRequest>(sdmp::bytes_of("{not json")));
    CHECK_THROWS(sdmp::JsonCodec::decode<AddRequest>(sdmp::bytes_of(R"({"a":"x"})")));
}

TEST_CASE("metrics count per method and status and never wrap", "[framework][metrics]") {
    sdmp::Metrics metrics;
    metrics.request_served("m", sdmp::Status::ok, std::chrono::microseconds(70));
    metrics.request_served("m", sdmp::Status::ok, std::chrono::milliseconds(3));
    metrics.request_served("m", sdmp::Status::too_large, std::chrono::microseconds(10));
    metrics.handshake_refused("bad_signature");
    metrics.handshake_refused("bad_signature");
    metrics.bytes_sent(100, 1);
    metrics.session_opened();
    const auto s = metrics.snapshot();
    REQUIRE(s.served.count("m") == 1);
    const auto& m = s.served.at("m");
    CHECK(m.total() == 3);
    CHECK(m.count(sdmp::Status::ok) == 2);
    CHECK(m.count(sdmp::Status::too_large) == 1);
    CHECK(m.latency.count == 3);
    CHECK(m.latency.max_us == 3000);
    CHECK(m.latency.quantile_upper_bound_us(0.5) == 100);
    CHECK(m.latency.quantile_upper_bound_us(1.0) == 5000);
    CHECK(s.handshakes_refused.at("bad_signature") == 2);
    CHECK(s.bytes_out == 100);
    CHECK(s.records_out == 1);
    CHECK(s.sessions_open == 1);
    CHECK(s.sessions_total == 1);

    sdmp::LatencyHistogram h;
    h.sum_us = std::numeric_limits<std::uint64_t>::max() - 1;
    h.add(std::chrono::seconds(1));
    CHECK(h.sum_us == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("logger filters by level and writes through its sink", "[framework][log]") {
    struct Capture : sdmp::LogSink {
        std::vector<std::string> lines;
        void write(sdmp::LogLevel, std::string_view message) override {
            lines.emplace_back(message);
        }
    };
    auto sink = std::make_shared<Capture>();
    const sdmp::Logger logger(sink, sdmp::LogLevel::info);
    logger.debug("hidden {}", 1);
    logger.info("shown {}", 2);
    logger.error("also {}", "shown");
    CHECK(sink->lines == std::vector<std::string>{"shown 2", "also shown"});
    CHECK_FALSE(sdmp::Logger::null().enabled(sdmp::LogLevel::error));
}

TEST_CASE("framework errors have their own category and describe every code",
          "[framework][error]") {
    const std::error_code lost = sdmp::framework_errc::connection_lost;
    CHECK(std::string(lost.category().name()) == "sdmp.framework");
    CHECK(lost.message().find("end message") != std::string::npos);
    CHECK(std::error_code(sdmp::framework_errc::queue_full).message() == "queue full");
    CHECK(std::error_code(static_cast<sdmp::framework_errc>(999)).message().find("999") !=
          std::string::npos);
    // Not the lower layers' codes with the same value.
    CHECK(lost != std::error_code(static_cast<sdmp::errc>(45)));
    CHECK(lost == sdmp::framework_errc::connection_lost);
}

TEST_CASE("metrics recorded on many threads add up in one snapshot", "[framework][metrics]") {
    sdmp::Metrics metrics;
    constexpr int k_threads = 20;  // more threads than shards: some share one
    constexpr int k_each = 500;
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&metrics, t] {
            for (int i = 0; i < k_each; ++i) {
                metrics.request_served("shared", sdmp::Status::ok, std::chrono::microseconds(t));
                metrics.call_completed(t % 2 == 0 ? "even" : "odd", sdmp::Status::cancelled,
                                       std::chrono::milliseconds(2));
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    const auto s = metrics.snapshot();
    const auto& shared = s.served.at("shared");
    CHECK(shared.count(sdmp::Status::ok) == k_threads * k_each);
    CHECK(shared.latency.count == k_threads * k_each);
    CHECK(shared.latency.max_us == k_threads - 1);
    CHECK(s.called.at("even").count(sdmp::Status::cancelled) == k_threads / 2 * k_each);
    CHECK(s.called.at("odd").latency.count == k_threads / 2 * k_each);
    CHECK(s.called.at("odd").latency.sum_us == k_threads / 2 * k_each * 2000);
}
