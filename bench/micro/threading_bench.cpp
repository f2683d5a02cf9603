// The server's two threading models (ServerOptions::threading) side by side, in one process and
// one run: a strand per session on one io_context run by every thread, against one io_context
// per thread with every connection pinned to one of them.
//
// Per model and round, with a fresh sdmp::Server (own io_contexts, `threads` threads, run()):
//   rr_rate    K client sessions, each with N calls in flight (64-byte echo); responses
//              received in the counted window per second, and process CPU per response
//              (client and server together).
//   rr_skewed  4 sessions connected in turn, only the 1st and 3rd driven (4N calls in flight
//              each). With 2 threads, context_per_thread places sessions alternately, so both
//              busy ones share one io_context and one thread: the worst case of pinning (the
//              placement counts connections, not work), which a strand per session avoids.
//   handshake  C connector coroutines each loop: connect, wait until the server (which aborts
//              every session as soon as it is established) has closed it; sessions
//              established on both ends per second.
// The client side is one io_context on one thread of its own. Rounds interleave the models and
// alternate which goes first; figures are medians over rounds, the ratio is the median of the
// per-round ratios (so slow drift of a shared machine hits both models alike). Usage:
//   sdmp-bench-threading_bench [--quick] [--rounds R] [--duration-ms D] [--warmup-ms W]
//                              [--threads T] [--sessions K] [--in-flight N] [--connectors C]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "sdmp/sdmp.hpp"

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using sdmp::ThreadingModel;

struct Settings {
    int rounds = 5;
    std::chrono::milliseconds warmup{300};
    std::chrono::milliseconds duration{1000};
    std::size_t threads = 2;
    int sessions = 16;
    int in_flight = 8;
    int connectors = 16;
    bool quick = false;
};

const char* name_of(ThreadingModel model) {
    return model == ThreadingModel::context_per_thread ? "context_per_thread"
                                                       : "strand_per_session";
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double process_cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::string cpu_model() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            return colon == std::string::npos ? line : line.substr(colon + 2);
        }
    }
    return "unknown";
}

struct Keys {
    sdmp::crypto::Identity server =
        sdmp::crypto::Identity::generate(sdmp::crypto::default_provider());
    sdmp::crypto::Identity client =
        sdmp::crypto::Identity::generate(sdmp::crypto::default_provider());
    sdmp::crypto::TrustStore server_trust;
    sdmp::crypto::TrustStore client_trust;

    Keys() {
        if (server_trust.add({client.public_identity(), client.fingerprint(), "client", {}}) ||
            client_trust.add({server.public_identity(), server.fingerprint(), "server", {}})) {
            throw std::runtime_error("trust store");
        }
    }
};

// A server in the model under test on its own threads, for one trial.
class TrialServer {
  public:
    TrialServer(const Keys& keys, const Settings& settings, ThreadingModel model,
                bool close_on_accept) {
        sdmp::Router router;
        router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
            co_return sdmp::Reply::ok(std::move(body));
        });
        // Which server thread runs this session's handlers (to show where sessions landed).
        router.add("thread", [](sdmp::Context&, sdmp::Bytes) -> awaitable<sdmp::Reply> {
            co_return sdmp::Reply::ok(
                std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())));
        });
        sdmp::ServerOptions options;
        options.threads = settings.threads;
        options.threading = model;
        options.logger = sdmp::Logger::null();
        options.max_sessions_per_peer = 0;  // one client identity for every connection
        if (close_on_accept)
            options.on_session = [](const sdmp::Session& session) { session.abort(); };
        server_ = std::make_unique<sdmp::Server>(keys.server, keys.server_trust, std::move(router),
                                                 std::move(options));
        endpoint_ = server_->listen("127.0.0.1:0").to_string();
        thread_ = std::thread([this] {
            try {
                server_->run();
            } catch (...) {
                failure_ = std::current_exception();
            }
        });
    }
    TrialServer(const TrialServer&) = delete;
    TrialServer& operator=(const TrialServer&) = delete;
    ~TrialServer() { stop(); }

    void stop() {
        if (thread_.joinable()) {
            server_->shutdown();
            thread_.join();
            if (failure_)
                std::rethrow_exception(failure_);
        }
    }
    const std::string& endpoint() const { return endpoint_; }

  private:
    std::unique_ptr<sdmp::Server> server_;
    std::string endpoint_;
    std::thread thread_;
    std::exception_ptr failure_;
};

