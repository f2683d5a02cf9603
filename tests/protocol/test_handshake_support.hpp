// Shared fixtures for the handshake tests: fixed identities, trust stores, an in-memory
// driver, and a message crafter written from protocol.md §3 (independent of protocol/src).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake.hpp"

namespace sdmp::test {

using protocol::HandshakeAction;
using protocol::HandshakeError;
using protocol::HandshakeState;
namespace action = protocol::action;

inline crypto::CryptoProvider& provider() {
    return crypto::default_provider();
}

inline constexpr std::uint64_t k_now = 1'700'000'000'000;  // a fixed "now" for every test

// Identity from two fill bytes: sign seed = 32 x `s`, DH private = 32 x `d`.
inline crypto::Identity make_identity(std::uint8_t s, std::uint8_t d) {
    std::array<std::uint8_t, 32> seed{};
    std::array<std::uint8_t, 32> dh{};
    seed.fill(s);
    dh.fill(d);
    crypto::Identity id;
    const auto ec = crypto::Identity::from_private(provider(), seed, dh, id);
    REQUIRE_FALSE(ec);
    return id;
}

inline crypto::TrustedPeer trusted(const crypto::Identity& id, std::string name) {
    return crypto::TrustedPeer{id.public_identity(), id.fingerprint(), std::move(name), {}};
}

inline crypto::SecretBytes fixed_secret(std::uint8_t fill) {
    crypto::SecretBytes s(32);
    std::fill(s.span().begin(), s.span().end(), fill);
    return s;
}

// alice initiates; bob and carol respond; mallory is trusted by nobody.
struct World {
    crypto::Identity alice = make_identity(0x01, 0x11);
    crypto::Identity bob = make_identity(0x02, 0x12);
    crypto::Identity carol = make_identity(0x03, 0x13);
    crypto::Identity mallory = make_identity(0x04, 0x14);
    crypto::TrustStore alice_trust;  // bob, carol
    crypto::TrustStore bob_trust;    // alice, carol
    crypto::TrustStore carol_trust;  // alice

    World() {
        REQUIRE_FALSE(alice_trust.add(trusted(bob, "bob")));
        REQUIRE_FALSE(alice_trust.add(trusted(carol, "carol")));
        REQUIRE_FALSE(bob_trust.add(trusted(alice, "alice")));
        REQUIRE_FALSE(bob_trust.add(trusted(carol, "carol")));
        REQUIRE_FALSE(carol_trust.add(trusted(alice, "alice")));
    }

    protocol::HandshakeConfig config(const crypto::Identity& self, const crypto::TrustStore& trust,
                                     std::uint64_t now = k_now) const {
        protocol::HandshakeConfig c;
        c.provider = &provider();
        c.self = &self;
        c.trust = &trust;
        c.clock = [now] { return now; };
        return c;
    }
    // Deterministic configs: fixed ephemerals make every message reproducible.
    protocol::HandshakeConfig fixed_config(const crypto::Identity& self,
                                           const crypto::TrustStore& trust, std::uint8_t eph,
                                           std::uint64_t now = k_now) const {
        auto c = config(self, trust, now);
        c.test_only_ephemeral = fixed_secret(eph);
        return c;
    }
    HandshakeState alice_to(const crypto::Identity& responder, std::uint64_t now = k_now) const {
        return HandshakeState::initiator(config(alice, alice_trust, now), responder.fingerprint());
    }
    HandshakeState bob_responder(std::uint64_t now = k_now) const {
        return HandshakeState::responder(config(bob, bob_trust, now));
    }
};

template <class T>
T expect(HandshakeAction a) {
    INFO("action index " << a.index());
    if (const auto* f = std::get_if<action::Failed>(&a)) {
        INFO("failed: " << protocol::to_string(f->reason));
        REQUIRE(std::holds_alternative<T>(a));
    }
    REQUIRE(std::holds_alternative<T>(a));
    return std::get<T>(std::move(a));
}

inline Bytes nope_bytes() {
    return {'n', 'o', 'p', 'e'};
}

// Expects a refusal on the next action: exact reason and exactly `nope` as reply.
inline void expect_refusal(HandshakeState& hs, HandshakeError reason) {
    const auto f = expect<action::Failed>(hs.next());
    CHECK(protocol::to_string(f.reason) == protocol::to_string(reason));
    CHECK(f.reply == nope_bytes());
}

// Feeds a responder the initiator message; returns the action it answers with.
inline HandshakeAction respond(HandshakeState& responder, ByteView hello) {
    auto first = responder.next();
    REQUIRE(std::holds_alternative<action::Need>(first));
    responder.feed(hello);
    return responder.next();
}

struct Pair {
    protocol::Established initiator;
    protocol::Established responder;
    Bytes hello;
    Bytes reply;
};

// Runs a whole handshake in memory.
inline Pair run(HandshakeState& initiator, HandshakeState& responder) {
    Pair p;
    p.hello = expect<action::Send>(initiator.next()).bytes;
    REQUIRE(p.hello.size() == protocol::k_connection_message_size);
    p.reply = expect<action::Send>(respond(responder, p.hello)).bytes;
    REQUIRE(p.reply.size() == protocol::k_connection_message_size);
    p.responder = expect<action::Done>(responder.next()).result;
    CHECK(std::holds_alternative<action::Need>(initiator.next()));
    initiator.feed(p.reply);
    p.initiator = expect<action::Done>(initiator.next()).result;
    return p;
}

// ---- An independent implementation of protocol.md §3 for crafting messages ----

inline void put_u64(Bytes& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<std::uint8_t>(v >> shift));
}

