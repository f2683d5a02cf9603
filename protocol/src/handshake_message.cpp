// Connection message codec: header, sealed body, signatures (protocol.md §3.1–§3.5).
#include "handshake_message.hpp"

#include <algorithm>
#include <cstring>

#include "sdmp/error.hpp"
#include "sdmp/protocol/key_schedule.hpp"

namespace sdmp::protocol::detail {

namespace {

using crypto::SecretBytes;

// The dummy pair of protocol.md §3.5: a valid Ed25519 public key nobody here signs with
// (RFC 8032 §7.1, TEST 1) and its well-formed signature of the empty message. Verifying this
// signature under this key over the rebuilt signed string costs one full verification and never
// succeeds; it stands in for the received signature whenever that one is not to be verified.
constexpr crypto::SignPublic k_dummy_sign_public = {
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};

constexpr crypto::Signature k_dummy_signature = {
    0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80, 0x6e, 0x82, 0x8a,
    0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73, 0xe0, 0x65, 0x22, 0x49, 0x01, 0x55,
    0x5f, 0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b, 0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b,
    0xd2, 0x5b, 0xf5, 0xf0, 0x59, 0x5b, 0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b,
};

// protocol.md §3.1 body layout.
constexpr std::size_t k_body_fingerprint = 0;
constexpr std::size_t k_body_timestamp = 32;
constexpr std::size_t k_body_signature = 40;
constexpr std::size_t k_ephemeral_offset = 8;

// protocol.md §3.4: the longest signed string (responder) is
// label (16) || header (40) || fingerprint (32) || fingerprint (32) || u64 || SHA-256 (32).
constexpr std::size_t k_max_signed_size = 16 + k_header_size + 32 + 32 + 8 + 32;
static_assert(k_label_initiator_signature.size() == 16);
static_assert(k_label_responder_signature.size() == 16);

void put_u64(std::uint8_t* out, std::uint64_t value) noexcept {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<std::uint8_t>(value & 0xff);
        value >>= 8;
    }
}

std::uint64_t get_u64(const std::uint8_t* in) noexcept {
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i)
        value = (value << 8) | in[i];
    return value;
}

// The string a sender signs (protocol.md §3.4). Both roles use
// label || sender header || sender fingerprint || receiver fingerprint || timestamp,
// and the responder appends SHA-256(initiator message).
class SignedData {
  public:
    SignedData(Role signer, ByteView header, const crypto::Digest& sender_fp,
               const crypto::Digest& receiver_fp, std::uint64_t timestamp_ms,
               const crypto::Digest* initiator_message_hash) {
        append(as_bytes(signer == Role::initiator ? k_label_initiator_signature
                                                  : k_label_responder_signature));
        append(header);
        append(sender_fp);
        append(receiver_fp);
        std::array<std::uint8_t, 8> ts{};
        put_u64(ts.data(), timestamp_ms);
        append(ts);
        if (signer == Role::responder && initiator_message_hash != nullptr) {
            append(*initiator_message_hash);
        }
    }
    ByteView view() const noexcept { return {bytes_.data(), size_}; }

  private:
    void append(ByteView part) noexcept {
        std::memcpy(bytes_.data() + size_, part.data(), part.size());
        size_ += part.size();
    }
    std::array<std::uint8_t, k_max_signed_size> bytes_{};
    std::size_t size_ = 0;
};

crypto::Nonce zero_nonce() noexcept {
    return crypto::Nonce{};
}

// The order of the Ed25519 base point, L = 2^252 + 27742317777372353535851937790883648493
// (RFC 8032 §5.1), little-endian.
constexpr std::array<std::uint8_t, 32> k_group_order = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

// RFC 8032 §5.1.7: S (the signature's second half, little-endian) must be below L. A verifier
// rejects S >= L before any curve arithmetic, so such a signature is never handed to verify()
// (protocol.md §3.5). Computes S - L with a borrow over every byte, without an early exit.
bool has_canonical_s(const crypto::Signature& sig) noexcept {
    unsigned borrow = 0;
    for (std::size_t i = 0; i < k_group_order.size(); ++i) {
        const unsigned diff = unsigned{sig[32 + i]} - unsigned{k_group_order[i]} - borrow;
        borrow = (diff >> 8) & 1u;
    }
    return borrow == 1;  // S - L went negative: S < L
}

}  // namespace

Header make_header(Role sender, crypto::SuiteId suite, const crypto::DhPublic& ephemeral) {
    Header header{};
    std::copy(k_magic.begin(), k_magic.end(), header.begin());
    header[4] = k_version;
    header[5] = static_cast<std::uint8_t>(suite);
    header[6] = static_cast<std::uint8_t>(sender);
    header[7] = 0;  // reserved
    std::copy(ephemeral.begin(), ephemeral.end(), header.begin() + k_ephemeral_offset);
    return header;
}

HandshakeError check_prefix(ByteView prefix, Role expected_sender,
                            std::span<const crypto::SuiteId> accepted) {
    if (prefix.size() < k_prefix_size)
        return HandshakeError::truncated;
    // protocol.md §3.5 step 1, in field order.
    if (!std::equal(k_magic.begin(), k_magic.end(), prefix.begin())) {
        return HandshakeError::bad_magic;
    }
    if (prefix[4] != k_version)
        return HandshakeError::unsupported_version;
    const bool suite_ok = crypto::find_suite(prefix[5]).has_value() &&
                          std::any_of(accepted.begin(), accepted.end(), [&](crypto::SuiteId id) {
                              return static_cast<std::uint8_t>(id) == prefix[5];
                          });
    if (!suite_ok)
        return HandshakeError::unsupported_suite;
    if (prefix[6] != static_cast<std::uint8_t>(expected_sender))
        return HandshakeError::bad_role;
    if (prefix[7] != 0)
        return HandshakeError::malformed;
    return HandshakeError::none;
}