using Wake = asio::experimental::channel<void(boost::system::error_code)>;

// Counts completions of `workers` loops on the client thread between the end of the warm-up and
// the end of the window. Everything here runs on the one client thread: plain counters suffice.
struct Window {
    std::uint64_t done = 0;
    bool stop = false;
    int running = 0;
    std::exception_ptr failure;
};

struct Figure {
    double per_second = 0;
    double cpu_us = 0;  // process CPU (client and server) per counted completion
    // rr trials: the driven sessions' handlers all ran on one server thread (checked once,
    // before the window).
    bool driven_on_one_thread = false;
};

// Runs `body(window)` `workers` times concurrently, counts the window and waits for every
// worker to end.
awaitable<Figure> measure(const Settings& settings, int workers,
                          std::function<awaitable<void>(Window&)> body) {
    const auto executor = co_await asio::this_coro::executor;
    Window window;
    Wake all_ended(executor, 1);
    for (int i = 0; i < workers; ++i) {
        ++window.running;
        asio::co_spawn(executor, body(window), [&](std::exception_ptr error) {
            if (error && !window.failure)
                window.failure = error;
            if (error)
                window.stop = true;
            if (--window.running == 0)
                all_ended.try_send(boost::system::error_code{});
        });
    }
    asio::steady_timer timer(executor);
    timer.expires_after(settings.warmup);
    co_await timer.async_wait(asio::use_awaitable);
    const std::uint64_t first = window.done;
    const auto t0 = Clock::now();
    const double cpu0 = process_cpu_seconds();
    timer.expires_after(settings.duration);
    co_await timer.async_wait(asio::use_awaitable);
    const std::uint64_t last = window.done;
    const auto t1 = Clock::now();
    const double cpu1 = process_cpu_seconds();
    window.stop = true;
    co_await all_ended.async_receive(asio::use_awaitable);
    if (window.failure)
        std::rethrow_exception(window.failure);
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    const auto count = static_cast<double>(last - first);
    Figure figure;
    figure.per_second = count / seconds;
    figure.cpu_us = count > 0 ? (cpu1 - cpu0) * 1e6 / count : 0.0;
    co_return figure;
}

// `sessions` sessions, connected one after the other; every `stride`-th of them (from the
// first) is driven with `in_flight` callers. Connecting in turn makes the placement of
// context_per_thread predictable: with 2 threads the sessions alternate between the two
// io_contexts, so stride 2 puts every driven session on the same one.
awaitable<Figure> rr_trial(const Keys& keys, const Settings& settings, std::string endpoint,
                           int sessions_count, int stride, int in_flight) {
    const auto executor = co_await asio::this_coro::executor;
    sdmp::ClientOptions client;
    client.logger = sdmp::Logger::null();
    std::vector<sdmp::Session> sessions;
    for (int i = 0; i < sessions_count; ++i) {
        sessions.push_back(co_await sdmp::connect(
            executor, sdmp::Target::address(endpoint, keys.server.fingerprint()), keys.client,
            keys.client_trust, client));
    }
    const int driven = (sessions_count + stride - 1) / stride;
    std::set<std::string> threads;
    const std::string where = "thread";
    for (int i = 0; i < driven; ++i) {
        const sdmp::Bytes empty;
        const sdmp::Reply reply =
            co_await sessions[static_cast<std::size_t>(i * stride)].call(where, empty);
        threads.insert(std::string(reply.text()));
    }
    const sdmp::Bytes body(64, 0x5a);
    const std::string method = "echo";
    int next = 0;
    std::function<awaitable<void>(Window&)> caller = [&](Window& window) -> awaitable<void> {
        const sdmp::Session session =
            sessions[static_cast<std::size_t>((next++ % driven) * stride)];
        while (!window.stop) {
            sdmp::Bytes request = body;
            const sdmp::Reply reply = co_await session.call(method, std::move(request));
            if (!reply.is_ok() || reply.body != body)
                throw std::runtime_error("wrong echo");
            ++window.done;
        }
    };
    const int workers = driven * in_flight;
    Figure figure = co_await measure(settings, workers, std::move(caller));
    figure.driven_on_one_thread = threads.size() == 1;
    for (const auto& session : sessions) {
        session.close();
        co_await session.wait_closed();
    }
    co_return figure;
}

