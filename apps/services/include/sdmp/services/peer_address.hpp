// A peer to connect to: its fingerprint and where it listens. Command lines name one as
// `FP@HOST:PORT` or as a trust-store entry (a name or a fingerprint) whose address is set.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"

namespace sdmp::services {

struct PeerAddress {
    crypto::Fingerprint fingerprint;
    std::string endpoint;  // "host:port" / "[v6]:port"
    std::string name;      // trust-store name, may be empty

    // "name (fp16…) at endpoint" / "fp16… at endpoint", for messages.
    std::string describe() const;
};

// Parses `FP@HOST:PORT` or looks up a name/fingerprint in `trust`. The peer must be in `trust`
// (a handshake with an unknown key cannot succeed). On failure returns nullopt and sets
// `error` to one line that names the text and the problem.
std::optional<PeerAddress> parse_peer_address(std::string_view text,
                                              const crypto::TrustStore& trust, std::string& error);

}  // namespace sdmp::services
