// TCP transport and the secure-stream handshake driver (protocol.md §3): drives the sans-IO
// protocol::HandshakeState over a socket, with a deadline, and refuses with `nope` safely.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <system_error>

#include "detail/asio.hpp"
#include "detail/handshake_table.hpp"
#include "sdmp/framework/endpoint.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/protocol/handshake.hpp"

namespace sdmp::detail {

// Resolves `spec` and connects to the first address that accepts; sets TCP_NODELAY. The
// socket is created on `executor`. Throws boost::system::system_error naming the endpoint.
asio::awaitable<tcp::socket> tcp_connect(Executor executor, EndpointSpec spec);

// Resolves for listening (numeric hosts never touch DNS). Throws system_error.
tcp::endpoint resolve_listen_endpoint(const EndpointSpec& spec);

struct HandshakeOutcome {
    std::optional<protocol::Established> established;  // set on success
    protocol::HandshakeError reason = protocol::HandshakeError::none;
    // Why it failed, for the outer API: refused_by_peer, handshake_rejected (we refuse),
    // handshake_timeout, connection_closed, or the socket error.
    std::error_code error;
    // This side refuses: the caller sends `reply` (always `nope`) with refuse(), after giving
    // back whatever admission slots it holds (a refusal is not a handshake any more).
    bool refused_locally = false;
    Bytes reply;
    bool evicted = false;  // the server's handshake table evicted it (reason: timeout)
};

// Runs the exchange until Done or Failed, within the deadlines of `options`: `timeout` for the
// whole exchange and, for a responder, `first_byte_timeout` and `message_timeout` for the
// peer's connection message (protocol.md §3.6). `watch` carries the deadline (a server's
// table may evict it); null = a private one. On failure the socket stays open when this side
// refuses (see HandshakeOutcome::reply) and is closed otherwise.
asio::awaitable<HandshakeOutcome> run_handshake(tcp::socket& socket,
                                                protocol::HandshakeState& state,
                                                const HandshakeOptions& options, bool responder,
                                                HandshakeWatch* watch = nullptr);

// Bounds the refusals that linger to drain their peer (protocol.md §3.6). Thread-safe.
class RefusalGate {
  public:
    explicit RefusalGate(std::size_t max_draining) : max_(max_draining) {}
    bool try_enter() noexcept {
        std::size_t current = active_.load(std::memory_order_relaxed);
        while (current < max_) {
            if (active_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed))
                return true;
        }
        return false;
    }
    void leave() noexcept { active_.fetch_sub(1, std::memory_order_relaxed); }

  private:
    const std::size_t max_;
    std::atomic<std::size_t> active_{0};
};

// Sends `nope`, shuts down our sending side and reads and discards what the peer still sends,
// within HandshakeOptions' drain bounds, then closes (protocol.md §3.6): closing with unread
// input would make the kernel send a reset, which can destroy the `nope` in flight. With a
// `gate` that is full, only what the socket takes at once is written, and the socket is
// closed right away, so a flood of refusals cannot hold descriptors for the drain time.
asio::awaitable<void> refuse(tcp::socket& socket, const HandshakeOptions& options,
                             RefusalGate* gate = nullptr);

}  // namespace sdmp::detail
