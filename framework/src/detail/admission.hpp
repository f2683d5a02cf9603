// Admission of a server's connections (ServerOptions' limits): connections at once
// (max_sessions), the per-source limits, the handshake table and sessions per peer fingerprint.
// Every refusal looks alike to the peer, `nope` (protocol.md §3.6), so a prober learns nothing
// about which limit it hit; locally each is counted and logged, at a bounded rate per cause.
// Thread-safe: the connections of every executor pass through one Admission.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "detail/asio.hpp"
#include "detail/handshake_table.hpp"
#include "detail/refusal_log.hpp"
#include "detail/source_limiter.hpp"
#include "detail/transport.hpp"
#include "sdmp/framework/metrics.hpp"
#include "sdmp/framework/options.hpp"

namespace sdmp::detail {

class Admission;

// The admission slots of one connection, kept in its coroutine's frame: whatever it still
// holds when the connection ends (or its coroutine is destroyed) is given back.
class AdmissionTicket {
  public:
    AdmissionTicket() = default;
    AdmissionTicket(const AdmissionTicket&) = delete;
    AdmissionTicket& operator=(const AdmissionTicket&) = delete;
    ~AdmissionTicket();

    // The handshake's deadline, in the server's handshake table (see Responder::watch).
    HandshakeWatch* watch() const noexcept { return watch_.get(); }

  private:
    friend class Admission;
    Admission* admission_ = nullptr;
    bool connection_ = false;  // counts against max_sessions
    SourceSlot source_;
    std::shared_ptr<HandshakeWatch> watch_;
    std::optional<crypto::Fingerprint> peer_;  // counts against max_sessions_per_peer
};

class Admission {
  public:
    Admission(const ServerOptions& options, std::shared_ptr<Metrics> metrics);

    // Before the handshake, in this order: max_sessions, the source's limits (before the
    // table, so a flooding source does not take handshake slots even for a moment), the
    // handshake table (a newcomer may evict the oldest incomplete handshake, or wait up to
    // HandshakeOptions::message_timeout for a slot when none is incomplete). False: refused,
    // with every slot given back first. Runs on the connection's executor.
    asio::awaitable<bool> enter(tcp::socket& socket, const std::string& remote,
                                std::optional<asio::ip::address> address, AdmissionTicket& ticket);

    // For Responder::accept_peer: takes one of the peer's max_sessions_per_peer slots into
    // `ticket` (protocol.md §3.5 step 8). Taken at the handshake, not once the session exists,
    // so that concurrent handshakes of one peer cannot overshoot.
    std::function<bool(const crypto::Fingerprint&)> peer_gate(AdmissionTicket& ticket);

    // The handshake is over, however it ended: its table entry and source slot are free.
    void end_handshake(AdmissionTicket& ticket);
    // The connection will not be served (a failed or refused handshake): its max_sessions
    // slot is free. A peer slot stays with the ticket.
    void release_connection(AdmissionTicket& ticket);

    // Refuses with `nope`, counted and logged under `cause`. The caller has given back its
    // slots (release_connection): a refusal is not a connection being served, and its drain
    // is bounded by max_refusal_drains instead.
    asio::awaitable<void> refuse(tcp::socket& socket, const std::string& remote,
                                 std::string_view cause);

    // Server shutdown: no handshake in progress may hold it up.
    void evict_handshakes() { handshakes_.evict_all(); }
    // Server shutdown: reports the refusals the rate limit held back.
    void flush_log() { refusal_log_.flush(); }

  private:
    friend class AdmissionTicket;
    bool take_peer_slot(const crypto::Fingerprint& peer);
    void give_peer_slot(const crypto::Fingerprint& peer);

    const std::size_t max_sessions_;
    const std::size_t max_sessions_per_peer_;
    const HandshakeOptions handshake_;  // the refusal's drain bounds
    std::shared_ptr<Metrics> metrics_;

    std::atomic<std::size_t> connections_{0};
    SourceLimiter sources_;
    HandshakeTable handshakes_;
    RefusalGate refusal_gate_;
    RefusalLog refusal_log_;

    std::mutex mutex_;  // peer_sessions_
    // Sessions (and handshakes past validation) per peer.
    std::unordered_map<crypto::Fingerprint, std::size_t, crypto::FingerprintHash> peer_sessions_;
};

}  // namespace sdmp::detail
