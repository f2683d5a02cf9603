// Building and opening one connection message (protocol.md §3). Internal to protocol/: the
// state machine in handshake.cpp decides when; these functions do the bytes and the crypto.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake_error.hpp"
#include "sdmp/protocol/wire.hpp"

namespace sdmp::protocol::detail {

using ConnectionMessage = std::array<std::uint8_t, k_connection_message_size>;
using Header = std::array<std::uint8_t, k_header_size>;

// protocol.md §3: magic || version || suite || role || reserved || ephemeral
Header make_header(Role sender, crypto::SuiteId suite, const crypto::DhPublic& ephemeral);

// protocol.md §3.5 step 1, on the first 8 bytes. Returns none when the prefix is acceptable.
// `accepted` lists the suites the receiver accepts (the initiator passes only its offer).
HandshakeError check_prefix(ByteView prefix, Role expected_sender,
                            std::span<const crypto::SuiteId> accepted);

// What the sender puts in its connection message.
struct Outgoing {
    Role sender;
    crypto::Suite suite;
    const crypto::DhKeyPair* ephemeral;      // the sender's fresh ephemeral
    const crypto::Identity* self;            // signs, and its fingerprint goes in the body
    const crypto::PublicIdentity* receiver;  // the body is sealed to its X25519 key
    const crypto::Fingerprint* receiver_fingerprint;
    std::uint64_t timestamp_ms;
    const crypto::Digest* initiator_message_hash;  // responder only (protocol.md §3.4)
};

// Builds header || sealed body. Fails with errc::low_order_point when DH(ephemeral, receiver
// static) is all zero (a bad key in the trust store); `out` is then unspecified.
std::error_code build_message(crypto::CryptoProvider& provider, const Outgoing& params,
                              ConnectionMessage& out);

// What the receiver needs to open one.
struct Incoming {
    Role sender;                   // role the message must come from
    crypto::Suite suite;           // from the (already checked) prefix
    const crypto::Identity* self;  // receiver identity (static DH key, fingerprint)
    const crypto::TrustStore* trust;
    const crypto::Fingerprint* expected_sender;    // initiator: the responder it asked for
    const crypto::Digest* initiator_message_hash;  // initiator: hash of its own message
    std::optional<std::chrono::milliseconds> max_clock_skew;
    std::uint64_t now_ms;
};

struct Opened {
    HandshakeError error = HandshakeError::none;
    const crypto::TrustedPeer* peer = nullptr;  // set when error == none
    std::uint64_t timestamp_ms = 0;
};

// protocol.md §3.5 steps 2–5 on a whole message whose prefix passed step 1. Always performs
// one X25519, one HKDF, one AEAD open and exactly one full signature verification: of the
// received signature under the signer's key when steps 2 and 3 passed and its S is canonical,
// else of a fixed dummy signature under a fixed dummy key. So the causes cost the same time.
Opened open_message(crypto::CryptoProvider& provider, const Incoming& params, ByteView message);

// The ephemeral public value of a message (bytes 8..40).
crypto::DhPublic ephemeral_of(ByteView message);

}  // namespace sdmp::protocol::detail
