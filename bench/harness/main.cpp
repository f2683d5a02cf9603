// sdmp-bench: every scenario against every selected system in one run, interleaved.
//
// For each scenario, each round runs one trial per system, rotating the order of systems from
// round to round, so slow drift of the machine (other load, frequency, page cache) lands on all
// systems alike; the figure reported is the median of the rounds. See docs/performance.md.
#include "plot.hpp"
#include "runtime.hpp"
#include "scenarios.hpp"
#include "system.hpp"
#include "systems/sdmp.hpp"  // sdmp_crypto

#include <fmt/format.h>
#include <sys/resource.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>  // ordered_json: keys in the documented order

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace sdmp::bench {
namespace {

using namespace std::chrono_literals;

struct Settings {
    bool quick = false;
    int rounds = 5;
    Timing timing{200ms, 1000ms};
    int sweep_rounds = 3;
    Timing sweep_timing{100ms, 500ms};
    std::size_t idle_sessions = 10000;
    // Many-connection scenarios (a server's view): fanin_rr's connections, each with
    // k_fanin_per_connection calls in flight, and connect_storm's burst of connects.
    std::size_t fanin_connections = 256;
    std::size_t storm_connections = 1000;
    // Enough connections in flight that neither the client's nor the server's thread waits
    // for the other: at 16, CPU use was ~93 % and sdmp's rate 3-4 % lower (docs/performance.md).
    std::size_t connectors = 64;
};

// One reported figure.
struct Figure {
    std::string name;
    std::string unit;
    bool higher_is_better;
    int precision;
};

// One kind of trial; it may report several figures (latency reports p50 and p99).
struct Scenario {
    std::string key;
    std::vector<Figure> figures;
    int max_rounds;  // 0: Settings::rounds
    std::function<std::vector<double>(Runtime&, System&, const Settings&)> run;
};

constexpr std::size_t k_bulk_message = std::size_t{1} << 20;
constexpr std::size_t k_fanin_per_connection = 4;
constexpr std::size_t k_bulk_in_flight = 4;

std::vector<Scenario> all_scenarios() {
    const auto rr = [](std::size_t in_flight, std::size_t body) {
        return [in_flight, body](Runtime& rt, System& sys, const Settings& s) {
            const LoadResult r =
                run_load(rt, sys, {ServerMode::echo, in_flight, body, false}, s.timing);
            return std::vector<double>{r.requests_per_s};
        };
    };
    return {
        {"handshake_rate",
         {{"handshake_rate", "conn/s", true, 0}},
         0,
         [](Runtime& rt, System& sys, const Settings& s) {
             return std::vector<double>{run_handshake_rate(rt, sys, s.connectors, s.timing)};
         }},
        {"rr_rate_1", {{"rr_rate_1", "req/s", true, 0}}, 0, rr(1, 64)},
        {"rr_rate_64", {{"rr_rate_64", "req/s", true, 0}}, 0, rr(64, 64)},
        {"rr_rate_64_4k", {{"rr_rate_64_4k", "req/s", true, 0}}, 0, rr(64, 4096)},
        {"latency",
         {{"latency_p50_1", "us", false, 1}, {"latency_p99_1", "us", false, 1}},
         0,
         [](Runtime& rt, System& sys, const Settings& s) {
             const LoadResult r = run_load(rt, sys, {ServerMode::echo, 1, 64, true}, s.timing);
             return std::vector<double>{r.latency.quantile_ns(0.50) / 1000.0,
                                        r.latency.quantile_ns(0.99) / 1000.0};
         }},
        {"bulk_throughput",
         {{"bulk_throughput", "MB/s", true, 1}},
         0,
         [](Runtime& rt, System& sys, const Settings& s) {
             const LoadResult r = run_load(
                 rt, sys, {ServerMode::ack, k_bulk_in_flight, k_bulk_message, false}, s.timing);
             return std::vector<double>{r.request_bytes_per_s / 1e6};
         }},
        {"fanin_rr",
         {{"fanin_rr", "req/s", true, 0}},
         0,
         [](Runtime& rt, System& sys, const Settings& s) {
             const LoadResult r = run_fanin(rt, sys, s.fanin_connections, k_fanin_per_connection,
                                            s.connectors, s.timing);
             return std::vector<double>{r.requests_per_s};
         }},
        {"connect_storm",
         {{"connect_storm", "ms", false, 1}, {"connect_storm_retries", "conns", false, 0}},
         0,
         [](Runtime& rt, System& sys, const Settings& s) {
             const StormResult r = run_connect_storm(rt, sys, s.storm_connections);
             return std::vector<double>{r.elapsed_ms, r.retries};
         }},
        {"idle_session_kib",
         {{"idle_session_kib", "KiB", false, 1}},
         3,
         [](Runtime& rt, System& sys, const Settings& s) {
             return std::vector<double>{run_idle_sessions(rt, sys, s.idle_sessions, s.connectors)};
         }},
    };
}

double median(std::vector<double> v) {
    if (v.empty()) {
        return 0.0;
    }
    std::sort(v.begin(), v.end());
    const std::size_t mid = v.size() / 2;
    return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2.0;
}

std::string cpu_name() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) {
                return line.substr(line.find_first_not_of(" \t", colon + 1));
            }
        }
    }
    return "unknown";
}

