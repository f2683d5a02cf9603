// The OpenSSL and Botan providers side by side: what one seals the other opens, signatures and
// key agreement cross over, and the two give the same bytes and the same verdicts on edge
// inputs (low-order and non-canonical points, long inputs, empty inputs).
#include <catch2/catch.hpp>

#if defined(SDMP_HAVE_OPENSSL)

#include <openssl/err.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "sdmp/crypto/bytes.hpp"
#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/error.hpp"

using namespace sdmp;
using namespace sdmp::crypto;

namespace {

Bytes hx(std::string_view hex) {
    Bytes out;
    if (!from_hex(hex, out))
        throw std::invalid_argument("bad hex in test");
    return out;
}

template <typename Array>
Array to_array(ByteView bytes) {
    Array out{};
    if (bytes.size() != out.size())
        throw std::invalid_argument("bad length in test");
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

struct Pair {
    CryptoProvider& botan;
    CryptoProvider& openssl;
};

Pair providers() {
    static const std::unique_ptr<CryptoProvider> openssl = make_openssl_provider();
    return {default_provider(), *openssl};
}

// The two directions of a cross check: (sender, receiver).
std::vector<std::pair<CryptoProvider*, CryptoProvider*>> directions() {
    const Pair p = providers();
    return {{&p.botan, &p.openssl}, {&p.openssl, &p.botan}};
}

// Not secret: test inputs that must be the same for both providers.
Bytes random_bytes(std::size_t n) {
    Bytes out(n);
    default_provider().random(out);
    return out;
}

constexpr AeadAlgorithm k_aeads[] = {AeadAlgorithm::aes_256_gcm, AeadAlgorithm::chacha20_poly1305};

}  // namespace

TEST_CASE("cross: AEAD sealed by one provider opens with the other", "[crypto][cross][aead]") {
    for (const auto& [from, to] : directions()) {
        for (const AeadAlgorithm algorithm : k_aeads) {
            INFO(from->name() << " -> " << to->name() << ", algorithm "
                              << static_cast<int>(algorithm));
            const Bytes key = random_bytes(32);
            auto sealer = from->make_sealer(algorithm, key);
            auto same_side = to->make_sealer(algorithm, key);
            auto opener = to->make_opener(algorithm, key);
            for (std::size_t length : {0, 1, 15, 16, 17, 64, 255, 256, 4096, 65536 + 7}) {
                INFO("length " << length);
                const Nonce nonce = to_array<Nonce>(random_bytes(12));
                const Bytes aad = random_bytes(length % 7 * 5);
                const Bytes plain = random_bytes(length);
                Bytes sealed = plain;
                Tag tag{};
                sealer->seal(nonce, aad, sealed, tag);

                // Same ciphertext and tag from the other provider.
                Bytes resealed = plain;
                Tag retag{};
                same_side->seal(nonce, aad, resealed, retag);
                CHECK(resealed == sealed);
                CHECK(retag == tag);

                Bytes opened = sealed;
                REQUIRE_FALSE(opener->open(nonce, aad, opened, tag));
                CHECK(opened == plain);

                Tag bad = tag;
                bad[15] ^= 0x01;
                opened = sealed;
                CHECK(opener->open(nonce, aad, opened, bad) == errc::authentication_failed);
            }
        }
    }
}

TEST_CASE("cross: Ed25519 keys and signatures are identical and verify across",
          "[crypto][cross][ed25519]") {
    const Pair p = providers();
    for (int i = 0; i < 32; ++i) {
        const Bytes seed = random_bytes(32);
        const Bytes message = random_bytes(static_cast<std::size_t>(i) * 37);
        SignKeyPair kb;
        SignKeyPair ko;
        REQUIRE_FALSE(p.botan.sign_from_seed(seed, kb));
        REQUIRE_FALSE(p.openssl.sign_from_seed(seed, ko));
        CHECK(kb.public_key == ko.public_key);
        const Signature sb = p.botan.sign(kb, message);
        const Signature so = p.openssl.sign(ko, message);
        CHECK(sb == so);  // Ed25519 is deterministic (RFC 8032 §5.1.6)
        CHECK(p.openssl.verify(kb.public_key, message, sb));
        CHECK(p.botan.verify(ko.public_key, message, so));
    }
    for (const auto& [from, to] : directions()) {
        INFO(from->name() << " -> " << to->name());
        const SignKeyPair key = from->sign_generate();
        const Signature sig = from->sign(key, as_bytes("cross"));
        CHECK(to->verify(key.public_key, as_bytes("cross"), sig));
        CHECK_FALSE(to->verify(key.public_key, as_bytes("crosS"), sig));
    }
}

TEST_CASE("cross: Ed25519 verdicts agree on edge-case keys and signatures",
          "[crypto][cross][ed25519]") {
    const Pair p = providers();
    // Small-order points, non-canonical encodings (y >= p) and a point not on the curve.
    const char* keys[] = {
        "0100000000000000000000000000000000000000000000000000000000000000",  // identity
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // order 2
        "0000000000000000000000000000000000000000000000000000000000000000",  // order 4
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  // order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p + 1
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "0200000000000000000000000000000000000000000000000000000000000000",  // not on the curve
    };
    const SignKeyPair real = p.botan.sign_generate();
    const Bytes message{0x65, 0x64, 0x67, 0x65};
    const Signature good = p.botan.sign(real, message);
    std::vector<Signature> signatures{good, Signature{}};
    // R = the identity and S = 0: valid under the identity key for a cofactorless check.
    signatures.push_back(to_array<Signature>(
        hx("0100000000000000000000000000000000000000000000000000000000000000"
           "0000000000000000000000000000000000000000000000000000000000000000")));
    Signature s_plus_l = good;  // S + L, non-canonical S
    {
        const Bytes l = hx("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        unsigned carry = 0;
        for (std::size_t i = 0; i < 32; ++i) {
            const unsigned sum = s_plus_l[32 + i] + l[i] + carry;
            s_plus_l[32 + i] = static_cast<std::uint8_t>(sum);
            carry = sum >> 8;
        }
    }
    signatures.push_back(s_plus_l);
    for (std::size_t bit : {0u, 255u, 256u, 511u}) {
        Signature flipped = good;
        flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        signatures.push_back(flipped);
    }

    std::vector<SignPublic> publics{real.public_key};
    for (const char* k : keys)
        publics.push_back(to_array<SignPublic>(hx(k)));
    for (const SignPublic& pub : publics) {
        for (std::size_t i = 0; i < signatures.size(); ++i) {
            INFO("key " << to_hex(pub) << ", signature " << i);
            CHECK(p.botan.verify(pub, message, signatures[i]) ==
                  p.openssl.verify(pub, message, signatures[i]));
        }
    }
    CHECK(p.openssl.verify(real.public_key, message, good));
}

TEST_CASE("cross: X25519 public values, agreement and refusals are identical",
          "[crypto][cross][x25519]") {
    const Pair p = providers();
    for (int i = 0; i < 32; ++i) {
        const Bytes secret = random_bytes(32);
        DhKeyPair kb;
        DhKeyPair ko;
        REQUIRE_FALSE(p.botan.dh_from_private(secret, kb));
        REQUIRE_FALSE(p.openssl.dh_from_private(secret, ko));
        CHECK(kb.public_key == ko.public_key);
    }
    for (const auto& [from, to] : directions()) {
        INFO(from->name() << " <-> " << to->name());
        const DhKeyPair a = from->dh_generate();
        const DhKeyPair b = to->dh_generate();
        SecretBytes ab;
        SecretBytes ba;
        REQUIRE_FALSE(from->dh_agree(a.private_key, b.public_key, ab));
        REQUIRE_FALSE(to->dh_agree(b.private_key, a.public_key, ba));
        CHECK(to_hex(ab.view()) == to_hex(ba.view()));
    }

    // Any 32 bytes are a u-coordinate: random ones (top bit set or not, on the twist or not),
    // non-canonical ones (u >= p) and every low-order point with its top-bit twin.
    std::vector<Bytes> peers;
    for (int i = 0; i < 32; ++i)
        peers.push_back(random_bytes(32));
    for (const char* u : {
             "0000000000000000000000000000000000000000000000000000000000000000",
             "0100000000000000000000000000000000000000000000000000000000000000",
             "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
             "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
             "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
             "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
             "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
             "0900000000000000000000000000000000000000000000000000000000000000",
             "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
         }) {
        peers.push_back(hx(u));
        Bytes high = hx(u);
        high[31] |= 0x80;
        peers.push_back(high);
    }
    const SecretBytes own(random_bytes(32));
    int refused = 0;
    for (const Bytes& peer : peers) {
        INFO("peer " << to_hex(peer));
        SecretBytes sb;
        SecretBytes so;
        const std::error_code eb = p.botan.dh_agree(own, peer, sb);
        const std::error_code eo = p.openssl.dh_agree(own, peer, so);
        CHECK(eb == eo);
        if (!eb && !eo)
            CHECK(to_hex(sb.view()) == to_hex(so.view()));
        if (eo == errc::low_order_point)
            ++refused;
    }
    // 0, 1, two points of order 8, p - 1, p, p + 1: each with its top-bit twin.
    CHECK(refused == 14);
}

TEST_CASE("cross: SHA-256 and HKDF agree on every size, empty inputs included",
          "[crypto][cross][hash]") {
    const Pair p = providers();
    for (std::size_t n : {0, 1, 55, 56, 63, 64, 65, 1000, 100000}) {
        const Bytes data = random_bytes(n);
        CHECK(p.botan.sha256(data) == p.openssl.sha256(data));
        const ByteView halves[] = {ByteView(data).first(n / 2), ByteView(data).subspan(n / 2)};
        CHECK(p.openssl.sha256(std::span<const ByteView>(halves)) == p.botan.sha256(data));
    }
    for (std::size_t salt : {0, 1, 32, 64, 200}) {
        for (std::size_t ikm : {0, 1, 32, 100}) {
            for (std::size_t info : {0, 1, 40, 2000}) {
                for (std::size_t out : {1, 31, 32, 33, 64, 255 * 32}) {
                    INFO("salt " << salt << " ikm " << ikm << " info " << info << " out " << out);
                    const Bytes s = random_bytes(salt);
                    const Bytes k = random_bytes(ikm);
                    const Bytes i = random_bytes(info);
                    Bytes ob(out);
                    Bytes oo(out);
                    p.botan.hkdf(s, k, i, ob);
                    p.openssl.hkdf(s, k, i, oo);
                    CHECK(ob == oo);
                }
            }
        }
    }
    Bytes too_long(255 * 32 + 1);
    CHECK_THROWS_AS(p.openssl.hkdf({}, as_bytes("k"), {}, too_long), std::invalid_argument);
    p.openssl.hkdf({}, as_bytes("k"), {}, MutableByteView{});  // empty output is allowed
}

TEST_CASE("openssl: failures leave no queued errors", "[crypto][cross][openssl]") {
    CryptoProvider& p = providers().openssl;
    ERR_clear_error();
    for (const AeadAlgorithm algorithm : k_aeads) {
        INFO("algorithm " << static_cast<int>(algorithm));
        const Bytes key = random_bytes(32);
        Bytes buffer(1000, 0x5a);
        Tag tag{};
        p.make_sealer(algorithm, key)->seal(Nonce{}, {}, buffer, tag);
        tag[0] ^= 1;
        CHECK(p.make_opener(algorithm, key)->open(Nonce{}, {}, buffer, tag) ==
              errc::authentication_failed);
        CHECK(ERR_peek_error() == 0);
    }
    SecretBytes out;
    CHECK(p.dh_agree(SecretBytes(random_bytes(32)), Bytes(32, 0), out) == errc::low_order_point);
    CHECK(ERR_peek_error() == 0);
    const SignKeyPair key = p.sign_generate();
    CHECK_FALSE(p.verify(key.public_key, as_bytes("y"), p.sign(key, as_bytes("x"))));
    CHECK(ERR_peek_error() == 0);
    try {
        Bytes huge_info(40000);
        Bytes okm(32);
        p.hkdf({}, as_bytes("k"), huge_info, okm);
    } catch (const std::system_error& e) {
        // OpenSSL 3.0 caps HKDF info at 32 KiB; Botan does not (see openssl_provider.cpp).
        CHECK(e.code() == errc::crypto_failure);
    }
    CHECK(ERR_peek_error() == 0);
}

#endif  // SDMP_HAVE_OPENSSL
