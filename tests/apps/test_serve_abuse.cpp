// `sdmp serve` at its defaults under abuse, through the real binary (docs/protocol.md §3.6):
// a flood of slow and silent connections must not keep a legitimate client out, a truncated
// connection message is answered with `nope`, and so is a connection that sends nothing.
// Only safety timeouts: nothing waits for a fixed time, and no assertion is on a duration.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "node.hpp"

using namespace sdmp::test;

namespace {

constexpr auto k_connect_safety = std::chrono::seconds(30);
constexpr auto k_read_safety = std::chrono::seconds(30);

// Open descriptors, all closed on destruction (or by close_all()).
class Sockets {
  public:
    Sockets() = default;
    ~Sockets() { close_all(); }
    Sockets(const Sockets&) = delete;
    Sockets& operator=(const Sockets&) = delete;
    void add(int fd) { fds_.push_back(fd); }
    const std::vector<int>& fds() const { return fds_; }
    std::size_t size() const { return fds_.size(); }
    void close_all() {
        for (int fd : fds_)
            ::close(fd);
        fds_.clear();
    }

  private:
    std::vector<int> fds_;
};

// Raises this process's soft RLIMIT_NOFILE to its hard limit for the life of the object, and
// puts the old soft limit back afterwards.
class RaisedDescriptorLimit {
  public:
    RaisedDescriptorLimit() {
        if (getrlimit(RLIMIT_NOFILE, &old_) != 0)
            throw std::runtime_error("getrlimit failed");
        rlimit raised = old_;
        raised.rlim_cur = old_.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) != 0)
            throw std::runtime_error("setrlimit failed");
        limit_ = raised.rlim_cur;
    }
    ~RaisedDescriptorLimit() { setrlimit(RLIMIT_NOFILE, &old_); }
    RaisedDescriptorLimit(const RaisedDescriptorLimit&) = delete;
    RaisedDescriptorLimit& operator=(const RaisedDescriptorLimit&) = delete;
    rlim_t limit() const { return limit_; }

  private:
    rlimit old_{};
    rlim_t limit_ = 0;
};

sockaddr_in ipv4(const std::string& address, std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1)
        throw std::runtime_error("bad IPv4 address " + address);
    return sa;
}

void set_blocking(int fd) {
    const int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

struct FloodResult {
    std::size_t connected = 0;
    std::size_t failed = 0;       // socket, bind or connect failed, or no answer in time
    std::size_t send_failed = 0;  // connected, but the first bytes could not be written
};

// Opens `count` connections from `source` (bound before connect) to 127.0.0.1:`port` and
// writes `first_bytes` on each (nothing when empty); they stay open in `into`. Connects run in
// batches, each with a safety timeout; a connection that fails is counted and closed.
FloodResult open_connections(Sockets& into, const std::string& source, std::uint16_t port,
                             std::size_t count, std::string_view first_bytes) {
    constexpr std::size_t k_batch = 200;
    const sockaddr_in from = ipv4(source, 0);
    const sockaddr_in to = ipv4("127.0.0.1", port);
    FloodResult result;
    for (std::size_t done = 0; done < count;) {
        const std::size_t batch = std::min(k_batch, count - done);
        done += batch;
        std::vector<pollfd> pending;
        for (std::size_t i = 0; i < batch; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                ++result.failed;
                continue;
            }
            if (::bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0 ||
                (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 &&
                 errno != EINPROGRESS)) {
                ::close(fd);
                ++result.failed;
                continue;
            }
            pending.push_back({fd, POLLOUT, 0});
        }
        const auto deadline = std::chrono::steady_clock::now() + k_connect_safety;
        std::size_t open = pending.size();
        while (open > 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                break;
            const int ready =
                ::poll(pending.data(), pending.size(), static_cast<int>(left.count()));
            if (ready < 0 && errno != EINTR)
                break;
            for (auto& p : pending) {
                if (p.fd < 0 || p.revents == 0)
                    continue;
                int error = 0;
                socklen_t size = sizeof error;
                if (getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
                    ::close(p.fd);
                    ++result.failed;
                } else {
                    set_blocking(p.fd);
                    if (!first_bytes.empty() &&
                        ::send(p.fd, first_bytes.data(), first_bytes.size(), MSG_NOSIGNAL) !=
                            static_cast<ssize_t>(first_bytes.size()))
                        ++result.send_failed;
                    into.add(p.fd);
                    ++result.connected;
                }
                p.fd = -1;  // poll() ignores it from now on
                --open;
            }
        }
        for (auto& p : pending) {  // no answer within the safety timeout
            if (p.fd >= 0) {
                ::close(p.fd);
                ++result.failed;
            }
        }
    }
    return result;
}

// One blocking connection from 127.0.0.1 (with a safety timeout on the connect), kept in `into`.
int connect_one(Sockets& into, std::uint16_t port) {
    if (open_connections(into, "127.0.0.1", port, 1, {}).connected != 1)
        throw std::runtime_error("cannot connect to the server");
    return into.fds().back();
}

struct StreamEnd {
    std::string bytes;
    bool eof = false;  // false: an error or the safety timeout ended the reading
    std::string error;
};

// Reads until end of stream, with a safety timeout on each read.
StreamEnd read_to_end(int fd) {
    timeval timeout{};
    timeout.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(k_read_safety).count();
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    StreamEnd end;
    char buffer[512];
    for (;;) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n > 0) {
            end.bytes.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0) {
            end.eof = true;
            return end;
        } else if (errno != EINTR) {
            end.error = errno == EAGAIN || errno == EWOULDBLOCK ? std::string("safety timeout")
                                                                : std::strerror(errno);
            return end;
        }
    }
}