crypto::DhPublic ephemeral_of(ByteView message) {
    crypto::DhPublic eph{};
    std::copy_n(message.begin() + k_ephemeral_offset, eph.size(), eph.begin());
    return eph;
}

std::error_code build_message(crypto::CryptoProvider& provider, const Outgoing& params,
                              ConnectionMessage& out) {
    const Header header = make_header(params.sender, params.suite.id, params.ephemeral->public_key);

    // protocol.md §3.1: fingerprint || timestamp || signature
    std::array<std::uint8_t, k_body_plain_size> body{};
    const crypto::Digest& own_fp = params.self->fingerprint().bytes();
    std::copy(own_fp.begin(), own_fp.end(), body.begin() + k_body_fingerprint);
    put_u64(body.data() + k_body_timestamp, params.timestamp_ms);
    const SignedData to_sign(params.sender, header, own_fp, params.receiver_fingerprint->bytes(),
                             params.timestamp_ms, params.initiator_message_hash);
    const crypto::Signature sig = provider.sign(params.self->sign_key(), to_sign.view());
    std::copy(sig.begin(), sig.end(), body.begin() + k_body_signature);

    // protocol.md §3.2: es = X25519(sender ephemeral, receiver static)
    SecretBytes es;
    if (auto ec =
            provider.dh_agree(params.ephemeral->private_key, params.receiver->dh_public, es)) {
        crypto::secure_wipe(body.data(), body.size());
        return ec;
    }
    const SecretBytes seal_key = derive_seal_key(provider, header, es, params.receiver->dh_public);
    crypto::Tag tag{};
    provider.make_sealer(params.suite.aead, seal_key.view())->seal(zero_nonce(), header, body, tag);

    auto it = std::copy(header.begin(), header.end(), out.begin());
    it = std::copy(body.begin(), body.end(), it);
    std::copy(tag.begin(), tag.end(), it);
    return {};
}

Opened open_message(crypto::CryptoProvider& provider, const Incoming& params, ByteView message) {
    Opened result;
    auto fail = [&](HandshakeError e) {
        if (result.error == HandshakeError::none)
            result.error = e;
    };
    const ByteView header = message.first(k_header_size);
    const crypto::DhPublic peer_ephemeral = ephemeral_of(message);
    const crypto::DhPublic& own_static = params.self->dh_key().public_key;

    // Step 2: es must not be all zero; the seal must open. On a low-order value we still
    // derive a key (from zeros) and try to open, so the step costs the same either way.
    SecretBytes es;
    if (provider.dh_agree(params.self->dh_key().private_key, peer_ephemeral, es)) {
        fail(HandshakeError::low_order_point);
        es = SecretBytes(crypto::k_dh_shared_size);
    }
    const SecretBytes seal_key = derive_seal_key(provider, header, es, own_static);
    std::array<std::uint8_t, k_body_plain_size> body{};
    std::copy_n(message.begin() + k_header_size, body.size(), body.begin());
    crypto::Tag tag{};
    std::copy_n(message.begin() + k_header_size + k_body_plain_size, tag.size(), tag.begin());
    if (provider.make_opener(params.suite.aead, seal_key.view())
            ->open(zero_nonce(), header, body, tag)) {
        fail(HandshakeError::seal_failed);
    }

    // Step 3: the signer must be trusted (and, for the initiator, the one it asked for).
    crypto::Digest sender_fp{};
    std::copy_n(body.begin() + k_body_fingerprint, sender_fp.size(), sender_fp.begin());
    result.timestamp_ms = get_u64(body.data() + k_body_timestamp);
    crypto::Signature sig{};
    std::copy_n(body.begin() + k_body_signature, sig.size(), sig.begin());

    const crypto::TrustedPeer* peer = nullptr;
    if (result.error == HandshakeError::none) {
        peer = params.trust->find(crypto::Fingerprint(sender_fp));
        if (peer == nullptr) {
            fail(HandshakeError::unknown_peer);
        } else if (params.expected_sender != nullptr &&
                   !provider.equal(peer->fingerprint.bytes(), params.expected_sender->bytes())) {
            fail(HandshakeError::wrong_responder);
        }
    }

    // Step 4: exactly one full verification whatever happened before (protocol.md §3.5). The
    // received signature is verified under the signer's key only when steps 2 and 3 passed and
    // its S is canonical; otherwise the dummy signature under the dummy key, which always fails:
    // a non-canonical S is then bad_signature, and any earlier failure stays the one reported.
    const SignedData signed_data(params.sender, header, sender_fp,
                                 params.self->fingerprint().bytes(), result.timestamp_ms,
                                 params.initiator_message_hash);
    const bool canonical = has_canonical_s(sig);
    const bool check_received = result.error == HandshakeError::none && canonical;
    const crypto::SignPublic& verify_key =
        check_received ? peer->identity.sign_public : k_dummy_sign_public;
    const crypto::Signature& verify_sig = check_received ? sig : k_dummy_signature;
    const bool verified = provider.verify(verify_key, signed_data.view(), verify_sig);
    if (!check_received || !verified)
        fail(HandshakeError::bad_signature);

    // Step 5: clock skew, if enabled.
    if (params.max_clock_skew.has_value()) {
        const std::uint64_t ts = result.timestamp_ms;
        const std::uint64_t diff = ts > params.now_ms ? ts - params.now_ms : params.now_ms - ts;
        const auto skew = params.max_clock_skew->count();
        if (skew < 0 || diff > static_cast<std::uint64_t>(skew))
            fail(HandshakeError::clock_skew);
    }

    if (result.error == HandshakeError::none)
        result.peer = peer;
    return result;
}

}  // namespace sdmp::protocol::detail
