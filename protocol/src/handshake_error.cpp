// Names of handshake failure causes, for local logs and tests only (never sent: protocol.md §3.6).
#include "sdmp/protocol/handshake_error.hpp"

namespace sdmp::protocol {

std::string_view to_string(HandshakeError error) noexcept {
    switch (error) {
        case HandshakeError::none:
            return "none";
        case HandshakeError::bad_magic:
            return "bad_magic";
        case HandshakeError::unsupported_version:
            return "unsupported_version";
        case HandshakeError::unsupported_suite:
            return "unsupported_suite";
        case HandshakeError::bad_role:
            return "bad_role";
        case HandshakeError::malformed:
            return "malformed";
        case HandshakeError::seal_failed:
            return "seal_failed";
        case HandshakeError::unknown_peer:
            return "unknown_peer";
        case HandshakeError::bad_signature:
            return "bad_signature";
        case HandshakeError::wrong_responder:
            return "wrong_responder";
        case HandshakeError::low_order_point:
            return "low_order_point";
        case HandshakeError::clock_skew:
            return "clock_skew";
        case HandshakeError::not_accepted:
            return "not_accepted";
        case HandshakeError::replay:
            return "replay";
        case HandshakeError::refused_by_peer:
            return "refused_by_peer";
        case HandshakeError::truncated:
            return "truncated";
        case HandshakeError::unexpected_data:
            return "unexpected_data";
        case HandshakeError::timeout:
            return "timeout";
        case HandshakeError::internal:
            return "internal";
    }
    return "unknown";
}

}  // namespace sdmp::protocol
