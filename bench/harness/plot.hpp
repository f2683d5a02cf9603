// Latency-against-load plot: the sweep's data and a gnuplot script are written beside the PNG,
// and gnuplot (Debian package gnuplot-nox) renders it when it is installed.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace sdmp::bench {

struct SweepPoint {
    std::string system;
    std::size_t in_flight = 0;
    double requests_per_s = 0;
    double p50_us = 0;
    double p99_us = 0;
};

// Writes <stem>.dat and <stem>.gp next to `png_path` and runs gnuplot on the script. Returns
// false (after saying why on stderr) if gnuplot is missing or fails; the .gp file can then be
// rendered later with `gnuplot <stem>.gp`.
bool write_plot(const std::string& png_path, const std::vector<SweepPoint>& points,
                const std::string& cpu);

}  // namespace sdmp::bench