// Flood connections the server has already answered (bytes or end of stream waiting to be read,
// or reset), without waiting.
std::size_t answered(const Sockets& sockets) {
    std::vector<pollfd> fds;
    fds.reserve(sockets.size());
    for (int fd : sockets.fds())
        fds.push_back({fd, POLLIN | POLLRDHUP, 0});
    if (::poll(fds.data(), fds.size(), 0) < 0)
        return 0;
    return static_cast<std::size_t>(
        std::count_if(fds.begin(), fds.end(), [](const pollfd& p) { return p.revents != 0; }));
}

}  // namespace

TEST_CASE(
    "sdmp serve at its defaults serves a legitimate client while slow and silent "
    "connections flood it",
    "[apps][abuse]") {
    DefaultServeFixture f;

    // ~4,400 flood sockets plus this process's own descriptors.
    const RaisedDescriptorLimit limit;
    const double scale = limit.limit() == RLIM_INFINITY || limit.limit() >= 6000
                             ? 1.0
                             : static_cast<double>(limit.limit()) / 6000.0;
    const auto scaled = [scale](std::size_t count) {
        return std::max<std::size_t>(
            1, static_cast<std::size_t>(std::floor(static_cast<double>(count) * scale)));
    };
    INFO("descriptor limit " << limit.limit()
                             << (scale < 1.0 ? ": below 6,000, flood counts scaled down to "
                                             : ": flood counts x")
                             << scale);

    Sockets flood;
    // (a) Slow: the first byte of a connection message, then nothing.
    const FloodResult slow = open_connections(flood, "127.0.0.1", f.port, scaled(1000), "S");
    // (b) Slow, from four other loopback sources.
    FloodResult others;
    for (const char* source : {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}) {
        const FloodResult r = open_connections(flood, source, f.port, scaled(100), "S");
        others.connected += r.connected;
        others.failed += r.failed;
        others.send_failed += r.send_failed;
    }
    // (c) Silent.
    const FloodResult silent = open_connections(flood, "127.0.0.6", f.port, scaled(3000), {});

    std::cout << "flood connections opened: " << slow.connected << " slow from 127.0.0.1 ("
              << slow.failed << " failed, " << slow.send_failed << " could not send), "
              << others.connected << " slow from 127.0.0.2-5 (" << others.failed << " failed, "
              << others.send_failed << " could not send), " << silent.connected
              << " silent from 127.0.0.6 (" << silent.failed << " failed); " << answered(flood)
              << " of " << flood.size() << " already answered by the server\n";

    const std::string text = "legitimate during the flood";
    const auto start = std::chrono::steady_clock::now();
    const ProcessResult echo = call(f.client, f.client_trust, f.node.peer(), "echo", {text});
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    std::cout << "legitimate call during flood: " << ms << " ms (" << answered(flood) << " of "
              << flood.size() << " flood connections answered by the server when it ended)\n";
    INFO("call stderr: " << echo.err);
    INFO("server stderr:\n" << f.node.process->stderr_text());
    REQUIRE(echo.exit_code == 0);
    REQUIRE(echo.out == text);

    flood.close_all();
    CHECK(f.node.process->terminate() == 0);
}

TEST_CASE("sdmp serve answers a truncated connection message with nope", "[apps][abuse]") {
    DefaultServeFixture f;

    // A real-looking initiator's connection message (protocol.md §3): prefix "SDMP", version 1,
    // suite 1, role 1 (initiator), reserved 0; the rest random (it is cut before validation).
    std::string message = {'S', 'D', 'M', 'P', 0x01, 0x01, 0x01, 0x00};
    std::mt19937_64 random(160);
    while (message.size() < 160)
        message.push_back(static_cast<char>(random() & 0xff));

    for (const std::size_t cut : {0, 1, 8, 100, 159}) {
        INFO("first " << cut << " bytes, then shutdown(SHUT_WR)");
        Sockets connection;
        const int fd = connect_one(connection, f.port);
        if (cut > 0)
            REQUIRE(::send(fd, message.data(), cut, MSG_NOSIGNAL) == static_cast<ssize_t>(cut));
        REQUIRE(::shutdown(fd, SHUT_WR) == 0);
        const StreamEnd end = read_to_end(fd);
        INFO("read error: " << end.error);
        INFO("server stderr:\n" << f.node.process->stderr_text());
        REQUIRE(end.bytes == "nope");
        REQUIRE(end.eof);
    }
    CHECK(f.node.process->terminate() == 0);
}

TEST_CASE(
    "sdmp serve answers a connection that sends nothing with nope at its first-byte "
    "deadline",
    "[apps][abuse]") {
    DefaultServeFixture f;

    Sockets connection;
    const int fd = connect_one(connection, f.port);
    const auto start = std::chrono::steady_clock::now();
    const StreamEnd end = read_to_end(fd);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    std::cout << "silent connection answered after " << ms << " ms\n";
    INFO("read error: " << end.error);
    INFO("server stderr:\n" << f.node.process->stderr_text());
    REQUIRE(end.bytes == "nope");
    REQUIRE(end.eof);
    connection.close_all();
    CHECK(f.node.process->terminate() == 0);
}
