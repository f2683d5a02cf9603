// Why a handshake failed: detailed for local logs and tests, never sent to the peer
// (the wire only ever carries `nope`).
#pragma once

#include <cstdint>
#include <string_view>

namespace sdmp::protocol {

enum class HandshakeError : std::uint8_t {
    none = 0,
    bad_magic,
    unsupported_version,
    unsupported_suite,
    bad_role,      // role byte is not the one expected in this direction
    malformed,     // reserved bits set, or a field out of range
    seal_failed,   // the sealed body does not open (wrong receiver key or tampered)
    unknown_peer,  // signer fingerprint not in the trust store
    bad_signature,
    wrong_responder,  // responder is not the peer the initiator asked for
    low_order_point,  // a DH result was all zero
    clock_skew,       // timestamp outside the allowed window
    replay,           // ephemeral value already seen inside the window
    refused_by_peer,  // the peer answered with `nope`
    truncated,        // the peer closed before a whole connection message arrived
    unexpected_data,  // the peer sent more than `nope` after refusing, or junk after EOF
    timeout,          // set by the driver when the handshake deadline passes
    internal,
    not_accepted,  // HandshakeConfig::accept_peer declined a valid initiator (e.g. a session cap)
};

std::string_view to_string(HandshakeError error) noexcept;

}  // namespace sdmp::protocol