awaitable<Figure> handshake_trial(const Keys& keys, const Settings& settings,
                                  std::string endpoint) {
    std::function<awaitable<void>(Window&)> connector = [&](Window& window) -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        sdmp::ClientOptions client;
        client.logger = sdmp::Logger::null();
        while (!window.stop) {
            const sdmp::Session session = co_await sdmp::connect(
                executor, sdmp::Target::address(endpoint, keys.server.fingerprint()), keys.client,
                keys.client_trust, client);
            // The server aborts it once established on its side.
            co_await session.wait_closed();
            ++window.done;
        }
    };
    co_return co_await measure(settings, settings.connectors, std::move(connector));
}

// Runs `trial` on the client io_context (this thread) to completion, its sessions' closes too.
Figure run_client(asio::io_context& io, awaitable<Figure> trial) {
    Figure figure;
    std::exception_ptr failure;
    asio::co_spawn(io, std::move(trial), [&](std::exception_ptr e, Figure f) {
        failure = e;
        figure = f;
    });
    io.restart();
    io.run();
    if (failure)
        std::rethrow_exception(failure);
    return figure;
}

struct Series {
    std::vector<double> rate;
    std::vector<double> cpu_us;
};

Settings parse(int argc, char** argv) {
    Settings s;
    auto value = [&](int& i) -> long {
        if (i + 1 >= argc)
            throw std::invalid_argument(std::string(argv[i]) + " needs a value");
        return std::atol(argv[++i]);
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--quick") {
            s.quick = true;
            s.rounds = 3;
            s.warmup = std::chrono::milliseconds(100);
            s.duration = std::chrono::milliseconds(300);
        } else if (arg == "--rounds") {
            s.rounds = static_cast<int>(std::max(1L, value(i)));
        } else if (arg == "--duration-ms") {
            s.duration = std::chrono::milliseconds(std::max(1L, value(i)));
        } else if (arg == "--warmup-ms") {
            s.warmup = std::chrono::milliseconds(std::max(0L, value(i)));
        } else if (arg == "--threads") {
            s.threads = static_cast<std::size_t>(std::max(1L, value(i)));
        } else if (arg == "--sessions") {
            s.sessions = static_cast<int>(std::max(1L, value(i)));
        } else if (arg == "--in-flight") {
            s.in_flight = static_cast<int>(std::max(1L, value(i)));
        } else if (arg == "--connectors") {
            s.connectors = static_cast<int>(std::max(1L, value(i)));
        } else {
            throw std::invalid_argument("unknown option " + std::string(arg));
        }
    }
    return s;
}

