// Connection establishment, the one path from a connected socket to a session for both ends:
// the server (responder) and connect() (initiator) differ only in their Role, so the handshake
// and the session are configured alike on both sides and a new option is wired in one place.
// Refusing (`nope`, protocol.md §3.6) stays the caller's: the server first gives back its
// admission slots, and each side counts and logs a failure its own way.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <variant>

#include "detail/asio.hpp"
#include "detail/handshake_table.hpp"
#include "detail/session_impl.hpp"
#include "detail/transport.hpp"
#include "sdmp/framework/log.hpp"
#include "sdmp/framework/metrics.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/framework/router.hpp"
#include "sdmp/protocol/replay_cache.hpp"

namespace sdmp::detail {

// The initiator must know whom it talks to (protocol.md §1).
struct Initiator {
    crypto::Fingerprint responder;
};

struct Responder {
    // May be shared between connections; null = no replay detection. Its window must be
    // replay_window_ms() of the same HandshakeOptions.
    protocol::ReplayCache* replay_cache = nullptr;
    // Asked once the initiator's message has passed every check; false declines it with
    // `nope` (protocol::HandshakeConfig::accept_peer). Empty = every trusted peer.
    std::function<bool(const crypto::Fingerprint&)> accept_peer;
    // The deadline, shared with the server's handshake table; null = a private one.
    HandshakeWatch* watch = nullptr;
};

// The connect() side is always the initiator, the server's side always the responder; the
// role also decides the session's ownership (see SessionConfig::close_on_last_handle).
using Role = std::variant<Initiator, Responder>;

// What both ends configure. Referenced, not copied: each must outlive the co_await.
struct EstablishParams {
    const HandshakeOptions& handshake;
    const crypto::Identity& identity;
    const crypto::TrustStore& trust;
    const SessionOptions& session;
    std::shared_ptr<const Router> router;  // may be null
    const Logger& logger;
    std::shared_ptr<Metrics> metrics;  // never null
};

struct EstablishResult {
    // Set on success, not yet running: the socket has moved into it.
    std::shared_ptr<SessionImpl> session;
    // On failure, why (HandshakeOutcome::established is never set here). The socket stays
    // with the caller: open when this side refuses (HandshakeOutcome::refused_locally), so
    // the caller can refuse(), and closed otherwise.
    HandshakeOutcome failure;
};

// HandshakeOptions::provider, or the default one.
crypto::CryptoProvider& provider_of(const HandshakeOptions& options);

// How long a responder's replay cache must remember an ephemeral: a message passes the clock
// check for twice the skew of local time (protocol.md §3.5 step 6). With the check switched
// off, the default skew's window.
std::uint64_t replay_window_ms(const HandshakeOptions& options);

// Runs the handshake on `socket` (see run_handshake for the deadlines) and, on success, builds
// the session and counts the completed handshake. Runs on the connection's executor.
asio::awaitable<EstablishResult> establish(tcp::socket& socket, Role role,
                                           const EstablishParams& params);

}  // namespace sdmp::detail