// 10,000 idle sessions need 20,000 descriptors in this one process.
void raise_fd_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            std::perror("sdmp-bench: setrlimit(RLIMIT_NOFILE)");
        }
    }
}

std::size_t fd_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
        return SIZE_MAX;
    }
    return limit.rlim_cur;
}

// samples[figure][system]
using Samples = std::map<std::string, std::map<std::string, std::vector<double>>>;

std::string format_value(const std::vector<double>* samples, int precision) {
    if (samples == nullptr || samples->empty()) {
        return "-";
    }
    return fmt::format("{:.{}f}", median(*samples), precision);
}

std::string format_ratio(const std::map<std::string, std::vector<double>>& by_system,
                         const std::string& a, const std::string& b) {
    const auto ia = by_system.find(a);
    const auto ib = by_system.find(b);
    if (ia == by_system.end() || ib == by_system.end() || ia->second.empty() ||
        ib->second.empty() || median(ib->second) == 0.0) {
        return "-";
    }
    return fmt::format("{:.2f}x", median(ia->second) / median(ib->second));
}

void print_table(const std::vector<Scenario>& scenarios, const std::vector<std::string>& systems,
                 const Samples& samples) {
    std::string header = fmt::format("{:<18} {:<7} {:<7}", "scenario", "unit", "better");
    for (const auto& s : systems) {
        header += fmt::format(" {:>11}", s);
    }
    header += fmt::format(" {:>9} {:>9} {:>9}", "sdmp/tls", "sdmp/tcp", "tls/tcp");
    fmt::print("{}\n{}\n", header, std::string(header.size(), '-'));
    for (const auto& sc : scenarios) {
        for (const auto& fig : sc.figures) {
            const auto it = samples.find(fig.name);
            if (it == samples.end()) {
                continue;
            }
            std::string row = fmt::format("{:<18} {:<7} {:<7}", fig.name, fig.unit,
                                          fig.higher_is_better ? "higher" : "lower");
            for (const auto& s : systems) {
                const auto sys_it = it->second.find(s);
                row += fmt::format(
                    " {:>11}", format_value(sys_it == it->second.end() ? nullptr : &sys_it->second,
                                            fig.precision));
            }
            row += fmt::format(" {:>9} {:>9} {:>9}", format_ratio(it->second, "sdmp", "tls"),
                               format_ratio(it->second, "sdmp", "tcp"),
                               format_ratio(it->second, "tls", "tcp"));
            fmt::print("{}\n", row);
        }
    }
}

nlohmann::ordered_json to_json(const std::vector<Scenario>& scenarios,
                               const std::vector<std::string>& systems, const Samples& samples,
                               const Samples& cpu, const nlohmann::ordered_json& system_notes,
                               const std::vector<SweepPoint>& sweep, const Settings& settings) {
    nlohmann::ordered_json results = nlohmann::ordered_json::array();
    for (const auto& sc : scenarios) {
        for (const auto& fig : sc.figures) {
            const auto it = samples.find(fig.name);
            if (it == samples.end()) {
                continue;
            }
            for (const auto& s : systems) {
                const auto sys_it = it->second.find(s);
                if (sys_it == it->second.end() || sys_it->second.empty()) {
                    continue;
                }
                results.push_back({{"scenario", fig.name},
                                   {"system", s},
                                   {"value", median(sys_it->second)},
                                   {"unit", fig.unit},
                                   {"samples", sys_it->second}});
                // Process CPU (every thread) per second of the trial, median of the rounds.
                if (const auto c = cpu.find(sc.key); c != cpu.end() && c->second.count(s) != 0) {
                    results.back()["cpu_cores"] = median(c->second.at(s));
                }
            }
        }
    }
    nlohmann::ordered_json doc = {{"results", results},
                                  {"meta",
                                   {{"cpu", cpu_name()},
                                    {"quick", settings.quick},
                                    {"rounds", settings.rounds},
                                    {"warmup_ms", settings.timing.warmup.count()},
                                    {"duration_ms", settings.timing.duration.count()},
                                    {"idle_sessions", settings.idle_sessions},
                                    {"fanin_connections", settings.fanin_connections},
                                    {"storm_connections", settings.storm_connections},
                                    {"connectors", settings.connectors},
                                    {"baseline_flush", baseline_frames_per_flush.load()},
                                    {"sdmp_crypto", sdmp_crypto}}}};
    if (!system_notes.empty()) {
        doc["meta"]["systems"] = system_notes;
    }
    if (!sweep.empty()) {
        nlohmann::ordered_json points = nlohmann::ordered_json::array();
        for (const auto& p : sweep) {
            points.push_back({{"system", p.system},
                              {"in_flight", p.in_flight},
                              {"requests_per_s", p.requests_per_s},
                              {"p50_us", p.p50_us},
                              {"p99_us", p.p99_us}});
        }
        doc["sweep"] = points;
    }
    return doc;
}

