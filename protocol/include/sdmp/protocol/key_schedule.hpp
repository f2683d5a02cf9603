// Key derivations of protocol.md §3.2 (seal key), §4 (session keys) and §5.4 (key update).
#pragma once

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/protocol/wire.hpp"

namespace sdmp::protocol {

// Traffic keys for one established connection, seen from one side.
struct SessionKeys {
    crypto::SecretBytes send_key;      // 32 bytes
    crypto::SecretBytes receive_key;   // 32 bytes
    crypto::Digest transcript_hash{};  // SHA-256(initiator message || responder message)
};

// seal_key = HKDF(salt = header, ikm = DH(eph, receiver static), info = "sdmp/1 seal" ||
// receiver_dh_public)
crypto::SecretBytes derive_seal_key(crypto::CryptoProvider& provider, ByteView header,
                                    const crypto::SecretBytes& shared,
                                    const crypto::DhPublic& receiver_dh_public);

// okm = HKDF(salt = transcript hash, ikm = DH(eph_i, eph_r), info = "sdmp/1 session keys", 64);
// okm[0..32) protects initiator→responder, okm[32..64) responder→initiator.
SessionKeys derive_session_keys(crypto::CryptoProvider& provider, const crypto::SecretBytes& shared,
                                const crypto::Digest& transcript_hash, Role own_role);

// next = HKDF(salt = empty, ikm = key, info = "sdmp/1 key update", 32)
crypto::SecretBytes next_traffic_key(crypto::CryptoProvider& provider,
                                     const crypto::SecretBytes& key);

}  // namespace sdmp::protocol
