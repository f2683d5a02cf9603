// Every refusal past the prefix check costs exactly one full signature verification
// (protocol.md §3.5, last paragraph): a prober must not learn from the time to `nope` whether
// the seal opened, whether the signer is known, or whether the signature was well formed.
//
// Ed25519 verifiers reject a signature whose S is not below the group order L before doing
// any curve arithmetic, and a verification under the signer's key and under the dummy key are
// otherwise the same work. So "one full verification" is checked as: exactly one verify()
// call, and the signature passed to it is canonical (S < L). Which key and signature are used
// is checked as well, against the rule §3.5 states.
#include <random>
#include <vector>

#include "sdmp/protocol/replay_cache.hpp"
#include "test_handshake_support.hpp"

using namespace sdmp;
using namespace sdmp::test;

namespace {

// RFC 8032 §7.1, TEST 1: the public key and the signature of the empty message. protocol.md
// §3.5 names them as the dummy pair.
constexpr crypto::SignPublic k_rfc8032_test1_public = {
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
constexpr crypto::Signature k_rfc8032_test1_signature = {
    0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80, 0x6e, 0x82, 0x8a,
    0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73, 0xe0, 0x65, 0x22, 0x49, 0x01, 0x55,
    0x5f, 0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b, 0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b,
    0xd2, 0x5b, 0xf5, 0xf0, 0x59, 0x5b, 0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b,
};

// L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 §5.1), little-endian.
constexpr std::array<std::uint8_t, 32> k_group_order = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

// RFC 8032 §5.1.7 step 1: S (the second half, little-endian) must be below L.
bool canonical(const crypto::Signature& sig) {
    for (std::size_t i = 32; i-- > 0;) {
        if (sig[32 + i] != k_group_order[i])
            return sig[32 + i] < k_group_order[i];
    }
    return false;  // S == L
}

struct VerifyCall {
    crypto::SignPublic key{};
    crypto::Signature signature{};
    bool canonical = false;
};

// The default provider, with every verify() call recorded.
class CountingProvider final : public crypto::CryptoProvider {
  public:
    std::vector<VerifyCall> verifies;

    std::string_view name() const noexcept override { return inner_.name(); }
    void random(MutableByteView out) override { inner_.random(out); }
    crypto::DhKeyPair dh_generate() override { return inner_.dh_generate(); }
    std::error_code dh_from_private(ByteView private_key, crypto::DhKeyPair& out) override {
        return inner_.dh_from_private(private_key, out);
    }
    std::error_code dh_agree(const crypto::SecretBytes& private_key, ByteView peer_public,
                             crypto::SecretBytes& shared_out) override {
        return inner_.dh_agree(private_key, peer_public, shared_out);
    }
    crypto::SignKeyPair sign_generate() override { return inner_.sign_generate(); }
    std::error_code sign_from_seed(ByteView seed, crypto::SignKeyPair& out) override {
        return inner_.sign_from_seed(seed, out);
    }
    crypto::Signature sign(const crypto::SignKeyPair& key, ByteView message) override {
        return inner_.sign(key, message);
    }
    bool verify(const crypto::SignPublic& public_key, ByteView message,
                const crypto::Signature& signature) override {
        verifies.push_back({public_key, signature, canonical(signature)});
        return inner_.verify(public_key, message, signature);
    }
    crypto::Digest sha256(ByteView data) override { return inner_.sha256(data); }
    crypto::Digest sha256(std::span<const ByteView> parts) override { return inner_.sha256(parts); }
    void hkdf(ByteView salt, ByteView ikm, ByteView info, MutableByteView out) override {
        inner_.hkdf(salt, ikm, info, out);
    }
    std::unique_ptr<crypto::AeadSealer> make_sealer(crypto::AeadAlgorithm algorithm,
                                                    ByteView key) override {
        return inner_.make_sealer(algorithm, key);
    }
    std::unique_ptr<crypto::AeadOpener> make_opener(crypto::AeadAlgorithm algorithm,
                                                    ByteView key) override {
        return inner_.make_opener(algorithm, key);
    }
    bool equal(ByteView a, ByteView b) const noexcept override { return inner_.equal(a, b); }

  private:
    crypto::CryptoProvider& inner_ = crypto::default_provider();
};

// Signature edits; each records the signature that went into the body in `sent`.
std::function<void(crypto::Signature&)> keep(crypto::Signature& sent) {
    return [&sent](crypto::Signature& sig) { sent = sig; };
}

std::function<void(crypto::Signature&)> set_s(crypto::Signature& sent,
                                              const std::array<std::uint8_t, 32>& s) {
    return [&sent, s](crypto::Signature& sig) {
        std::copy(s.begin(), s.end(), sig.begin() + 32);
        sent = sig;
    };
}

std::array<std::uint8_t, 32> all_ff() {
    std::array<std::uint8_t, 32> s{};
    s.fill(0xff);
    return s;
}

// Random R, and S < 2^252 < L: well formed, but not a signature of anything.
std::function<void(crypto::Signature&)> random_canonical(crypto::Signature& sent) {
    return [&sent](crypto::Signature& sig) {
        std::mt19937 rng(20240917);
        for (auto& b : sig)
            b = static_cast<std::uint8_t>(rng());
        sig[63] &= 0x0f;
        sent = sig;
    };
}

// Which pair §3.5 says is verified.
enum class Verified { received, dummy };

void check_one_full_verification(const CountingProvider& counting, Verified expected,
                                 const crypto::SignPublic& signer_key,
                                 const crypto::Signature& sent) {
    REQUIRE(counting.verifies.size() == 1);
    const VerifyCall& call = counting.verifies.front();
    CHECK(call.canonical);
    // Compared as hex so that a failure prints readably.
    if (expected == Verified::received) {
        CHECK(to_hex(call.key) == to_hex(signer_key));
        CHECK(to_hex(call.signature) == to_hex(sent));
    } else {
        CHECK(to_hex(call.key) == to_hex(k_rfc8032_test1_public));
        CHECK(to_hex(call.signature) == to_hex(k_rfc8032_test1_signature));
    }
}

}  // namespace

TEST_CASE("the test's canonical check follows RFC 8032", "[handshake][work]") {
    crypto::Signature sig{};
    CHECK(canonical(sig));  // S = 0
    std::copy(k_group_order.begin(), k_group_order.end(), sig.begin() + 32);
    CHECK_FALSE(canonical(sig));  // S = L
    sig[32] = 0xec;
    CHECK(canonical(sig));  // S = L - 1
    sig[32] = 0xee;
    CHECK_FALSE(canonical(sig));  // S = L + 1
    CHECK(canonical(k_rfc8032_test1_signature));
    CHECK(provider().verify(k_rfc8032_test1_public, ByteView{}, k_rfc8032_test1_signature));
}

TEST_CASE("every responder refusal past the prefix costs one full verification",
          "[handshake][work]") {
    World w;
    CountingProvider counting;
    protocol::ReplayCache cache;
    auto c = hello_craft(w.alice, w.bob);
    crypto::Signature sent{};
    c.edit_signature = keep(sent);
    const crypto::SignPublic& alice_key = w.alice.public_identity().sign_public;

    auto verdict = [&](ByteView hello) {
        auto config = w.config(w.bob, w.bob_trust);
        config.provider = &counting;
        config.replay_cache = &cache;
        auto responder = HandshakeState::responder(std::move(config));
        counting.verifies.clear();
        const auto a = respond(responder, hello);
        const auto* f = std::get_if<action::Failed>(&a);
        REQUIRE(f != nullptr);
        CHECK(f->reply == nope_bytes());
        return f->reason;
    };

    SECTION("seal_failed") {
        c.seal_to = &w.carol.public_identity();
        CHECK(verdict(craft(c)) == HandshakeError::seal_failed);
        check_one_full_verification(counting, Verified::dummy, alice_key, sent);
    }
    SECTION("low_order_point (the seal opens under es = 0)") {
        c.raw_ephemeral = crypto::DhPublic{};
        c.edit_signature = set_s(sent, all_ff());
        CHECK(verdict(craft(c)) == HandshakeError::low_order_point);
        check_one_full_verification(counting, Verified::dummy, alice_key, sent);
    }
    SECTION("unknown_peer, a real signature") {
        c.signer = &w.mallory;
        CHECK(verdict(craft(c)) == HandshakeError::unknown_peer);
        check_one_full_verification(counting, Verified::dummy, alice_key, sent);
    }
    SECTION("unknown_peer, non-canonical S: the first failure counts") {
        c.signer = &w.mallory;
        c.edit_signature = set_s(sent, all_ff());
        CHECK(verdict(craft(c)) == HandshakeError::unknown_peer);
        check_one_full_verification(counting, Verified::dummy, alice_key, sent);
    }
    SECTION("bad_signature, random canonical signature") {
        c.edit_signature = random_canonical(sent);
        CHECK(verdict(craft(c)) == HandshakeError::bad_signature);
        check_one_full_verification(counting, Verified::received, alice_key, sent);
    }
    SECTION("bad_signature, S all 0xff") {
        c.edit_signature = set_s(sent, all_ff());
        CHECK(verdict(craft(c)) == HandshakeError::bad_signature);
        check_one_full_verification(counting, Verified::dummy, alice_key, sent);
    }
    SECTION("bad_signature, S = L exactly") {
        c.edit_signature = set_s(sent, k_group_order);
        CHECK(verdict(craft(c)) == HandshakeError::bad_signature);
        check_one_full_verification(counting, Verified::dummy, alice_key, sent);
    }
    SECTION("bad_signature, non-canonical S and a skewed clock: the first failure counts") {
        c.timestamp = k_now + 500'000;
        c.edit_signature = set_s(sent, k_group_order);
        CHECK(verdict(craft(c)) == HandshakeError::bad_signature);
        check_one_full_verification(counting, Verified::dummy, alice_key, sent);
    }
    SECTION("clock_skew") {
        c.timestamp = k_now + 500'000;
        CHECK(verdict(craft(c)) == HandshakeError::clock_skew);
        check_one_full_verification(counting, Verified::received, alice_key, sent);
    }
    SECTION("replay") {
        const Bytes hello = craft(c);
        {
            auto config = w.config(w.bob, w.bob_trust);
            config.replay_cache = &cache;
            auto first = HandshakeState::responder(std::move(config));
            REQUIRE(std::holds_alternative<action::Send>(respond(first, hello)));
        }
        CHECK(verdict(hello) == HandshakeError::replay);
        check_one_full_verification(counting, Verified::received, alice_key, sent);
    }
}

TEST_CASE("every initiator refusal past the prefix costs one full verification",
          "[handshake][work]") {
    World w;
    CountingProvider counting;
    auto config = w.fixed_config(w.alice, w.alice_trust, 0x31);
    config.provider = &counting;
    const bool calls_bob = GENERATE(true, false);
    INFO("alice calls " << (calls_bob ? "bob" : "carol"));
    const crypto::Identity& target = calls_bob ? w.bob : w.carol;
    const crypto::Identity& other = calls_bob ? w.carol : w.bob;  // trusted, but not called
    auto initiator = HandshakeState::initiator(std::move(config), target.fingerprint());
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    CHECK(std::holds_alternative<action::Need>(initiator.next()));

    // A reply from `target` unless a section changes the signer.
    Craft c;
    c.role = 2;
    c.signer = &target;
    c.signed_receiver_fp = w.alice.fingerprint().bytes();
    c.seal_to = &w.alice.public_identity();
    c.initiator_hash = provider().sha256(hello);
    c.ephemeral_private = fixed_secret(0x32);
    crypto::Signature sent{};
    c.edit_signature = keep(sent);
    const crypto::SignPublic& target_key = target.public_identity().sign_public;

    auto verdict = [&](ByteView reply) {
        counting.verifies.clear();
        initiator.feed(reply);
        const auto f = expect<action::Failed>(initiator.next());
        CHECK(f.reply == nope_bytes());
        return f.reason;
    };

    SECTION("seal_failed") {
        c.seal_to = &w.bob.public_identity();
        CHECK(verdict(craft(c)) == HandshakeError::seal_failed);
        check_one_full_verification(counting, Verified::dummy, target_key, sent);
    }
    SECTION("unknown_peer") {
        c.signer = &w.mallory;
        c.edit_signature = set_s(sent, all_ff());
        CHECK(verdict(craft(c)) == HandshakeError::unknown_peer);
        check_one_full_verification(counting, Verified::dummy, target_key, sent);
    }
    SECTION("wrong_responder, a real signature") {
        c.signer = &other;
        CHECK(verdict(craft(c)) == HandshakeError::wrong_responder);
        check_one_full_verification(counting, Verified::dummy, target_key, sent);
    }
    SECTION("wrong_responder, non-canonical S") {
        c.signer = &other;
        c.edit_signature = set_s(sent, all_ff());
        CHECK(verdict(craft(c)) == HandshakeError::wrong_responder);
        check_one_full_verification(counting, Verified::dummy, target_key, sent);
    }
    SECTION("bad_signature, random canonical signature") {
        c.edit_signature = random_canonical(sent);
        CHECK(verdict(craft(c)) == HandshakeError::bad_signature);
        check_one_full_verification(counting, Verified::received, target_key, sent);
    }
    SECTION("bad_signature, S = L exactly") {
        c.edit_signature = set_s(sent, k_group_order);
        CHECK(verdict(craft(c)) == HandshakeError::bad_signature);
        check_one_full_verification(counting, Verified::dummy, target_key, sent);
    }
    SECTION("clock_skew") {
        c.timestamp = k_now - 500'000;
        CHECK(verdict(craft(c)) == HandshakeError::clock_skew);
        check_one_full_verification(counting, Verified::received, target_key, sent);
    }
}

TEST_CASE("an accepted message is verified once, under the signer's key", "[handshake][work]") {
    World w;
    CountingProvider counting;
    auto c = hello_craft(w.alice, w.bob);
    crypto::Signature sent{};
    c.edit_signature = keep(sent);
    auto config = w.config(w.bob, w.bob_trust);
    config.provider = &counting;
    auto responder = HandshakeState::responder(std::move(config));
    CHECK(std::holds_alternative<action::Send>(respond(responder, craft(c))));
    check_one_full_verification(counting, Verified::received, w.alice.public_identity().sign_public,
                                sent);
}