struct SystemEntry {
    std::string name;
    std::unique_ptr<System> system;
};

// Latency against offered load: closed loop with 1, 2, 4, ... 64 requests in flight (64-byte
// echo), interleaved like the scenarios.
std::vector<SweepPoint> run_sweep(Runtime& rt, Watchdog& dog, std::vector<SystemEntry>& systems,
                                  const Settings& settings) {
    std::vector<SweepPoint> points;
    for (std::size_t in_flight = 1; in_flight <= 64; in_flight *= 2) {
        std::map<std::string, std::vector<LoadResult>> runs;
        for (int round = 0; round < settings.sweep_rounds; ++round) {
            for (std::size_t j = 0; j < systems.size(); ++j) {
                auto& entry = systems[(j + static_cast<std::size_t>(round)) % systems.size()];
                const WatchdogScope guard(
                    dog, settings.sweep_timing.warmup + settings.sweep_timing.duration + 60s,
                    fmt::format("sweep {} in flight on {}", in_flight, entry.name));
                runs[entry.name].push_back(run_load(rt, *entry.system,
                                                    {ServerMode::echo, in_flight, 64, true},
                                                    settings.sweep_timing));
            }
        }
        for (const auto& entry : systems) {
            std::vector<double> rps;
            std::vector<double> p50;
            std::vector<double> p99;
            for (const auto& r : runs[entry.name]) {
                rps.push_back(r.requests_per_s);
                p50.push_back(r.latency.quantile_ns(0.50) / 1000.0);
                p99.push_back(r.latency.quantile_ns(0.99) / 1000.0);
            }
            points.push_back({entry.name, in_flight, median(rps), median(p50), median(p99)});
            fmt::print(stderr,
                       "  sweep {:>2} in flight  {:<5} {:>10.0f} req/s  p50 {:>8.1f} us  "
                       "p99 {:>8.1f} us\n",
                       in_flight, entry.name, points.back().requests_per_s, points.back().p50_us,
                       points.back().p99_us);
        }
    }
    return points;
}

