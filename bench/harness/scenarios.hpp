// One trial of each kind of measurement, for one system. The caller (main.cpp) repeats trials,
// interleaves systems and takes medians.
#pragma once

#include "histogram.hpp"
#include "runtime.hpp"
#include "system.hpp"

#include <chrono>
#include <cstddef>

namespace sdmp::bench {

struct Timing {
    std::chrono::milliseconds warmup;    // run but not counted
    std::chrono::milliseconds duration;  // counted
};

// Closed-loop request/response load on one connection.
struct LoadSpec {
    ServerMode mode = ServerMode::echo;
    std::size_t in_flight = 1;  // concurrent requesters, each with one request outstanding
    std::size_t body_size = 64;
    bool record_latency = false;
};

struct LoadResult {
    double requests_per_s = 0;
    double request_bytes_per_s = 0;  // request bodies only
    Histogram latency;               // ns, filled when LoadSpec::record_latency
};

// Opens one connection (not timed), drives `spec` for warmup + duration, counts the requests
// that complete inside the counted window.
LoadResult run_load(Runtime& rt, System& system, const LoadSpec& spec, Timing timing);

// Many connections, as a server sees them: `connections` sessions opened (not timed) by
// `connectors` concurrent connectors, then `per_connection` closed-loop requesters on each for
// warmup + duration, 64-byte bodies echoed. Counts the requests answered in the window.
LoadResult run_fanin(Runtime& rt, System& system, std::size_t connections,
                     std::size_t per_connection, std::size_t connectors, Timing timing);

// `connections` connects started at once, then one 64-byte echo on each: milliseconds from the
// first connect to the last answer (a server's reconnect storm after a restart), and how many
// connects the server turned away and were tried again.
struct StormResult {
    double elapsed_ms = 0;
    double retries = 0;
};
StormResult run_connect_storm(Runtime& rt, System& system, std::size_t connections);

// `connectors` concurrent loops of: connect, wait until the server (which closes every session
// as soon as its handshake completes) has closed it. Returns sessions established per second.
double run_handshake_rate(Runtime& rt, System& system, std::size_t connectors, Timing timing);

// Resident memory per idle established session end, in KiB: VmRSS growth while `sessions`
// client+server session pairs are open in this process (each after one 64-byte echo), divided
// by 2 * sessions.
double run_idle_sessions(Runtime& rt, System& system, std::size_t sessions, std::size_t connectors);

// Correctness smoke test before measuring: echoes of several sizes (pipelined) compared byte
// for byte, the ack mode, and close-on-accept. Throws std::runtime_error on any mismatch.
void check_system(Runtime& rt, System& system);

// Resident set size of this process in KiB (VmRSS from /proc/self/status).
long resident_kib();

}  // namespace sdmp::bench
