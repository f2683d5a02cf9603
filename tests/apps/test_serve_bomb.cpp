// One record must not turn into unbounded work (docs/protocol.md §6.5, docs/security.md):
// trusted peers send `sdmp serve`, as a user starts it, records of a few KiB that inflate to
// 16 MiB of envelopes of 3 and 10 bytes. Its memory must stay bounded and it must keep serving
// others. The figures (growth, the other peer's wait) are printed; nothing is asserted about time.
#include <sys/types.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "node.hpp"
#include "raw_peer.hpp"

using namespace sdmp::test;
namespace protocol = sdmp::protocol;

namespace {

// A field of /proc/PID/status in KiB (VmRSS: resident now, VmHWM: the peak so far).
std::size_t status_kib(pid_t pid, std::string_view field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':')
            return std::stoul(line.substr(field.size() + 1));
    }
    FAIL("no " << field << " in /proc/" << pid << "/status");
    return 0;
}

// As many tiny envelopes as fit in 16 MiB: a ping (10 bytes framed) and three cancels of an
// unknown id (3 bytes framed each), over and over: ~3.5 million envelopes, a quarter of them
// pings that each ask for a pong.
sdmp::Bytes tiny_envelopes() {
    sdmp::Bytes unit;
    REQUIRE_FALSE(protocol::encode_message(protocol::Ping{7}, unit));
    for (int i = 0; i < 3; ++i)
        REQUIRE_FALSE(protocol::encode_message(protocol::Cancel{1}, unit));
    REQUIRE(unit.size() == 19);
    const std::size_t units = (std::size_t{16} << 20) / unit.size();
    sdmp::Bytes payload;
    payload.reserve(units * unit.size());
    for (std::size_t i = 0; i < units; ++i)
        payload.insert(payload.end(), unit.begin(), unit.end());
    return payload;
}

// Sets an environment variable for the programs started while it lives (they inherit it), and
// puts the old value back afterwards.
class ScopedEnvironment {
  public:
    ScopedEnvironment(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name))
            old_ = old;
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnvironment() {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }
    ScopedEnvironment(const ScopedEnvironment&) = delete;
    ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

  private:
    const char* name_;
    std::optional<std::string> old_;
};

// AddressSanitizer keeps freed memory resident in its quarantine (up to 256 MiB) to catch late
// uses; that would be counted as the server's growth. Without it the sanitizer still checks
// every access and leak. Harmless for a build without AddressSanitizer.
std::string without_asan_quarantine() {
    const char* old = std::getenv("ASAN_OPTIONS");
    std::string value = old != nullptr && *old != '\0' ? std::string(old) + ":" : std::string();
    return value + "quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
}

std::size_t pongs_in(const std::vector<protocol::Message>& messages) {
    std::size_t pongs = 0;
    for (const auto& message : messages)
        pongs += std::holds_alternative<protocol::Pong>(message) ? 1 : 0;
    return pongs;
}

}  // namespace

TEST_CASE(
    "records that inflate to millions of tiny envelopes keep sdmp serve's memory bounded "
    "and it serves another peer meanwhile",
    "[apps][abuse]") {
    std::optional<ScopedEnvironment> asan(std::in_place, "ASAN_OPTIONS", without_asan_quarantine());
    DefaultServeFixture f;
    asan.reset();
    const NodeKeys keys = load_node_keys(f.client, f.client_trust);
    constexpr std::size_t k_sessions = 4;
    std::vector<RawPeer> peers;
    for (std::size_t i = 0; i < k_sessions; ++i)
        peers.push_back(RawPeer::connect(keys, f.node.address, f.node.fingerprint));

    const sdmp::Bytes payload = tiny_envelopes();
    std::vector<sdmp::Bytes> records;
    for (auto& peer : peers)
        records.push_back(peer.seal_payload(payload, 12));
    std::cout << "bomb record: " << records.front().size() << " bytes sealed, " << payload.size()
              << " bytes (" << payload.size() / 19 * 4 << " envelopes) inflated\n";
    REQUIRE(records.front().size() < 64 * 1024);

    const pid_t pid = f.node.process->pid();
    const std::size_t rss_before = status_kib(pid, "VmRSS");
    for (std::size_t i = 0; i < k_sessions; ++i)
        peers[i].send(records[i]);

    // Another peer calls while the four records are worked through.
    const std::string text = "while four sessions inflate bombs";
    const auto start = std::chrono::steady_clock::now();
    const ProcessResult echo = call(f.other, f.client_trust, f.node.peer(), "echo", {text});
    const auto call_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
    INFO("call stderr: " << echo.err);
    INFO("server stderr:\n" << f.node.process->stderr_text());
    REQUIRE(echo.exit_code == 0);
    REQUIRE(echo.out == text);

    // Each record is answered by one coalesced pong once all its envelopes were dispatched
    // (protocol.md §6.5), and the session stays open.
    for (auto& peer : peers) {
        std::vector<protocol::Message> received;
        while (pongs_in(received) == 0)
            REQUIRE(peer.receive(received));
        CHECK(pongs_in(received) == 1);
    }
    const std::size_t peak = status_kib(pid, "VmHWM");
    const std::size_t rss_after = status_kib(pid, "VmRSS");
    const std::size_t growth_kib = peak > rss_before ? peak - rss_before : 0;
    std::cout << "server memory: " << rss_before / 1024 << " MiB resident before, peak "
              << peak / 1024 << " MiB (growth " << growth_kib / 1024 << " MiB), "
              << rss_after / 1024 << " MiB after; other peer's call took " << call_ms << " ms\n";
    CHECK(growth_kib < 128 * 1024);

    // Still serving the same peer afterwards.
    const ProcessResult again = call(f.client, f.client_trust, f.node.peer(), "echo", {"after"});
    CHECK(again.exit_code == 0);
    CHECK(again.out == "after");
    peers.clear();
    CHECK(f.node.process->terminate() == 0);
}