struct Craft {
    std::uint8_t version = 1;
    std::uint8_t suite = 1;
    std::uint8_t role = 1;
    std::uint8_t reserved = 0;
    // Ephemeral private key (32 bytes) or, when `raw_ephemeral` is set, a public value to put
    // in the header as is (low-order tests); the seal then uses an all-zero `es`.
    crypto::SecretBytes ephemeral_private = fixed_secret(0x55);
    std::optional<crypto::DhPublic> raw_ephemeral;
    const crypto::Identity* signer = nullptr;         // signs and names itself in the body
    std::optional<crypto::Digest> body_fingerprint;   // override the body fingerprint
    crypto::Digest signed_receiver_fp{};              // the receiver fingerprint it signs
    const crypto::PublicIdentity* seal_to = nullptr;  // receiver static key
    std::uint64_t timestamp = k_now;
    std::optional<crypto::Digest> initiator_hash;  // responder messages
    bool corrupt_signature = false;
    // Called on the signature just before it goes into the body: may replace it (non-canonical
    // S, random bytes) and may record what was sent.
    std::function<void(crypto::Signature&)> edit_signature;
};

inline Bytes craft(const Craft& c) {
    auto& p = provider();
    crypto::DhPublic eph_pub{};
    crypto::SecretBytes es(32);
    if (c.raw_ephemeral) {
        eph_pub = *c.raw_ephemeral;
    } else {
        crypto::DhKeyPair kp;
        REQUIRE_FALSE(p.dh_from_private(c.ephemeral_private.view(), kp));
        eph_pub = kp.public_key;
        REQUIRE_FALSE(p.dh_agree(kp.private_key, c.seal_to->dh_public, es));
    }
    Bytes header = {'S', 'D', 'M', 'P', c.version, c.suite, c.role, c.reserved};
    header.insert(header.end(), eph_pub.begin(), eph_pub.end());

    const crypto::Digest own_fp = c.body_fingerprint.value_or(c.signer->fingerprint().bytes());
    Bytes to_sign;
    const std::string_view label = c.role == 2 ? "sdmp/1 responder" : "sdmp/1 initiator";
    to_sign.insert(to_sign.end(), label.begin(), label.end());
    to_sign.insert(to_sign.end(), header.begin(), header.end());
    to_sign.insert(to_sign.end(), own_fp.begin(), own_fp.end());
    to_sign.insert(to_sign.end(), c.signed_receiver_fp.begin(), c.signed_receiver_fp.end());
    put_u64(to_sign, c.timestamp);
    if (c.initiator_hash)
        to_sign.insert(to_sign.end(), c.initiator_hash->begin(), c.initiator_hash->end());
    auto sig = p.sign(c.signer->sign_key(), to_sign);
    if (c.corrupt_signature)
        sig[10] ^= 0x01;
    if (c.edit_signature)
        c.edit_signature(sig);

    Bytes body(own_fp.begin(), own_fp.end());
    put_u64(body, c.timestamp);
    body.insert(body.end(), sig.begin(), sig.end());
    REQUIRE(body.size() == 104);

    // protocol.md §3.2
    Bytes info = {'s', 'd', 'm', 'p', '/', '1', ' ', 's', 'e', 'a', 'l'};
    info.insert(info.end(), c.seal_to->dh_public.begin(), c.seal_to->dh_public.end());
    crypto::SecretBytes key(32);
    p.hkdf(header, es.view(), info, key.span());
    crypto::Tag tag{};
    const auto aead = c.suite == 2 ? crypto::AeadAlgorithm::chacha20_poly1305
                                   : crypto::AeadAlgorithm::aes_256_gcm;
    p.make_sealer(aead, key.view())->seal(crypto::Nonce{}, header, body, tag);

    Bytes msg = header;
    msg.insert(msg.end(), body.begin(), body.end());
    msg.insert(msg.end(), tag.begin(), tag.end());
    return msg;
}

// An initiator message from `from` to `to`, valid unless the caller changes a field.
inline Craft hello_craft(const crypto::Identity& from, const crypto::Identity& to) {
    Craft c;
    c.signer = &from;
    c.signed_receiver_fp = to.fingerprint().bytes();
    c.seal_to = &to.public_identity();
    return c;
}

}  // namespace sdmp::test