void print_row(const char* figure, const char* unit, const Series& strand, const Series& pinned,
               const std::vector<double>& ratios) {
    auto spread = [](const std::vector<double>& v) {
        const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        return std::to_string(static_cast<long long>(*lo)) + "-" +
               std::to_string(static_cast<long long>(*hi));
    };
    std::printf("%-10s %-11s %18.0f %18.0f %10.3f   %s | %s\n", figure, unit, median(strand.rate),
                median(pinned.rate), median(ratios), spread(strand.rate).c_str(),
                spread(pinned.rate).c_str());
    std::printf("%-10s %-11s %18.1f %18.1f %10.3f\n", figure, "cpu us/op", median(strand.cpu_us),
                median(pinned.cpu_us), median(pinned.cpu_us) / median(strand.cpu_us));
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Settings settings = parse(argc, argv);
        const Keys keys;
        asio::io_context client_io(1);
        std::printf("threading_bench%s: CPU %s, %u hardware threads\n",
                    settings.quick ? " --quick (a smoke test, not a measurement)" : "",
                    cpu_model().c_str(), std::thread::hardware_concurrency());
        std::printf(
            "server: sdmp::Server with its own io_context(s), %zu threads; client: one "
            "io_context on one more thread. Client and server share the machine's cores, "
            "so every figure is both ends' cost together.\n",
            settings.threads);
        std::printf(
            "rr_rate: %d sessions x %d calls in flight, 64-byte echo. rr_skewed: 4 sessions, "
            "only the 1st and 3rd busy with %d calls in flight each (context_per_thread pins "
            "both to the same io_context: its worst case). handshake: %d connectors, each "
            "session aborted by the server once established.\n",
            settings.sessions, settings.in_flight, settings.in_flight * 4, settings.connectors);
        std::printf(
            "%d rounds of %lld ms warm-up + %lld ms counted per trial, models "
            "interleaved, first model alternating; medians.\n\n",
            settings.rounds, static_cast<long long>(settings.warmup.count()),
            static_cast<long long>(settings.duration.count()));

        const ThreadingModel models[] = {ThreadingModel::strand_per_session,
                                         ThreadingModel::context_per_thread};
        using Trial = std::function<awaitable<Figure>(const std::string&)>;
        struct Scenario {
            const char* name = "";
            const char* unit = "";
            bool close_on_accept = false;
            bool check_pinning = false;  // report when the busy sessions were not pinned together
            Trial trial;
            Series series[2];
            std::vector<double> ratios;
        };
        std::vector<Scenario> scenarios;
        auto add = [&](const char* name, const char* unit, bool close_on_accept, bool check_pinning,
                       Trial trial) {
            Scenario scenario;
            scenario.name = name;
            scenario.unit = unit;
            scenario.close_on_accept = close_on_accept;
            scenario.check_pinning = check_pinning;
            scenario.trial = std::move(trial);
            scenarios.push_back(std::move(scenario));
        };
        add("rr_rate", "req/s", false, false, [&](const std::string& endpoint) {
            return rr_trial(keys, settings, endpoint, settings.sessions, 1, settings.in_flight);
        });
        add("rr_skewed", "req/s", false, true, [&](const std::string& endpoint) {
            return rr_trial(keys, settings, endpoint, 4, 2, settings.in_flight * 4);
        });
        add("handshake", "conn/s", true, false,
            [&](const std::string& endpoint) { return handshake_trial(keys, settings, endpoint); });
        for (int round = 0; round < settings.rounds; ++round) {
            std::printf("round %d:", round + 1);
            for (std::size_t f = 0; f < scenarios.size(); ++f) {
                Scenario& scenario = scenarios[f];
                Figure figures[2];
                for (int k = 0; k < 2; ++k) {
                    // Alternate which model goes first, per round and per figure.
                    const int m = static_cast<int>((static_cast<std::size_t>(round) + f + k) % 2);
                    TrialServer server(keys, settings, models[m], scenario.close_on_accept);
                    figures[m] = run_client(client_io, scenario.trial(server.endpoint()));
                    server.stop();
                }
                for (int m = 0; m < 2; ++m) {
                    scenario.series[m].rate.push_back(figures[m].per_second);
                    scenario.series[m].cpu_us.push_back(figures[m].cpu_us);
                }
                scenario.ratios.push_back(figures[1].per_second / figures[0].per_second);
                std::printf("  %s %.0f / %.0f", scenario.name, figures[0].per_second,
                            figures[1].per_second);
                if (scenario.check_pinning && !figures[1].driven_on_one_thread)
                    std::printf(" [busy sessions NOT on one context]");
            }
            std::printf("  (strand / context)\n");
            std::fflush(stdout);
        }
        std::printf("\n%-10s %-11s %18s %18s %10s   %s\n", "figure", "unit", name_of(models[0]),
                    name_of(models[1]), "ctx/strand", "rounds min-max (strand | context)");
        for (const Scenario& scenario : scenarios) {
            print_row(scenario.name, scenario.unit, scenario.series[0], scenario.series[1],
                      scenario.ratios);
        }
        std::printf(
            "\n(ctx/strand of a rate: median of per-round ratios, higher favours "
            "context_per_thread; of cpu us/op (process CPU, both ends, per completion): ratio of "
            "medians, lower favours it.)\n");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "threading_bench: %s\n", e.what());
        return 1;
    }
}
