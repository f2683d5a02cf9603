// Key derivations: seal key (protocol.md §3.2), session keys (§4), key update (§5.4).
#include "sdmp/protocol/key_schedule.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace sdmp::protocol {

namespace {

constexpr std::size_t k_key_size = crypto::k_aead_key_size;

}  // namespace

crypto::SecretBytes derive_seal_key(crypto::CryptoProvider& provider, ByteView header,
                                    const crypto::SecretBytes& shared,
                                    const crypto::DhPublic& receiver_dh_public) {
    if (header.size() != k_header_size || shared.size() != crypto::k_dh_shared_size) {
        throw std::invalid_argument("derive_seal_key: wrong input size");
    }
    // protocol.md §3.2: info = "sdmp/1 seal" || receiver_static_public (32)
    std::array<std::uint8_t, k_label_seal.size() + crypto::k_dh_public_size> info{};
    const ByteView label = as_bytes(k_label_seal);
    std::copy(label.begin(), label.end(), info.begin());
    std::copy(receiver_dh_public.begin(), receiver_dh_public.end(),
              info.begin() + static_cast<std::ptrdiff_t>(label.size()));

    crypto::SecretBytes key(k_key_size);
    provider.hkdf(header, shared.view(), info, key.span());
    return key;
}

SessionKeys derive_session_keys(crypto::CryptoProvider& provider, const crypto::SecretBytes& shared,
                                const crypto::Digest& transcript_hash, Role own_role) {
    if (shared.size() != crypto::k_dh_shared_size) {
        throw std::invalid_argument("derive_session_keys: wrong shared secret size");
    }
    // protocol.md §4: okm = HKDF(salt = th, ikm = ee, info = "sdmp/1 session keys", L = 64)
    crypto::SecretBytes okm(2 * k_key_size);
    provider.hkdf(transcript_hash, shared.view(), as_bytes(k_label_session_keys), okm.span());
    crypto::SecretBytes k_ir(okm.view().first(k_key_size));
    crypto::SecretBytes k_ri(okm.view().subspan(k_key_size, k_key_size));

    SessionKeys keys;
    keys.transcript_hash = transcript_hash;
    if (own_role == Role::initiator) {
        keys.send_key = std::move(k_ir);
        keys.receive_key = std::move(k_ri);
    } else {
        keys.send_key = std::move(k_ri);
        keys.receive_key = std::move(k_ir);
    }
    return keys;
}

crypto::SecretBytes next_traffic_key(crypto::CryptoProvider& provider,
                                     const crypto::SecretBytes& key) {
    if (key.size() != k_key_size) {
        throw std::invalid_argument("next_traffic_key: wrong key size");
    }
    // protocol.md §5.4: next_key = HKDF(salt = empty, ikm = key, info = "sdmp/1 key update", 32)
    crypto::SecretBytes next(k_key_size);
    provider.hkdf(ByteView{}, key.view(), as_bytes(k_label_key_update), next.span());
    return next;
}

}  // namespace sdmp::protocol
