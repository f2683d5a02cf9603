// docs/protocol.md §8: the vectors in the document are the tool's current output, and their
// values follow the formulas of §1–§5 when recomputed here with the provider directly.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/suite.hpp"

#ifdef SDMP_HAVE_VECTORS
#include "vectors.hpp"
#endif

using namespace sdmp;

namespace {

crypto::CryptoProvider& provider() {
    return crypto::default_provider();
}

std::string read_doc() {
    std::ifstream in(SDMP_PROTOCOL_DOC, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The text inside the fenced block between the §8 markers. Written here, not taken from the
// tool's library, so the checks below do not depend on the code that produced the vectors.
std::string doc_block() {
    const std::string doc = read_doc();
    const auto begin = doc.find("<!-- vectors:begin -->");
    const auto end = doc.find("<!-- vectors:end -->");
    REQUIRE(begin != std::string::npos);
    REQUIRE(end != std::string::npos);
    REQUIRE(begin < end);
    const std::string block = doc.substr(begin, end - begin);
    const auto open = block.find("\n```");
    REQUIRE(open != std::string::npos);
    const auto first = block.find('\n', open + 1) + 1;
    const auto close = block.rfind("\n```");
    REQUIRE(close > first);
    return block.substr(first, close + 1 - first);
}

std::map<std::string, std::string> parse_block(const std::string& text) {
    std::map<std::string, std::string> values;
    std::istringstream in(text);
    std::string line;
    std::string* continued = nullptr;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') {
            continued = nullptr;
        } else if (line.rfind("  ", 0) == 0) {
            REQUIRE(continued != nullptr);
            *continued += line.substr(2);
        } else {
            const auto colon = line.find(':');
            REQUIRE(colon != std::string::npos);
            std::string value = line.substr(colon + 1);
            if (!value.empty() && value[0] == ' ')
                value.erase(0, 1);
            auto [it, inserted] = values.emplace(line.substr(0, colon), value);
            REQUIRE(inserted);
            continued = value.empty() ? &it->second : nullptr;
        }
    }
    return values;
}

class Vectors {
  public:
    Vectors() : values_(parse_block(doc_block())) {}

    Bytes hex(const std::string& name) const {
        const auto it = values_.find(name);
        INFO("vector " << name);
        REQUIRE(it != values_.end());
        Bytes out;
        REQUIRE(from_hex(it->second, out));
        return out;
    }
    std::string text(const std::string& name) const {
        const auto it = values_.find(name);
        INFO("vector " << name);
        REQUIRE(it != values_.end());
        return it->second;
    }

