// The sans-IO connection handshake (protocol.md §3, §4). The driver asks `next()` what to do,
// performs it on its transport, and reports what it read through `feed()` / `feed_eof()`.
//
//   initiator: Send(msg) → Need(n)… → Established | Failed
//   responder: Need(n)… → Send(msg) → Established      (or Failed{reply = "nope"})
//
// Failed is terminal and wipes every secret. When `reply` is non-empty (always exactly
// "nope") the driver writes it, then closes. Nothing else about the cause goes on the wire.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake_error.hpp"
#include "sdmp/protocol/key_schedule.hpp"
#include "sdmp/protocol/replay_cache.hpp"
#include "sdmp/protocol/wire.hpp"

namespace sdmp::protocol {

// Milliseconds since the Unix epoch. Injected so tests control time.
using Clock = std::function<std::uint64_t()>;
std::uint64_t system_clock_ms();

// Every suite this build knows, the default first (protocol.md §2).
std::vector<crypto::SuiteId> default_suite_ids();

struct HandshakeConfig {
    crypto::CryptoProvider* provider = nullptr;  // required
    const crypto::Identity* self = nullptr;      // required
    const crypto::TrustStore* trust = nullptr;   // required
    Clock clock = system_clock_ms;
    // Largest accepted |peer timestamp - local clock|; nullopt switches the check off
    // (nodes without a trustworthy clock). protocol.md §3.5.
    std::optional<std::chrono::milliseconds> max_clock_skew = std::chrono::minutes(2);
    // Responder only; may be shared between connections. nullptr disables replay detection.
    // Its window must be at least 2 * max_clock_skew (protocol.md §3.5 step 6).
    ReplayCache* replay_cache = nullptr;
    // Responder only, optional: asked once the initiator's message has passed every check of
    // protocol.md §3.5, with its signer's fingerprint; false refuses it with `nope`
    // (HandshakeError::not_accepted), a node not accepting "the values given" (§3.5).
    std::function<bool(const crypto::Fingerprint&)> accept_peer;
    // Initiator: the suite it offers. Responder: the suites it accepts.
    // (Filled out of line: GCC 12 -O3 warns falsely on an inline initializer list here.)
    std::vector<crypto::SuiteId> suites = default_suite_ids();
    // Fixed ephemeral private key, for reproducible test vectors only. Never set in production:
    // reusing an ephemeral destroys forward secrecy.
    std::optional<crypto::SecretBytes> test_only_ephemeral;
};

struct Established {
    SessionKeys keys;
    crypto::Suite suite;
    crypto::PublicIdentity peer;
    crypto::Fingerprint peer_fingerprint;
    std::string peer_name;  // trust-store name, may be empty
    Bytes leftover;         // bytes fed after the connection message (the first records)
};

namespace action {
struct Send {
    Bytes bytes;
};
struct Need {
    std::size_t count;  // feed at least this many more bytes
};
struct Done {
    Established result;
};
struct Failed {
    HandshakeError reason;
    // "nope" when this side refuses, a truncated message included (protocol.md §3.6); empty
    // when the peer refused us (`nope` then end-of-stream), when the initiator fails before
    // sending anything, and after the end (internal).
    Bytes reply;
};
}  // namespace action

using HandshakeAction = std::variant<action::Send, action::Need, action::Done, action::Failed>;

class HandshakeState {
  public:
    static HandshakeState initiator(HandshakeConfig config, const crypto::Fingerprint& responder);
    static HandshakeState responder(HandshakeConfig config);

    HandshakeState(HandshakeState&&) noexcept;
    HandshakeState& operator=(HandshakeState&&) noexcept;
    ~HandshakeState();

    // What the driver must do next. Send and Done/Failed are returned once; after Done or
    // Failed, further calls return Failed{internal}.
    HandshakeAction next();
    void feed(ByteView bytes);
    void feed_eof();

    // Abort from the outside (deadline). The next `next()` returns Failed{reason, "nope"}.
    void abort(HandshakeError reason);

  private:
    struct Impl;
    explicit HandshakeState(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace sdmp::protocol
