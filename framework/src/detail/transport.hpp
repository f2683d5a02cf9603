// TCP transport and the secure-stream handshake driver (protocol.md §3): drives the sans-IO
// protocol::HandshakeState over a socket, with a deadline, and refuses with `nope` safely.
#pragma once

#include <optional>
#include <string>
#include <system_error>

#include "detail/asio.hpp"
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
    // Why it failed, for the outer API: refused_by_peer, handshake_rejected (we sent `nope`),
    // handshake_timeout, connection_closed, or the socket error.
    std::error_code error;
    bool refused_locally = false;  // this side sent `nope`
};

// Runs the exchange until Done or Failed. On failure the socket is closed on return (after
// `nope`, a shutdown of the sending side and a bounded drain when this side refuses).
asio::awaitable<HandshakeOutcome> run_handshake(tcp::socket& socket,
                                                protocol::HandshakeState& state,
                                                const HandshakeOptions& options);

// Refuses a connection without a handshake (admission limits): `nope`, then as above.
asio::awaitable<void> refuse_connection(tcp::socket& socket, const HandshakeOptions& options);

}  // namespace sdmp::detail
