#include "scenarios.hpp"

#include "framed.hpp"

#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>

namespace sdmp::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Incompressible pseudo-random bytes, so that sdmp's DEFLATE step gains nothing a real payload
// of encrypted or media data would not give it either.
Bytes random_bytes(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    Bytes out(n);
    for (std::size_t i = 0; i < n; i += 8) {
        const std::uint64_t word = rng();
        for (std::size_t j = 0; j < 8 && i + j < n; ++j) {
            out[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
        }
    }
    return out;
}

// Runs fn(0) .. fn(n-1) concurrently on the current executor and completes when all have; the
// first exception is rethrown after every task has finished.
// `fn` is taken by value so that it lives in this coroutine's frame for as long as the tasks it
// started (each task's frame refers to the closure).
asio::awaitable<void> parallel(std::size_t n,
                               std::function<asio::awaitable<void>(std::size_t)> fn) {
    if (n == 0) {
        co_return;
    }
    auto ex = co_await asio::this_coro::executor;
    framed::Event all_done(ex);
    std::size_t left = n;
    std::exception_ptr first_failure;
    for (std::size_t i = 0; i < n; ++i) {
        asio::co_spawn(ex, fn(i), [&](std::exception_ptr failure) {
            if (failure && !first_failure) {
                first_failure = failure;
            }
            if (--left == 0) {
                all_done.set();
            }
        });
    }
    co_await all_done.wait();
    if (first_failure) {
        std::rethrow_exception(first_failure);
    }
}

// Starts a server of `system` on the server thread, runs body(endpoint) and stops the server
// (also when body throws).
template <typename Body>
auto with_server(Runtime& rt, System& system, ServerMode mode, Body body) {
    std::unique_ptr<Server> server =
        rt.on_server([&]() -> asio::awaitable<std::unique_ptr<Server>> {
            co_return co_await system.start_server(rt.server_executor(), mode);
        });
    auto stop = [&] {
        rt.on_server([&]() -> asio::awaitable<void> {
            co_await server->stop();
            server.reset();
        });
    };
    try {
        auto result = body(server->endpoint());
        stop();
        return result;
    } catch (...) {
        stop();
        throw;
    }
}

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

}  // namespace

LoadResult run_load(Runtime& rt, System& system, const LoadSpec& spec, Timing timing) {
    const Bytes body = random_bytes(spec.body_size, 0x5eed0000 + spec.body_size);
    const std::size_t expected = spec.mode == ServerMode::echo ? spec.body_size : 0;
    return with_server(rt, system, spec.mode, [&](asio::ip::tcp::endpoint server) {
        return rt.on_client([&]() -> asio::awaitable<LoadResult> {
            auto ex = co_await asio::this_coro::executor;
            const std::unique_ptr<Connection> conn = co_await system.connect(ex, server);
            const Clock::time_point count_from = Clock::now() + timing.warmup;
            const Clock::time_point stop_at = count_from + timing.duration;
            std::uint64_t completed = 0;
            LoadResult result;
            co_await parallel(spec.in_flight, [&](std::size_t) -> asio::awaitable<void> {
                Bytes response;
                response.reserve(expected);
                for (;;) {
                    const Clock::time_point sent = Clock::now();
                    if (sent >= stop_at) {
                        break;
                    }
                    co_await conn->request(body, response);
                    const Clock::time_point received = Clock::now();
                    if (response.size() != expected) {
                        throw std::runtime_error(
                            fmt::format("{}: response of {} bytes, expected {}", system.name(),
                                        response.size(), expected));
                    }
                    if (received >= count_from && received < stop_at) {
                        ++completed;
                        if (spec.record_latency) {
                            result.latency.record(static_cast<std::uint64_t>(
                                std::chrono::duration_cast<std::chrono::nanoseconds>(received -
                                                                                     sent)
                                    .count()));
                        }
                    }
                }
            });
            co_await conn->close();
            const double window = seconds(timing.duration);
            result.requests_per_s = static_cast<double>(completed) / window;
            result.request_bytes_per_s =
                static_cast<double>(completed) * static_cast<double>(spec.body_size) / window;
            co_return result;
        });
    });
}

