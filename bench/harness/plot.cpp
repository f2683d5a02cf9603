#include "plot.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>

extern char** environ;

namespace sdmp::bench {
namespace {

// gnuplot string literal in single quotes: a quote is written twice.
std::string quoted(const std::string& s) {
    std::string out = "'";
    for (const char c : s) {
        out += c;
        if (c == '\'') {
            out += '\'';
        }
    }
    return out + "'";
}

}  // namespace

bool write_plot(const std::string& png_path, const std::vector<SweepPoint>& points,
                const std::string& cpu) {
    namespace fs = std::filesystem;
    const fs::path png(png_path);
    fs::path stem = png;
    stem.replace_extension();
    const fs::path dat = fs::path(stem).concat(".dat");
    const fs::path script = fs::path(stem).concat(".gp");

    // One gnuplot data block per system: in_flight, requests/s, p50 µs, p99 µs.
    std::map<std::string, std::vector<const SweepPoint*>> by_system;
    std::vector<std::string> order;
    for (const auto& p : points) {
        if (by_system[p.system].empty()) {
            order.push_back(p.system);
        }
        by_system[p.system].push_back(&p);
    }
    {
        std::ofstream out(dat);
        out << "# closed-loop sweep, 64-byte echo; columns: in_flight requests_per_s p50_us "
               "p99_us\n";
        for (std::size_t i = 0; i < order.size(); ++i) {
            const std::string& name = order[i];
            // Blocks are separated by two blank lines, so `index i` selects system i.
            out << (i == 0 ? "" : "\n\n") << "# " << name << '\n';
            for (const SweepPoint* p : by_system[name]) {
                out << fmt::format("{} {:.1f} {:.2f} {:.2f}\n", p->in_flight, p->requests_per_s,
                                   p->p50_us, p->p99_us);
            }
        }
    }
    {
        std::ofstream out(script);
        out << "set terminal pngcairo size 1100,650 font 'sans,10'\n"
            << "set output " << quoted(png.string()) << '\n'
            << "set title "
            << quoted(fmt::format("sdmp-bench: latency against load (closed loop, 64-byte "
                                  "echo, 1..64 in flight; {})",
                                  cpu))
            << '\n'
            << "set xlabel 'throughput (thousand requests/s), log scale'\n"
            << "set ylabel 'round-trip latency (µs), log scale'\n"
            << "set logscale xy\nset grid xtics ytics mxtics mytics\nset key top left\n";
        out << "plot ";
        const char* colors[] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a"};
        for (std::size_t i = 0; i < order.size(); ++i) {
            const std::string color = colors[i % 4];
            out << (i == 0 ? "" : ", \\\n     ") << quoted(dat.string()) << " index " << i
                << " using ($2/1000):3 with linespoints lw 2 pt 7 lc rgb '" << color << "' title "
                << quoted(order[i] + " p50") << ", '' index " << i
                << " using ($2/1000):4 with linespoints lw 2 dt 2 pt 6 lc rgb '" << color
                << "' title " << quoted(order[i] + " p99") << ", '' index " << i
                << " using ($2/1000):3:1 with labels offset 0,0.8 font ',8' tc rgb '" << color
                << "' notitle";
        }
        out << '\n';
    }

    std::string program = "gnuplot";
    std::string arg = script.string();
    char* argv[] = {program.data(), arg.data(), nullptr};
    pid_t pid = 0;
    if (posix_spawnp(&pid, "gnuplot", nullptr, nullptr, argv, environ) != 0) {
        fmt::print(stderr,
                   "sdmp-bench: gnuplot not found (Debian: apt-get install gnuplot-nox); the "
                   "data is in {} and `gnuplot {}` draws {}\n",
                   dat.string(), script.string(), png.string());
        return false;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fmt::print(stderr, "sdmp-bench: gnuplot failed on {}\n", script.string());
        return false;
    }
    fmt::print(stderr, "sdmp-bench: plot written to {}\n", png.string());
    return true;
}

}  // namespace sdmp::bench
