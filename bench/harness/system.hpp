// The one interface a benchmarked system implements.
//
// A system provides a server (started on the server io_context) and client connections (opened on
// the client io_context). The harness never touches sockets itself: every scenario is written
// against Server and Connection below, so the same scenario code measures the plain-TCP floor, the
// TLS 1.3 baseline and sdmp. Adding a system is one new source file in bench/harness/systems/
// that defines a System subclass and registers it with SDMP_BENCH_REGISTER_SYSTEM (see
// systems/tcp.cpp for the smallest example).
//
// Threading contract: the harness runs Server methods only on the server executor and Connection
// and System::connect only on the client executor, each io_context on its own thread, so an
// implementation needs no locking. Every awaitable may throw boost::system::system_error (or any
// std::exception) on failure; the harness reports the failure and stops.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sdmp::bench {

namespace asio = boost::asio;
using Bytes = std::vector<std::uint8_t>;

// `tcp` and `tls` (framed.hpp): after how many frames taken from one read the reader lets the
// writer send what they produced before it handles the rest, as sdmp's writer does after
// SessionOptions::flush_after_messages. 0 (the default): every frame of the read first, then
// one write. Set from --baseline-flush before the first trial.
inline std::atomic<std::size_t> baseline_frames_per_flush{0};

// What the server does with each request. Every scenario needs exactly one of these.
enum class ServerMode {
    echo,             // respond with the request body
    ack,              // respond with an empty body (bulk upload: the reply is only an ack)
    close_on_accept,  // complete the handshake, then close the session at once (handshake_rate)
};

class Server {
  public:
    virtual ~Server() = default;
    // Loopback address and port clients connect to.
    [[nodiscard]] virtual asio::ip::tcp::endpoint endpoint() const = 0;
    // Stops accepting, closes every session and completes once no server work is left, so the
    // object can be destroyed right after. Called once, on the server executor.
    virtual asio::awaitable<void> stop() = 0;
};

class Connection {
  public:
    virtual ~Connection() = default;
    // Sends `body` as one request and completes with the response body in `response` (resized to
    // fit; its capacity is reused across calls). Many calls may be outstanding on one connection
    // at once (pipelined); `body` and `response` stay valid until the call completes.
    virtual asio::awaitable<void> request(std::span<const std::uint8_t> body, Bytes& response) = 0;
    // Completes when the peer has closed the session (used with ServerMode::close_on_accept).
    virtual asio::awaitable<void> wait_closed() = 0;
    // Closes the session and completes once all of its work has ended.
    virtual asio::awaitable<void> close() = 0;
};

class System {
  public:
    virtual ~System() = default;
    [[nodiscard]] virtual std::string_view name() const = 0;
    // Listens on 127.0.0.1 with an ephemeral port. Runs on `server_ex`.
    virtual asio::awaitable<std::unique_ptr<Server>> start_server(asio::any_io_executor server_ex,
                                                                  ServerMode mode) = 0;
    // Opens one session and completes when it is established on the client side (the handshake,
    // if any, is done from the client's point of view). Runs on `client_ex`.
    virtual asio::awaitable<std::unique_ptr<Connection>> connect(
        asio::any_io_executor client_ex, asio::ip::tcp::endpoint server) = 0;
    // What the figures alone do not show (threads of its own, versions, settings), as a JSON
    // object: written to the JSON's meta.systems.<name> and printed on stderr after the run.
    // Called on the main thread once the trials are over. Default: an empty object.
    [[nodiscard]] virtual nlohmann::ordered_json notes() const;
};

// --- registry -----------------------------------------------------------------------------------

struct SystemInfo {
    std::string name;
    // Column order in the table: lower first (sdmp = 0, tls = 1, tcp = 2, grpc = 3).
    int column = 0;
    std::function<std::unique_ptr<System>()> make;
};

// Registered systems, sorted by column.
std::vector<SystemInfo> registered_systems();

// Systems this build left out because a package was missing, each as "name: reason" (set by
// CMakeLists.txt through SDMP_BENCH_UNAVAILABLE).
std::vector<std::string> unavailable_systems();

namespace detail {
struct SystemRegistrar {
    explicit SystemRegistrar(SystemInfo info);
};
}  // namespace detail

// Registers a system at static-initialization time; use once at namespace scope in the system's
// source file. The executable lists every systems/*.cpp directly, so the object is never dropped
// by the linker.
#define SDMP_BENCH_REGISTER_SYSTEM(ident, name, column, ...)                           \
    static const ::sdmp::bench::detail::SystemRegistrar sdmp_bench_registrar_##ident { \
        ::sdmp::bench::SystemInfo {                                                    \
            name, column, __VA_ARGS__                                                  \
        }                                                                              \
    }

}  // namespace sdmp::bench