double run_handshake_rate(Runtime& rt, System& system, std::size_t connectors, Timing timing) {
    return with_server(
        rt, system, ServerMode::close_on_accept, [&](asio::ip::tcp::endpoint server) {
            return rt.on_client([&]() -> asio::awaitable<double> {
                auto ex = co_await asio::this_coro::executor;
                const Clock::time_point count_from = Clock::now() + timing.warmup;
                const Clock::time_point stop_at = count_from + timing.duration;
                std::uint64_t completed = 0;
                co_await parallel(connectors, [&](std::size_t) -> asio::awaitable<void> {
                    while (Clock::now() < stop_at) {
                        const std::unique_ptr<Connection> conn =
                            co_await system.connect(ex, server);
                        // The server closes once its side of the handshake is complete, so this
                        // completing means the session was established on both ends.
                        co_await conn->wait_closed();
                        const Clock::time_point done = Clock::now();
                        if (done >= count_from && done < stop_at) {
                            ++completed;
                        }
                    }
                });
                co_return static_cast<double>(completed) / seconds(timing.duration);
            });
        });
}

LoadResult run_fanin(Runtime& rt, System& system, std::size_t connections,
                     std::size_t per_connection, std::size_t connectors, Timing timing) {
    constexpr std::size_t k_body = 64;
    const Bytes body = random_bytes(k_body, 0xfa41);
    return with_server(rt, system, ServerMode::echo, [&](asio::ip::tcp::endpoint server) {
        return rt.on_client([&]() -> asio::awaitable<LoadResult> {
            auto ex = co_await asio::this_coro::executor;
            std::vector<std::unique_ptr<Connection>> conns(connections);
            co_await parallel(std::min(connectors, connections),
                              [&](std::size_t worker) -> asio::awaitable<void> {
                                  for (std::size_t i = worker; i < connections; i += connectors)
                                      conns[i] = co_await system.connect(ex, server);
                              });
            const Clock::time_point count_from = Clock::now() + timing.warmup;
            const Clock::time_point stop_at = count_from + timing.duration;
            std::uint64_t completed = 0;
            co_await parallel(
                connections * per_connection, [&](std::size_t requester) -> asio::awaitable<void> {
                    Connection& conn = *conns[requester / per_connection];
                    Bytes response;
                    while (Clock::now() < stop_at) {
                        co_await conn.request(body, response);
                        const Clock::time_point received = Clock::now();
                        if (response.size() != k_body)
                            throw std::runtime_error(fmt::format("{}: fan-in answer of {} bytes",
                                                                 system.name(), response.size()));
                        if (received >= count_from && received < stop_at)
                            ++completed;
                    }
                });
            for (auto& c : conns)
                co_await c->close();
            LoadResult result;
            result.requests_per_s = static_cast<double>(completed) / seconds(timing.duration);
            result.request_bytes_per_s = result.requests_per_s * k_body;
            co_return result;
        });
    });
}

StormResult run_connect_storm(Runtime& rt, System& system, std::size_t connections) {
    constexpr std::size_t k_max_attempts = 20;
    const Bytes ping = random_bytes(64, 0x5707);
    return with_server(rt, system, ServerMode::echo, [&](asio::ip::tcp::endpoint server) {
        return rt.on_client([&]() -> asio::awaitable<StormResult> {
            auto ex = co_await asio::this_coro::executor;
            std::vector<std::unique_ptr<Connection>> conns(connections);
            std::size_t retries = 0;
            const Clock::time_point start = Clock::now();
            co_await parallel(connections, [&](std::size_t i) -> asio::awaitable<void> {
                // A connection the server turns away is tried again at once, as a client that
                // must get through would; how many were is the second figure.
                for (std::size_t attempt = 1; !conns[i]; ++attempt) {
                    try {
                        conns[i] = co_await system.connect(ex, server);
                    } catch (const std::exception& e) {
                        if (attempt == k_max_attempts)
                            throw std::runtime_error(
                                fmt::format("{}: connect-storm connection refused {} times: {}",
                                            system.name(), attempt, e.what()));
                        ++retries;
                    }
                }
                Bytes response;
                co_await conns[i]->request(ping, response);
                if (response != ping)
                    throw std::runtime_error(
                        fmt::format("{}: connect-storm echo differs", system.name()));
            });
            StormResult result;
            result.elapsed_ms = seconds(Clock::now() - start) * 1000.0;
            result.retries = static_cast<double>(retries);
            for (auto& c : conns)
                co_await c->close();
            co_return result;
        });
    });
}

