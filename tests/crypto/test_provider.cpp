// Known-answer and behaviour tests for every CryptoProvider this build has (Botan, and OpenSSL
// with SDMP_WITH_OPENSSL), the error category, hex helpers and suites. Each provider test runs
// once per provider; failures name the provider.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "sdmp/crypto/bytes.hpp"
#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/secret_bytes.hpp"
#include "sdmp/crypto/suite.hpp"
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

// The providers under test, the default (Botan) first.
std::vector<CryptoProvider*> all_providers() {
    std::vector<CryptoProvider*> list{&default_provider()};
#if defined(SDMP_HAVE_OPENSSL)
    static const std::unique_ptr<CryptoProvider> openssl = make_openssl_provider();
    list.push_back(openssl.get());
#endif
    return list;
}

template <std::size_t N>
std::array<std::uint8_t, N> hx_array(std::string_view hex) {
    const Bytes bytes = hx(hex);
    if (bytes.size() != N)
        throw std::invalid_argument("bad hex length in test");
    std::array<std::uint8_t, N> out{};
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

struct AeadVector {
    AeadAlgorithm algorithm;
    const char* key;
    const char* nonce;
    const char* aad;
    const char* plaintext;
    const char* ciphertext;
    const char* tag;
};

// McGrew-Viega GCM test case 16 (AES-256, 96-bit IV, 60-byte plaintext with AAD), and
// RFC 8439 §2.8.2. Both were cross-checked with an independent implementation.
const std::string k_sunscreen_hex = to_hex(as_bytes(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it."));

std::vector<AeadVector> aead_vectors() {
    return {
        {AeadAlgorithm::aes_256_gcm,
         "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
         "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
         "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
         "49a6b525b16aedf5aa0de657ba637b39",
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
         "56828838c5f61e6393ba7a0abcc9f662",
         "76fc6ece0f4e1768cddf8853bb2d551b"},
        {AeadAlgorithm::chacha20_poly1305,
         "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
         "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7", k_sunscreen_hex.c_str(),
         "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69"
         "da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad6759"
         "45585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
         "1ae10b594f09e26a7e902ecbd0600691"},
    };
}

}  // namespace

TEST_CASE("error category names sdmp and describes every code", "[crypto][error]") {
    const std::error_code ec = errc::low_order_point;
    CHECK(std::string(ec.category().name()) == "sdmp");
    CHECK(ec.message().find("low-order") != std::string::npos);
    CHECK(std::error_code(errc::file_permissions).message().find("group or others") !=
          std::string::npos);
    CHECK(std::error_code(errc::bad_padding).message() == "record padding is not zero");
    CHECK(std::error_code(static_cast<errc>(999)).message().find("999") != std::string::npos);
    CHECK_FALSE(std::error_code(errc::ok));
    CHECK(ec == errc::low_order_point);
}

TEST_CASE("hex round trip and rejection", "[crypto][bytes]") {
    const Bytes data{0x00, 0x01, 0xab, 0xff, 0x7f};
    CHECK(to_hex(data) == "0001abff7f");
    Bytes back;
    REQUIRE(from_hex("0001ABff7F", back));
    CHECK(back == data);
    Bytes untouched{1, 2, 3};
    CHECK_FALSE(from_hex("abc", untouched));
    CHECK_FALSE(from_hex("zz", untouched));
    CHECK_FALSE(from_hex("0g", untouched));
    CHECK(untouched == Bytes{1, 2, 3});
    REQUIRE(from_hex("", back));
    CHECK(back.empty());
    CHECK(to_hex({}).empty());
}

TEST_CASE("secret bytes are wiped and moved-from empty", "[crypto][secret]") {
    SecretBytes a(hx("0102030405"));
    SecretBytes b = std::move(a);
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the contract says moved-from is empty
    CHECK(b.size() == 5);
    b.wipe();
    CHECK(std::all_of(b.view().begin(), b.view().end(), [](std::uint8_t v) { return v == 0; }));
    std::array<std::uint8_t, 4> raw{9, 9, 9, 9};
    secure_wipe(raw.data(), raw.size());
    CHECK(raw == std::array<std::uint8_t, 4>{});
}

TEST_CASE("suites 1 and 2 are known, 1 is the default", "[crypto][suite]") {
    REQUIRE(all_suites().size() == 2);
    CHECK(default_suite().id == SuiteId::x25519_ed25519_aes256gcm_sha256);
    CHECK(default_suite().aead == AeadAlgorithm::aes_256_gcm);
    const auto two = find_suite(2);
    REQUIRE(two);
    CHECK(two->aead == AeadAlgorithm::chacha20_poly1305);
    CHECK_FALSE(find_suite(0));
    CHECK_FALSE(find_suite(3));
    CHECK_FALSE(find_suite(255));
}

TEST_CASE("X25519 RFC 7748 vectors", "[crypto][x25519][kat]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());

    SECTION("§5.2 scalar multiplication") {
        const SecretBytes scalar(
            hx("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"));
        SecretBytes out;
        REQUIRE_FALSE(p.dh_agree(
            scalar, hx("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"), out));
        CHECK(to_hex(out.view()) ==
              "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    }

    SECTION("§6.1 Diffie-Hellman") {
        DhKeyPair alice;
        DhKeyPair bob;
        REQUIRE_FALSE(p.dh_from_private(
            hx("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"), alice));
        REQUIRE_FALSE(p.dh_from_private(
            hx("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"), bob));
        CHECK(to_hex(alice.public_key) ==
              "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        CHECK(to_hex(bob.public_key) ==
              "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        SecretBytes k1;
        SecretBytes k2;
        REQUIRE_FALSE(p.dh_agree(alice.private_key, bob.public_key, k1));
        REQUIRE_FALSE(p.dh_agree(bob.private_key, alice.public_key, k2));
        CHECK(to_hex(k1.view()) ==
              "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        CHECK(p.equal(k1.view(), k2.view()));
    }
}

TEST_CASE("X25519 generated pairs agree, low-order and bad sizes are rejected",
          "[crypto][x25519]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    const DhKeyPair a = p.dh_generate();
    const DhKeyPair b = p.dh_generate();
    CHECK(a.private_key.size() == 32);
    CHECK(a.public_key != b.public_key);
    SecretBytes s1;
    SecretBytes s2;
    REQUIRE_FALSE(p.dh_agree(a.private_key, b.public_key, s1));
    REQUIRE_FALSE(p.dh_agree(b.private_key, a.public_key, s2));
    CHECK(p.equal(s1.view(), s2.view()));

    // Low-order points (RFC 7748 §6.1 note): u = 0, u = 1 and a point of order 8.
    for (const char* low : {"0000000000000000000000000000000000000000000000000000000000000000",
                            "0100000000000000000000000000000000000000000000000000000000000000",
                            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"}) {
        SecretBytes out;
        CHECK(p.dh_agree(a.private_key, hx(low), out) == errc::low_order_point);
    }
    SecretBytes out;
    CHECK(p.dh_agree(a.private_key, hx("0102"), out) == errc::invalid_key);
    CHECK(p.dh_agree(SecretBytes(16), b.public_key, out) == errc::invalid_key);
    DhKeyPair pair;
    CHECK(p.dh_from_private(hx("00"), pair) == errc::invalid_key);
}

TEST_CASE("Ed25519 RFC 8032 test 1", "[crypto][ed25519][kat]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    SignKeyPair key;
    REQUIRE_FALSE(p.sign_from_seed(
        hx("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"), key));
    CHECK(to_hex(key.public_key) ==
          "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const Signature sig = p.sign(key, {});
    CHECK(to_hex(sig) ==
          "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
          "1cf9b46bd25bf5f0595bbe24655141438e7a100b");
    CHECK(p.verify(key.public_key, {}, sig));
}

TEST_CASE("Ed25519 verify returns false for every bad input", "[crypto][ed25519]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    const SignKeyPair key = p.sign_generate();
    const Bytes message = hx("48656c6c6f");
    const Signature sig = p.sign(key, message);
    REQUIRE(p.verify(key.public_key, message, sig));

    Bytes other = message;
    other[0] ^= 1;
    CHECK_FALSE(p.verify(key.public_key, other, sig));

    Signature bad = sig;
    bad[10] ^= 0x20;
    CHECK_FALSE(p.verify(key.public_key, message, bad));

    // S >= L (non-canonical) must not verify.
    Signature big_s = sig;
    std::fill(big_s.begin() + 32, big_s.end(), std::uint8_t{0xff});
    CHECK_FALSE(p.verify(key.public_key, message, big_s));
    // S + L verifies as an equation but is a second encoding of the signature; S = L likewise.
    const Bytes order = hx("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    Signature s_plus_l = sig;
    unsigned carry = 0;
    for (std::size_t i = 0; i < 32; ++i) {
        const unsigned sum = s_plus_l[32 + i] + order[i] + carry;
        s_plus_l[32 + i] = static_cast<std::uint8_t>(sum);
        carry = sum >> 8;
    }
    CHECK_FALSE(p.verify(key.public_key, message, s_plus_l));
    Signature s_is_l = sig;
    std::copy(order.begin(), order.end(), s_is_l.begin() + 32);
    CHECK_FALSE(p.verify(key.public_key, message, s_is_l));

    // Public keys that do not decode to a point, and another signer's key.
    SignPublic junk{};
    junk.fill(0xff);
    CHECK_FALSE(p.verify(junk, message, sig));
    CHECK_FALSE(p.verify(SignPublic{}, message, sig));
    CHECK_FALSE(p.verify(p.sign_generate().public_key, message, sig));
    CHECK_FALSE(p.verify(key.public_key, message, Signature{}));

    SignKeyPair k;
    CHECK(p.sign_from_seed(hx("0102"), k) == errc::invalid_key);
}

TEST_CASE("SHA-256 and HKDF known answers", "[crypto][hash][kat]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    CHECK(to_hex(p.sha256(as_bytes("abc"))) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(to_hex(p.sha256(ByteView{})) ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const ByteView parts[] = {as_bytes("a"), as_bytes(""), as_bytes("bc")};
    CHECK(p.sha256(std::span<const ByteView>(parts)) == p.sha256(as_bytes("abc")));

    // RFC 5869 test case 1.
    std::array<std::uint8_t, 42> okm{};
    p.hkdf(hx("000102030405060708090a0b0c"), hx("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
           hx("f0f1f2f3f4f5f6f7f8f9"), okm);
    CHECK(to_hex(okm) ==
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");

    // RFC 5869 test case 3: empty salt and info.
    std::array<std::uint8_t, 42> okm3{};
    p.hkdf({}, hx("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), {}, okm3);
    CHECK(to_hex(okm3) ==
          "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");

    std::vector<std::uint8_t> too_long(255 * 32 + 1);
    CHECK_THROWS_AS(p.hkdf({}, as_bytes("k"), {}, too_long), std::invalid_argument);
}

TEST_CASE("AEAD known answers, in place", "[crypto][aead][kat]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    for (const AeadVector& v : aead_vectors()) {
        INFO("algorithm " << static_cast<int>(v.algorithm));
        const Bytes key = hx(v.key);
        const Nonce nonce = hx_array<12>(v.nonce);
        const Bytes aad = hx(v.aad);
        Bytes buffer = hx(v.plaintext);

        auto sealer = p.make_sealer(v.algorithm, key);
        Tag tag{};
        sealer->seal(nonce, aad, buffer, tag);
        CHECK(to_hex(buffer) == v.ciphertext);
        CHECK(to_hex(tag) == v.tag);

        auto opener = p.make_opener(v.algorithm, key);
        REQUIRE_FALSE(opener->open(nonce, aad, buffer, tag));
        CHECK(to_hex(buffer) == v.plaintext);

        // Re-seal with the same object gives the same answer (the object resets per message).
        Tag tag2{};
        sealer->seal(nonce, aad, buffer, tag2);
        CHECK(to_hex(buffer) == v.ciphertext);
        CHECK(tag2 == tag);
    }
}

TEST_CASE("AEAD round trip for many lengths and tamper detection", "[crypto][aead]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    for (AeadAlgorithm algorithm : {AeadAlgorithm::aes_256_gcm, AeadAlgorithm::chacha20_poly1305}) {
        INFO("algorithm " << static_cast<int>(algorithm));
        Bytes key(32);
        p.random(key);
        auto sealer = p.make_sealer(algorithm, key);
        auto opener = p.make_opener(algorithm, key);
        const Bytes aad = hx("00000100");
        std::uint64_t counter = 0;
        for (std::size_t length : {0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 4096, 65536 + 7}) {
            INFO("length " << length);
            Nonce nonce{};
            ++counter;
            for (int i = 0; i < 8; ++i) {
                nonce[11 - i] = static_cast<std::uint8_t>(counter >> (8 * i));
            }
            Bytes plain(length);
            p.random(plain);
            Bytes buffer = plain;
            Tag tag{};
            sealer->seal(nonce, aad, buffer, tag);
            if (length >= 16)
                CHECK(buffer != plain);

            Bytes copy = buffer;
            REQUIRE_FALSE(opener->open(nonce, aad, copy, tag));
            CHECK(copy == plain);

            Tag bad_tag = tag;
            bad_tag[0] ^= 1;
            copy = buffer;
            CHECK(opener->open(nonce, aad, copy, bad_tag) == errc::authentication_failed);

            if (length > 0) {
                copy = buffer;
                copy[length / 2] ^= 0x80;
                CHECK(opener->open(nonce, aad, copy, tag) == errc::authentication_failed);
                // No unauthenticated plaintext is left behind.
                CHECK(std::all_of(copy.begin(), copy.end(), [](std::uint8_t b) { return b == 0; }));
            }

            copy = buffer;
            CHECK(opener->open(nonce, hx("00000101"), copy, tag) == errc::authentication_failed);

            Nonce other = nonce;
            other[0] ^= 1;
            copy = buffer;
            CHECK(opener->open(other, aad, copy, tag) == errc::authentication_failed);

            // The opener still works after failures.
            copy = buffer;
            REQUIRE_FALSE(opener->open(nonce, aad, copy, tag));
            CHECK(copy == plain);
        }
        CHECK_THROWS_AS(p.make_sealer(algorithm, hx("0011")), std::invalid_argument);
        CHECK_THROWS_AS(p.make_opener(algorithm, Bytes(16)), std::invalid_argument);
    }
}

TEST_CASE("AES-GCM and ChaCha20-Poly1305 keys are not interchangeable", "[crypto][aead]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    const Bytes key(32, 0x42);
    Bytes buffer(256, 0x11);
    Tag tag{};
    p.make_sealer(AeadAlgorithm::aes_256_gcm, key)->seal(Nonce{}, {}, buffer, tag);
    CHECK(p.make_opener(AeadAlgorithm::chacha20_poly1305, key)->open(Nonce{}, {}, buffer, tag) ==
          errc::authentication_failed);
}

TEST_CASE("random and constant-time equality", "[crypto][random]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    Bytes a(32);
    Bytes b(32);
    p.random(a);
    p.random(b);
    CHECK(a != b);
    p.random(MutableByteView{});  // empty is allowed
    CHECK(p.equal(a, a));
    CHECK_FALSE(p.equal(a, b));
    CHECK_FALSE(p.equal(a, ByteView(a).first(31)));
    CHECK(p.equal({}, {}));
}

TEST_CASE("providers are named and the default is Botan", "[crypto][random]") {
    CHECK(default_provider().name() == "botan-2");
    auto own = make_botan_provider();
    CHECK(own->name() == "botan-2");
    CHECK(own->sha256(as_bytes("abc")) == default_provider().sha256(as_bytes("abc")));
#if defined(SDMP_HAVE_OPENSSL)
    CHECK(make_openssl_provider()->name() == "openssl-3");
#endif
}

TEST_CASE("provider is usable from several threads at once", "[crypto][threads]") {
    CryptoProvider& p = *GENERATE(from_range(all_providers()));
    INFO("provider " << p.name());
    const Digest expected = p.sha256(as_bytes("thread"));
    std::array<std::uint8_t, 32> expected_okm{};
    p.hkdf(as_bytes("salt"), as_bytes("ikm"), as_bytes("info"), expected_okm);
    std::vector<int> failures(4, 0);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < failures.size(); ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 500; ++i) {
                std::array<std::uint8_t, 32> okm{};
                p.hkdf(as_bytes("salt"), as_bytes("ikm"), as_bytes("info"), okm);
                if (p.sha256(as_bytes("thread")) != expected || okm != expected_okm)
                    ++failures[t];
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    CHECK(failures == std::vector<int>(4, 0));
}