  private:
    std::map<std::string, std::string> values_;
};

Bytes cat(std::initializer_list<ByteView> parts) {
    Bytes out;
    for (const ByteView p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

Bytes label(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

Bytes x25519(ByteView priv, ByteView pub) {
    crypto::SecretBytes shared;
    REQUIRE_FALSE(provider().dh_agree(crypto::SecretBytes(priv), pub, shared));
    return Bytes(shared.view().begin(), shared.view().end());
}

Bytes hkdf(ByteView salt, ByteView ikm, ByteView info, std::size_t n) {
    Bytes out(n);
    provider().hkdf(salt, ikm, info, out);
    return out;
}

Bytes sha256(ByteView data) {
    const auto d = provider().sha256(data);
    return Bytes(d.begin(), d.end());
}

// AEAD-Open of ciphertext || tag; REQUIREs success.
Bytes aead_open(crypto::AeadAlgorithm aead, ByteView key, ByteView nonce, ByteView aad,
                ByteView sealed) {
    REQUIRE(sealed.size() >= 16);
    Bytes plain(sealed.begin(), sealed.end() - 16);
    crypto::Tag tag{};
    std::copy(sealed.end() - 16, sealed.end(), tag.begin());
    crypto::Nonce n{};
    std::copy(nonce.begin(), nonce.end(), n.begin());
    REQUIRE_FALSE(provider().make_opener(aead, key)->open(n, aad, plain, tag));
    return plain;
}

Bytes u64_be(std::uint64_t v) {
    Bytes out;
    for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<std::uint8_t>(v >> shift));
    return out;
}

}  // namespace

#ifdef SDMP_HAVE_VECTORS
TEST_CASE("protocol.md §8 holds the current output of sdmp-vectors", "[vectors]") {
    const std::string generated = vectors::generate();
    const std::string documented = doc_block();
    CHECK(generated == documented);  // if this fails: sdmp-vectors --write-doc docs/protocol.md
    CHECK(vectors::generate() == generated);  // deterministic
    std::string via_lib;
    REQUIRE(vectors::extract_from_doc(read_doc(), via_lib));
    CHECK(via_lib == documented);
    CHECK(vectors::parse(generated).size() == parse_block(generated).size());
}
#endif

TEST_CASE("vector identities follow protocol.md §1", "[vectors]") {
    const Vectors v;
    for (const std::string who : {"initiator", "responder"}) {
        INFO(who);
        crypto::SignKeyPair sk;
        REQUIRE_FALSE(provider().sign_from_seed(v.hex(who + ".sign_seed"), sk));
        CHECK(Bytes(sk.public_key.begin(), sk.public_key.end()) == v.hex(who + ".sign_public"));
        crypto::DhKeyPair dk;
        REQUIRE_FALSE(provider().dh_from_private(v.hex(who + ".dh_private"), dk));
        CHECK(Bytes(dk.public_key.begin(), dk.public_key.end()) == v.hex(who + ".dh_public"));
        const Bytes canonical = cat({v.hex(who + ".sign_public"), v.hex(who + ".dh_public")});
        CHECK(to_hex(sha256(canonical)) == v.text(who + ".fingerprint"));
        crypto::DhKeyPair ek;
        REQUIRE_FALSE(provider().dh_from_private(v.hex(who + ".ephemeral_private"), ek));
        CHECK(Bytes(ek.public_key.begin(), ek.public_key.end()) ==
              v.hex(who + ".ephemeral_public"));
        CHECK(u64_be(std::stoull(v.text(who + ".timestamp_ms"))) == v.hex(who + ".timestamp"));
    }
}

TEST_CASE("vector handshakes follow protocol.md §3 and §4", "[vectors]") {
    const Vectors v;
    const int suite = GENERATE(1, 2);
    const std::string s = "suite" + std::to_string(suite);
    const auto aead =
        suite == 1 ? crypto::AeadAlgorithm::aes_256_gcm : crypto::AeadAlgorithm::chacha20_poly1305;
    const Bytes fp_i = v.hex("initiator.fingerprint");
    const Bytes fp_r = v.hex("responder.fingerprint");
    const Bytes m1 = v.hex(s + ".initiator_message");
    const Bytes m2 = v.hex(s + ".responder_message");
    REQUIRE(m1.size() == 160);
    REQUIRE(m2.size() == 160);

    struct Side {
        std::string name;  // "initiator" / "responder": the sender
        std::string receiver;
        std::uint8_t role;
        std::string_view label;
    };
    for (const Side& side : {Side{"initiator", "responder", 1, "sdmp/1 initiator"},
                             Side{"responder", "initiator", 2, "sdmp/1 responder"}}) {
        INFO(s << " " << side.name << " message");
        const Bytes& msg = side.role == 1 ? m1 : m2;
        const ByteView header = ByteView(msg).first(40);
        // §3 header
        const Bytes expected_header =
            cat({label("SDMP"), Bytes{1, static_cast<std::uint8_t>(suite), side.role, 0},
                 v.hex(side.name + ".ephemeral_public")});
        CHECK(Bytes(header.begin(), header.end()) == expected_header);
        // §3.2 es from both ends, seal key, open
        const Bytes receiver_static = v.hex(side.receiver + ".dh_public");
        const Bytes es = x25519(v.hex(side.name + ".ephemeral_private"), receiver_static);
        CHECK(es ==
              x25519(v.hex(side.receiver + ".dh_private"), v.hex(side.name + ".ephemeral_public")));
        CHECK(es == v.hex(s + "." + side.name + ".es"));
        const Bytes seal_key = hkdf(header, es, cat({label("sdmp/1 seal"), receiver_static}), 32);
        CHECK(seal_key == v.hex(s + "." + side.name + ".seal_key"));
        const Bytes body =
            aead_open(aead, seal_key, Bytes(12, 0), header, ByteView(msg).subspan(40));
        CHECK(body == v.hex(s + "." + side.name + ".body"));
        // §3.1 body, §3.4 signature
        const Bytes& own_fp = side.role == 1 ? fp_i : fp_r;
        const Bytes& peer_fp = side.role == 1 ? fp_r : fp_i;
        CHECK(Bytes(body.begin(), body.begin() + 32) == own_fp);
        CHECK(Bytes(body.begin() + 32, body.begin() + 40) == v.hex(side.name + ".timestamp"));
        Bytes signed_data =
            cat({label(side.label), header, own_fp, peer_fp, v.hex(side.name + ".timestamp")});
        if (side.role == 2)
            signed_data = cat({signed_data, sha256(m1)});
        CHECK(signed_data == v.hex(s + "." + side.name + ".signed_data"));
        crypto::SignPublic pub{};
        const Bytes pub_bytes = v.hex(side.name + ".sign_public");
        std::copy(pub_bytes.begin(), pub_bytes.end(), pub.begin());
        crypto::Signature sig{};
        std::copy(body.begin() + 40, body.end(), sig.begin());
        CHECK(provider().verify(pub, signed_data, sig));
    }
    CHECK(sha256(m1) == v.hex(s + ".initiator_message_hash"));

    // §4
    const Bytes ee =
        x25519(v.hex("initiator.ephemeral_private"), v.hex("responder.ephemeral_public"));
    CHECK(ee == x25519(v.hex("responder.ephemeral_private"), v.hex("initiator.ephemeral_public")));
    CHECK(ee == v.hex(s + ".ee"));
    const Bytes th = sha256(cat({m1, m2}));
    CHECK(th == v.hex(s + ".transcript_hash"));
    const Bytes okm = hkdf(th, ee, label("sdmp/1 session keys"), 64);
    CHECK(Bytes(okm.begin(), okm.begin() + 32) == v.hex(s + ".k_ir"));
    CHECK(Bytes(okm.begin() + 32, okm.end()) == v.hex(s + ".k_ri"));
}

TEST_CASE("vector records follow protocol.md §5 and §6", "[vectors]") {
    const Vectors v;
    // §6.2 by hand: request id 1, timeout 0, method "echo", no metadata, body "hello".
    const Bytes request =
        cat({Bytes{0x0e, 0x01, 0x01, 0x00, 0x04}, label("echo"), Bytes{0x00}, label("hello")});
    const Bytes response = cat({Bytes{0x09, 0x02, 0x01, 0x00, 0x00}, label("hello")});
    struct Rec {
        std::string name;
        std::string key;
        crypto::AeadAlgorithm aead;
        std::uint64_t counter;
        int level;
        const Bytes* payload;
    };
    const auto aes = crypto::AeadAlgorithm::aes_256_gcm;
    const auto chacha = crypto::AeadAlgorithm::chacha20_poly1305;
    for (const Rec& r : {Rec{"suite1.record.i2r.0", "suite1.k_ir", aes, 0, 0, &request},
                         Rec{"suite1.record.i2r.1", "suite1.k_ir", aes, 1, 6, &request},
                         Rec{"suite1.record.r2i.0", "suite1.k_ri", aes, 0, 0, &response},
                         Rec{"suite2.record.i2r.0", "suite2.k_ir", chacha, 0, 0, &request}}) {
        INFO(r.name);
        CHECK(v.text(r.name + ".level") == std::to_string(r.level));
        CHECK(v.hex(r.name + ".payload") == *r.payload);
        // §5.2 nonce: 4 zero bytes || u64 counter
        const Bytes nonce = cat({Bytes(4, 0), u64_be(r.counter)});
        CHECK(nonce == v.hex(r.name + ".nonce"));
        // §5: u32 length || AEAD(key, nonce, aad = length bytes)
        const Bytes record = v.hex(r.name);
        REQUIRE(record.size() == 4 + 256 + 16);
        CHECK(Bytes(record.begin(), record.begin() + 4) == Bytes{0x00, 0x00, 0x01, 0x10});
        const Bytes plaintext = aead_open(r.aead, v.hex(r.key), nonce, ByteView(record).first(4),
                                          ByteView(record).subspan(4));
        CHECK(plaintext == v.hex(r.name + ".plaintext"));
        CHECK(plaintext.size() == 256);
        if (r.level == 0) {
            // §5.1 at level 0: one final stored block (RFC 1951 §3.2.4), then zero padding.
            const auto n = static_cast<std::uint16_t>(r.payload->size());
            const Bytes stored =
                cat({Bytes{0x01, static_cast<std::uint8_t>(n & 0xff),
                           static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(~n & 0xff),
                           static_cast<std::uint8_t>((~n >> 8) & 0xff)},
                     *r.payload});
            Bytes padded = stored;
            padded.resize(256, 0);
            CHECK(plaintext == padded);
        }
    }
    // §5.4 key update
    CHECK(hkdf({}, v.hex("suite1.k_ir"), label("sdmp/1 key update"), 32) ==
          v.hex("suite1.k_ir_next"));
}