int run(int argc, char** argv) {
    CLI::App app{"sdmp-bench: sdmp against TLS 1.3 and plain TCP on loopback"};
    Settings settings;
    std::string json_path;
    std::string plot_path;
    std::vector<std::string> system_names;
    std::vector<std::string> scenario_names;
    std::optional<int> rounds;
    std::optional<int> duration_ms;
    std::optional<int> warmup_ms;
    bool list = false;
    app.add_flag("--quick", settings.quick, "short trials and few rounds (CI smoke test, < 30 s)");
    app.add_option("--json", json_path, "write the results as JSON to this file");
    app.add_option("--plot", plot_path,
                   "run a load sweep and draw latency against throughput into this PNG "
                   "(needs gnuplot; the data and script are written beside it)");
    app.add_option("--systems", system_names, "systems to run (default: all)")->delimiter(',');
    app.add_option("--scenarios", scenario_names, "scenarios to run (default: all)")
        ->delimiter(',');
    app.add_option("--rounds", rounds, "trials per scenario and system (median reported)")
        ->check(CLI::Range(1, 101));
    app.add_option("--duration-ms", duration_ms, "counted time of one trial")
        ->check(CLI::Range(10, 60000));
    app.add_option("--warmup-ms", warmup_ms, "uncounted time at the start of a trial")
        ->check(CLI::Range(0, 10000));
    app.add_option("--idle-sessions", settings.idle_sessions, "session pairs for idle_session_kib")
        ->check(CLI::Range(1, 20000));
    app.add_option("--connectors", settings.connectors,
                   "concurrent connectors for handshake_rate and idle_session_kib")
        ->check(CLI::Range(1, 1024));
    std::size_t baseline_flush = 0;
    app.add_option("--baseline-flush", baseline_flush,
                   "tcp and tls: frames after which the reader lets the writer send, as sdmp "
                   "does after flush_after_messages (default 0: all frames of a read, then one "
                   "write)")
        ->check(CLI::Range(0, 4096));
    app.add_option("--crypto", sdmp_crypto,
                   "sdmp: the crypto provider of both ends, botan or openssl (when built)")
        ->capture_default_str();
    app.add_flag("--list", list, "list systems and scenarios, then exit");
    CLI11_PARSE(app, argc, argv);

    if (settings.quick) {
        settings.rounds = 3;
        settings.timing = {50ms, 150ms};
        settings.sweep_rounds = 1;
        settings.sweep_timing = {30ms, 100ms};
        settings.idle_sessions = 200;
        settings.fanin_connections = 32;
        settings.storm_connections = 100;
        // The 50 ms warm-up must see the first handshakes through on every system: 64 gRPC
        // handshakes at once take longer than the whole trial (under ASan, 8 take ~130 ms), and
        // handshake_rate would count none.
        settings.connectors = 4;
    }
    baseline_frames_per_flush.store(baseline_flush, std::memory_order_relaxed);
    if (rounds) {
        settings.rounds = *rounds;
    }
    if (duration_ms) {
        settings.timing.duration = std::chrono::milliseconds(*duration_ms);
    }
    if (warmup_ms) {
        settings.timing.warmup = std::chrono::milliseconds(*warmup_ms);
    }

    const std::vector<Scenario> scenarios_all = all_scenarios();
    const std::vector<SystemInfo> registered = registered_systems();
    if (list) {
        fmt::print("systems:");
        for (const auto& s : registered) {
            fmt::print(" {}", s.name);
        }
        for (const auto& u : unavailable_systems()) {
            fmt::print("\n  ({})", u);
        }
        fmt::print("\nscenarios:");
        for (const auto& sc : scenarios_all) {
            for (const auto& f : sc.figures) {
                fmt::print(" {}", f.name);
            }
        }
        fmt::print("\n");
        return 0;
    }

    // Select systems (in column order) and scenarios (in their fixed order).
    std::vector<SystemEntry> systems;
    for (const auto& info : registered) {
        if (system_names.empty() ||
            std::find(system_names.begin(), system_names.end(), info.name) != system_names.end()) {
            systems.push_back({info.name, nullptr});
        }
    }
    for (const auto& wanted : system_names) {
        if (std::none_of(registered.begin(), registered.end(),
                         [&](const SystemInfo& i) { return i.name == wanted; })) {
            fmt::print(stderr, "sdmp-bench: unknown system '{}' (see --list)\n", wanted);
            return 2;
        }
    }
    std::vector<Scenario> scenarios;
    std::set<std::string> matched;
    for (const auto& sc : scenarios_all) {
        bool selected = scenario_names.empty();
        for (const auto& wanted : scenario_names) {
            const bool hit =
                wanted == sc.key || std::any_of(sc.figures.begin(), sc.figures.end(),
                                                [&](const Figure& f) { return f.name == wanted; });
            if (hit) {
                selected = true;
                matched.insert(wanted);
            }
        }
        if (selected) {
            scenarios.push_back(sc);
        }
    }
    for (const auto& wanted : scenario_names) {
        if (matched.count(wanted) == 0) {
            fmt::print(stderr, "sdmp-bench: unknown scenario '{}' (see --list)\n", wanted);
            return 2;
        }
    }
    if (systems.empty()) {
        fmt::print(stderr, "sdmp-bench: no system selected\n");
        return 2;
    }

    // Fail before minutes of measuring, not after, when an output cannot be written.
    for (const std::string& path : {json_path, plot_path}) {
        if (path.empty()) {
            continue;
        }
        const std::ofstream probe(path, std::ios::app);
        if (!probe) {
            fmt::print(stderr, "sdmp-bench: cannot write {}\n", path);
            return 2;
        }
    }

    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    const std::size_t fds_needed = 2 * std::max({settings.idle_sessions, settings.storm_connections,
                                                 settings.fanin_connections}) +
                                   64;
    if (fd_limit() < fds_needed) {
        // Said on stderr and in the JSON's meta, so a smaller figure is never mistaken for the
        // documented one.
        const std::size_t most = (fd_limit() - 64) / 2;
        settings.idle_sessions = std::min(settings.idle_sessions, most);
        settings.storm_connections = std::min(settings.storm_connections, most);
        settings.fanin_connections = std::min(settings.fanin_connections, most);
        fmt::print(stderr,
                   "sdmp-bench: descriptor limit too low; idle_session_kib uses {} sessions, "
                   "connect_storm {} and fanin_rr {} connections\n",
                   settings.idle_sessions, settings.storm_connections, settings.fanin_connections);
    }

    const auto started = std::chrono::steady_clock::now();
    const std::string cpu = cpu_name();
    fmt::print("sdmp-bench: CPU {}; {} round(s) of {} ms (+{} ms warm-up) per trial{}\n", cpu,
               settings.rounds, settings.timing.duration.count(), settings.timing.warmup.count(),
               settings.quick ? " (--quick)" : "");
    std::fflush(stdout);  // before the progress lines on stderr

    for (auto& entry : systems) {
        const auto info = std::find_if(registered.begin(), registered.end(),
                                       [&](const SystemInfo& i) { return i.name == entry.name; });
        entry.system = info->make();
    }

    Runtime rt;
    Watchdog dog;
    for (auto& entry : systems) {
        const WatchdogScope guard(dog, 60s, fmt::format("self-check of {}", entry.name));
        check_system(rt, *entry.system);
    }

    Samples samples;
    Samples cpu_use;  // by scenario key, not figure: process CPU cores busy during each trial
    for (const auto& sc : scenarios) {
        int scenario_rounds = settings.rounds;
        if (sc.max_rounds > 0) {
            // Slow, low-noise scenarios (idle memory) run fewer rounds; once under --quick.
            scenario_rounds = settings.quick ? 1 : std::min(settings.rounds, sc.max_rounds);
        }
        for (int round = 0; round < scenario_rounds; ++round) {
            for (std::size_t j = 0; j < systems.size(); ++j) {
                // Rotate the order each round so no system always runs first or last.
                auto& entry = systems[(j + static_cast<std::size_t>(round)) % systems.size()];
                const WatchdogScope guard(dog,
                                          settings.timing.warmup + settings.timing.duration + 120s,
                                          fmt::format("{} on {}", sc.key, entry.name));
                const double cpu_before = process_cpu_seconds();
                const auto wall_before = std::chrono::steady_clock::now();
                const std::vector<double> values = sc.run(rt, *entry.system, settings);
                const double cores =
                    (process_cpu_seconds() - cpu_before) /
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before)
                        .count();
                cpu_use[sc.key][entry.name].push_back(cores);
                std::string line = fmt::format("  {:<16} round {}/{} {:<5}", sc.key, round + 1,
                                               scenario_rounds, entry.name);
                for (std::size_t f = 0; f < sc.figures.size(); ++f) {
                    samples[sc.figures[f].name][entry.name].push_back(values[f]);
                    line += fmt::format(" {:.{}f} {}", values[f], sc.figures[f].precision,
                                        sc.figures[f].unit);
                }
                fmt::print(stderr, "{}  ({:.2f} CPUs)\n", line, cores);
            }
        }
    }

    std::vector<SweepPoint> sweep;
    if (!plot_path.empty()) {
        sweep = run_sweep(rt, dog, systems, settings);
    }

    // Facts the systems report about themselves (gRPC's threads), on stderr and in the JSON.
    nlohmann::ordered_json system_notes = nlohmann::ordered_json::object();
    for (const auto& entry : systems) {
        nlohmann::ordered_json notes = entry.system->notes();
        if (!notes.empty()) {
            fmt::print(stderr, "sdmp-bench: {}: {}\n", entry.name, notes.dump());
            system_notes[entry.name] = std::move(notes);
        }
    }

    std::vector<std::string> names;
    for (const auto& entry : systems) {
        names.push_back(entry.name);
    }
    fmt::print("\n");
    print_table(scenarios, names, samples);
    fmt::print("\nmedians of {} round(s); ratios compare medians; total time {:.1f} s\n",
               settings.rounds,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

    if (!json_path.empty()) {
        std::ofstream out(json_path);
        out << to_json(scenarios, names, samples, cpu_use, system_notes, sweep, settings).dump(2)
            << '\n';
        if (!out) {
            fmt::print(stderr, "sdmp-bench: cannot write {}\n", json_path);
            return 1;
        }
    }
    if (!plot_path.empty()) {
        write_plot(plot_path, sweep, cpu);
    }
    return 0;
}

}  // namespace
}  // namespace sdmp::bench

int main(int argc, char** argv) {
    try {
        return sdmp::bench::run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sdmp-bench: %s\n", e.what());
        return 1;
    }
}