long resident_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));  // "VmRSS:   12345 kB"
        }
    }
    throw std::runtime_error("VmRSS not found in /proc/self/status");
}

double run_idle_sessions(Runtime& rt, System& system, std::size_t sessions,
                         std::size_t connectors) {
    const Bytes ping = random_bytes(64, 0x1d1e);
    return with_server(rt, system, ServerMode::echo, [&](asio::ip::tcp::endpoint server) {
        std::vector<std::unique_ptr<Connection>> conns(sessions);
        // Return freed heap pages of earlier trials to the kernel first, so that new sessions
        // cannot hide in memory that is already resident, and again after establishing, so that
        // only memory the live sessions hold is counted.
        malloc_trim(0);
        const long before = resident_kib();
        rt.on_client([&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            co_await parallel(connectors, [&](std::size_t worker) -> asio::awaitable<void> {
                Bytes response;
                for (std::size_t i = worker; i < sessions; i += connectors) {
                    conns[i] = co_await system.connect(ex, server);
                    // One round trip proves the server end is established too.
                    co_await conns[i]->request(ping, response);
                    if (response != ping) {
                        throw std::runtime_error(
                            fmt::format("{}: idle-session ping echoed wrongly", system.name()));
                    }
                }
            });
        });
        malloc_trim(0);
        const long after = resident_kib();
        rt.on_client([&]() -> asio::awaitable<void> {
            for (auto& c : conns) {
                co_await c->close();
                c.reset();
            }
        });
        return static_cast<double>(after - before) / (2.0 * static_cast<double>(sessions));
    });
}

void check_system(Runtime& rt, System& system) {
    const auto fail = [&](const std::string& what) {
        throw std::runtime_error(fmt::format("{}: self-check failed: {}", system.name(), what));
    };
    // Echo: sizes around the framing's internal thresholds, all in flight at once.
    const std::vector<std::size_t> sizes = {
        0, 1, 64, 4096, 16 * 1024, 16385, 65524, 100000, std::size_t{1} << 20};
    with_server(rt, system, ServerMode::echo, [&](asio::ip::tcp::endpoint server) {
        rt.on_client([&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            const auto conn = co_await system.connect(ex, server);
            co_await parallel(sizes.size(), [&](std::size_t i) -> asio::awaitable<void> {
                const Bytes body = random_bytes(sizes[i], i);
                Bytes response;
                for (int repeat = 0; repeat < 3; ++repeat) {
                    co_await conn->request(body, response);
                    if (response != body) {
                        fail(fmt::format("echo of {} bytes differs", sizes[i]));
                    }
                }
            });
            co_await conn->close();
        });
        // Closing with large requests in flight completes every one of them (answered or
        // failed) and leaves nothing behind: the tasks start in order, so four requests are
        // queued before the fifth task closes.
        rt.on_client([&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            const auto conn = co_await system.connect(ex, server);
            const Bytes big = random_bytes(std::size_t{1} << 20, 99);
            co_await parallel(5, [&](std::size_t i) -> asio::awaitable<void> {
                if (i == 4) {
                    co_await conn->close();
                    co_return;
                }
                Bytes response;
                try {
                    co_await conn->request(big, response);
                } catch (const boost::system::system_error&) {
                    co_return;  // failed because of the close: expected
                }
                if (response != big) {
                    fail("echo completed during close differs");
                }
            });
        });
        return 0;
    });
    with_server(rt, system, ServerMode::ack, [&](asio::ip::tcp::endpoint server) {
        rt.on_client([&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            const auto conn = co_await system.connect(ex, server);
            const Bytes body = random_bytes(std::size_t{1} << 20, 7);
            Bytes response(5);
            co_await conn->request(body, response);
            if (!response.empty()) {
                fail("ack is not empty");
            }
            co_await conn->close();
        });
        return 0;
    });
    with_server(rt, system, ServerMode::close_on_accept, [&](asio::ip::tcp::endpoint server) {
        rt.on_client([&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            const auto conn = co_await system.connect(ex, server);
            co_await conn->wait_closed();
        });
        return 0;
    });
}

}  // namespace sdmp::bench
