// docs/protocol.md §8: the vectors in the document are the tool's current output, and their
// values follow the formulas of §1–§5 when recomputed here with the provider directly. Every
// test that uses a provider runs once per provider this build has (Botan, and OpenSSL with
// SDMP_WITH_OPENSSL): the vectors must reproduce byte for byte with each.
#include <libdeflate.h>
#include <stdlib.h>  // mkdtemp
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/suite.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/error.hpp"
#include "sdmp/protocol/handshake.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_sealer.hpp"
#include "sdmp/protocol/replay_cache.hpp"

#ifdef SDMP_HAVE_VECTORS
#include "vectors.hpp"
#endif

using namespace sdmp;

namespace {

// The providers under test, the default (Botan) first.
std::vector<crypto::CryptoProvider*> all_providers() {
    std::vector<crypto::CryptoProvider*> list{&crypto::default_provider()};
#if defined(SDMP_HAVE_OPENSSL)
    static const std::unique_ptr<crypto::CryptoProvider> openssl = crypto::make_openssl_provider();
    list.push_back(openssl.get());
#endif
    return list;
}

// The provider of the current test run, for the helpers below; set by each test from
// GENERATE(from_range(all_providers())).
crypto::CryptoProvider* g_provider = &crypto::default_provider();

crypto::CryptoProvider& provider() {
    return *g_provider;
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
    std::uint64_t number(const std::string& name) const { return std::stoull(text(name)); }
    bool has(const std::string& name) const { return values_.contains(name); }

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

Bytes u32_be(std::uint32_t v) {
    return Bytes{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                 static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

// LEB128 (protocol.md §6.1), written here rather than taken from the codec.
Bytes leb128(std::uint64_t v) {
    Bytes out;
    for (; v >= 0x80; v >>= 7)
        out.push_back(static_cast<std::uint8_t>((v & 0x7f) | 0x80));
    out.push_back(static_cast<std::uint8_t>(v));
    return out;
}

Bytes leb_string(std::string_view s) {
    return cat({leb128(s.size()), label(s)});
}

crypto::AeadAlgorithm aead_of_suite(int suite) {
    return suite == 1 ? crypto::AeadAlgorithm::aes_256_gcm
                      : crypto::AeadAlgorithm::chacha20_poly1305;
}

// protocol.md §5.1, level 0: the payload cut into chunks of 65,535 bytes, the last holding the
// remaining 1..65,535; each chunk a stored block: 0x00 (0x01 for the last), u16 LEN and u16 NLEN
// = ~LEN, both little-endian, then the chunk.
Bytes stored_blocks(ByteView payload) {
    Bytes out;
    for (std::size_t pos = 0; pos < payload.size();) {
        const std::size_t len = std::min<std::size_t>(payload.size() - pos, 65535);
        const bool last = pos + len == payload.size();
        const auto n = static_cast<std::uint16_t>(len);
        const auto nn = static_cast<std::uint16_t>(~n);
        out.insert(out.end(),
                   {static_cast<std::uint8_t>(last ? 1 : 0), static_cast<std::uint8_t>(n & 0xff),
                    static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(nn & 0xff),
                    static_cast<std::uint8_t>(nn >> 8)});
        out.insert(out.end(), payload.begin() + static_cast<std::ptrdiff_t>(pos),
                   payload.begin() + static_cast<std::ptrdiff_t>(pos + len));
        pos += len;
    }
    return out;
}

// Raw DEFLATE decompression with libdeflate; REQUIREs success. `consumed` is the size of the
// DEFLATE stream, so the caller can check what follows it.
Bytes inflate(ByteView in, std::size_t max_out, std::size_t& consumed) {
    const std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> d(
        libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
    REQUIRE(d != nullptr);
    Bytes out(max_out);
    std::size_t produced = 0;
    REQUIRE(libdeflate_deflate_decompress_ex(d.get(), in.data(), in.size(), out.data(), out.size(),
                                             &consumed, &produced) == LIBDEFLATE_SUCCESS);
    out.resize(produced);
    return out;
}

Bytes deflate_level0(ByteView in) {
    const std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)> c(
        libdeflate_alloc_compressor(0), libdeflate_free_compressor);
    REQUIRE(c != nullptr);
    Bytes out(libdeflate_deflate_compress_bound(c.get(), in.size()));
    const std::size_t n =
        libdeflate_deflate_compress(c.get(), in.data(), in.size(), out.data(), out.size());
    REQUIRE(n > 0);
    out.resize(n);
    return out;
}

crypto::Identity identity_of(const Vectors& v, const std::string& who) {
    crypto::Identity id;
    REQUIRE_FALSE(crypto::Identity::from_private(provider(), v.hex(who + ".sign_seed"),
                                                 v.hex(who + ".dh_private"), id));
    return id;
}

crypto::SignPublic sign_public_of(const Vectors& v, const std::string& who) {
    crypto::SignPublic pub{};
    const Bytes b = v.hex(who + ".sign_public");
    REQUIRE(b.size() == pub.size());
    std::copy(b.begin(), b.end(), pub.begin());
    return pub;
}

// A temporary folder, removed at the end of the test.
class TempDir {
  public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "sdmp-test-vectors-XXXXXX").string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

}  // namespace

#ifdef SDMP_HAVE_VECTORS
TEST_CASE("protocol.md §8 holds the current output of sdmp-vectors", "[vectors]") {
    const std::string generated = vectors::generate();
    const std::string documented = doc_block();
    CHECK(generated == documented);  // if this fails: sdmp-vectors --write-doc docs/protocol.md
    for (crypto::CryptoProvider* p : all_providers()) {
        INFO("provider " << p->name());
        CHECK(vectors::generate(*p) == documented);
    }
    CHECK(vectors::generate() == generated);  // deterministic
    std::string via_lib;
    REQUIRE(vectors::extract_from_doc(read_doc(), via_lib));
    CHECK(via_lib == documented);
    CHECK(vectors::parse(generated).size() == parse_block(generated).size());
}
#endif

TEST_CASE("vector identities follow protocol.md §1", "[vectors]") {
    g_provider = GENERATE(from_range(all_providers()));
    INFO("provider " << provider().name());
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
    g_provider = GENERATE(from_range(all_providers()));
    INFO("provider " << provider().name());
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
    g_provider = GENERATE(from_range(all_providers()));
    INFO("provider " << provider().name());
    const Vectors v;
    // §6.2 by hand: request id 1, timeout 0, method "echo", no metadata, body "hello".
    const Bytes request =
        cat({Bytes{0x0e, 0x01, 0x01, 0x00, 0x04}, label("echo"), Bytes{0x00}, label("hello")});
    const Bytes response = cat({Bytes{0x09, 0x02, 0x01, 0x00, 0x00}, label("hello")});
    struct Rec {
        std::string name;
        std::string key;
        std::uint64_t counter;
        int level;
        const Bytes* payload;  // nullptr: printed only (checked by decoding it)
    };
    const int suite = GENERATE(1, 2);
    const std::string s = "suite" + std::to_string(suite);
    const auto aead = aead_of_suite(suite);
    // §5.4: both directions' next keys.
    CHECK(hkdf({}, v.hex(s + ".k_ir"), label("sdmp/1 key update"), 32) == v.hex(s + ".k_ir_next"));
    CHECK(hkdf({}, v.hex(s + ".k_ri"), label("sdmp/1 key update"), 32) == v.hex(s + ".k_ri_next"));
    for (const Rec& r : {Rec{s + ".record.i2r.0", s + ".k_ir", 0, 0, &request},
                         Rec{s + ".record.i2r.1", s + ".k_ir", 1, 6, &request},
                         Rec{s + ".record.i2r.2", s + ".k_ir", 2, 6, nullptr},
                         Rec{s + ".record.r2i.0", s + ".k_ri", 0, 0, &response},
                         Rec{s + ".record.i2r_next.0", s + ".k_ir_next", 0, 0, &request}}) {
        INFO(r.name);
        CHECK(v.text(r.name + ".level") == std::to_string(r.level));
        const Bytes payload = v.hex(r.name + ".payload");
        if (r.payload != nullptr)
            CHECK(payload == *r.payload);
        std::vector<protocol::Message> messages;
        REQUIRE_FALSE(protocol::decode_messages(payload, messages));
        CHECK(messages.size() == 1);
        // §5.2 nonce: 4 zero bytes || u64 counter
        const Bytes nonce = cat({Bytes(4, 0), u64_be(r.counter)});
        CHECK(nonce == v.hex(r.name + ".nonce"));
        // §5: u32 length || AEAD(key, nonce, aad = length bytes); §5.3 size rules
        const Bytes record = v.hex(r.name);
        REQUIRE(record.size() >= 4 + 256 + 16);
        const auto n = static_cast<std::uint32_t>(record.size() - 4);
        CHECK(Bytes(record.begin(), record.begin() + 4) == u32_be(n));
        CHECK((n - 16) % 256 == 0);
        const Bytes plaintext = aead_open(aead, v.hex(r.key), nonce, ByteView(record).first(4),
                                          ByteView(record).subspan(4));
        CHECK(plaintext == v.hex(r.name + ".plaintext"));
        // §5.1: DEFLATE || zero bytes, and it inflates to the payload.
        std::size_t consumed = 0;
        CHECK(inflate(plaintext, payload.size() + 1, consumed) == payload);
        CHECK(std::all_of(plaintext.begin() + static_cast<std::ptrdiff_t>(consumed),
                          plaintext.end(), [](std::uint8_t b) { return b == 0; }));
        if (r.level == 0) {
            // §5.1 at level 0 the DEFLATE bytes are fully determined.
            Bytes padded = stored_blocks(payload);
            padded.resize(plaintext.size(), 0);
            CHECK(plaintext == padded);
        }
        if (r.name.ends_with("i2r.2")) {
            // Truly compressed: a dynamic-Huffman first block (BTYPE 10), smaller than stored.
            CHECK(((plaintext[0] >> 1) & 3) == 2);
            CHECK(consumed < payload.size());
        }
    }
}

TEST_CASE("level-0 DEFLATE splits into 65,535-byte stored blocks (protocol.md §5.1)", "[vectors]") {
    g_provider = GENERATE(from_range(all_providers()));
    INFO("provider " << provider().name());
    const Vectors v;
    const std::size_t size = v.number("stored.payload_size");
    Bytes payload(size);
    for (std::size_t i = 0; i < size; ++i)
        payload[i] = static_cast<std::uint8_t>(i % 251);
    const Bytes expected = stored_blocks(payload);
    CHECK(v.text("stored.block_lengths") == "65535 65535 1");
    CHECK(expected.size() == v.number("stored.deflate_size"));
    CHECK(expected.size() == size + 5 * ((size + 65534) / 65535));
    CHECK(sha256(expected) == v.hex("stored.deflate_sha256"));
    CHECK(Bytes(expected.begin(), expected.begin() + 5) ==
          v.hex("stored.deflate_first_block_header"));
    CHECK(Bytes(expected.begin() + 2 * 65540, expected.begin() + 2 * 65540 + 5) ==
          v.hex("stored.deflate_last_block_header"));

    // The rule is what libdeflate 1.14 does at level 0 and what RecordSealer sends, around the
    // block boundaries too.
    for (const std::size_t n : {std::size_t{1}, std::size_t{65534}, std::size_t{65535},
                                std::size_t{65536}, std::size_t{131070}, size}) {
        INFO("payload of " << n << " bytes");
        const ByteView p = ByteView(payload).first(n);
        const Bytes blocks = stored_blocks(p);
        CHECK(deflate_level0(p) == blocks);
        const crypto::SecretBytes key(Bytes(32, 0x5a));
        protocol::RecordSealer sealer(provider(), crypto::AeadAlgorithm::aes_256_gcm, key);
        Bytes record;
        REQUIRE_FALSE(sealer.seal(p, 0, record));
        const Bytes plaintext =
            aead_open(crypto::AeadAlgorithm::aes_256_gcm, key.view(), Bytes(12, 0),
                      ByteView(record).first(4), ByteView(record).subspan(4));
        Bytes padded = blocks;
        padded.resize((blocks.size() + 255) / 256 * 256, 0);
        CHECK(plaintext == padded);
    }
}

TEST_CASE("vector envelopes follow protocol.md §6", "[vectors]") {
    const Vectors v;
    const auto metadata = [&](const std::string& name) {
        protocol::Metadata m;
        Bytes bytes = leb128(v.number(name + ".metadata_count"));
        for (std::uint64_t i = 0; i < v.number(name + ".metadata_count"); ++i) {
            const std::string entry = name + ".metadata." + std::to_string(i);
            m.emplace_back(v.text(entry + ".key"), v.text(entry + ".value"));
            bytes = cat({bytes, leb_string(m.back().first), leb_string(m.back().second)});
        }
        return std::pair{m, bytes};
    };
    const auto framed = [](const Bytes& envelope) {
        return cat({leb128(envelope.size()), envelope});
    };
    const auto decode = [](const Bytes& bytes) {
        std::vector<protocol::Message> out;
        REQUIRE_FALSE(protocol::decode_messages(bytes, out));
        REQUIRE(out.size() == 1);
        return out.front();
    };

    SECTION("request") {
        const auto [md, md_bytes] = metadata("envelope.request");
        const Bytes envelope = cat({Bytes{1}, leb128(v.number("envelope.request.id")),
                                    leb128(v.number("envelope.request.timeout_ms")),
                                    leb_string(v.text("envelope.request.method")), md_bytes,
                                    v.hex("envelope.request.body")});
        CHECK(envelope.size() == v.number("envelope.request.envelope_size"));
        CHECK(envelope.size() >= 128);                  // a two-byte length frame
        CHECK(v.number("envelope.request.id") >= 128);  // a two-byte id
        CHECK(framed(envelope) == v.hex("envelope.request"));
        const auto m = std::get<protocol::Request>(decode(v.hex("envelope.request")));
        CHECK(m.id == v.number("envelope.request.id"));
        CHECK(m.timeout_ms == v.number("envelope.request.timeout_ms"));
        CHECK(m.method == v.text("envelope.request.method"));
        CHECK(m.metadata == md);
        CHECK(m.metadata.size() == 2);
        CHECK(protocol::asks_no_compress(m.metadata));
        CHECK(m.body == v.hex("envelope.request.body"));
    }
    SECTION("response") {
        const auto [md, md_bytes] = metadata("envelope.response");
        const auto status = static_cast<std::uint8_t>(v.number("envelope.response.status"));
        CHECK(status != 0);
        CHECK(v.number("envelope.response.id") >= (1u << 14));  // a three-byte id
        const Bytes envelope = cat({Bytes{2}, leb128(v.number("envelope.response.id")),
                                    Bytes{status}, md_bytes, v.hex("envelope.response.body")});
        CHECK(framed(envelope) == v.hex("envelope.response"));
        const auto m = std::get<protocol::Response>(decode(v.hex("envelope.response")));
        CHECK(m.id == v.number("envelope.response.id"));
        CHECK(static_cast<std::uint8_t>(m.status) == status);
        CHECK(m.metadata == md);
        CHECK(m.body == v.hex("envelope.response.body"));
    }
    SECTION("notification") {
        const auto [md, md_bytes] = metadata("envelope.notification");
        const Bytes envelope = cat({Bytes{3}, leb_string(v.text("envelope.notification.method")),
                                    md_bytes, v.hex("envelope.notification.body")});
        CHECK(framed(envelope) == v.hex("envelope.notification"));
        const auto m = std::get<protocol::Notification>(decode(v.hex("envelope.notification")));
        CHECK(m.method == v.text("envelope.notification.method"));
        CHECK(m.body == v.hex("envelope.notification.body"));
    }
    SECTION("cancel, ping, pong, goaway, end") {
        CHECK(framed(cat({Bytes{4}, leb128(v.number("envelope.cancel.id"))})) ==
              v.hex("envelope.cancel"));
        CHECK(std::get<protocol::Cancel>(decode(v.hex("envelope.cancel"))).id ==
              v.number("envelope.cancel.id"));
        CHECK(framed(cat({Bytes{5}, v.hex("envelope.ping.opaque")})) == v.hex("envelope.ping"));
        CHECK(framed(cat({Bytes{6}, v.hex("envelope.pong.opaque")})) == v.hex("envelope.pong"));
        CHECK(std::holds_alternative<protocol::Ping>(decode(v.hex("envelope.ping"))));
        CHECK(std::holds_alternative<protocol::Pong>(decode(v.hex("envelope.pong"))));
        CHECK(framed(cat({Bytes{7}, leb128(v.number("envelope.goaway.last_request_id")),
                          label(v.text("envelope.goaway.reason"))})) == v.hex("envelope.goaway"));
        CHECK(std::get<protocol::GoAway>(decode(v.hex("envelope.goaway"))).reason ==
              v.text("envelope.goaway.reason"));
        CHECK(v.hex("envelope.end") == Bytes{0x01, 0x08});
        CHECK(std::holds_alternative<protocol::End>(decode(v.hex("envelope.end"))));
    }
}

TEST_CASE("vector refusals are refused with nope (protocol.md §3.5, §3.6)", "[vectors]") {
    g_provider = GENERATE(from_range(all_providers()));
    INFO("provider " << provider().name());
    const Vectors v;
    const crypto::Identity ini = identity_of(v, "initiator");
    const crypto::Identity resp = identity_of(v, "responder");
    const crypto::Identity third = identity_of(v, "third");
    CHECK(third.fingerprint().hex() == v.text("third.fingerprint"));
    const Bytes good = v.hex("suite1.initiator_message");
    const auto aes = crypto::AeadAlgorithm::aes_256_gcm;

    struct Case {
        std::string name;
        protocol::HandshakeError reason;
    };
    using E = protocol::HandshakeError;
    const Case cases[] = {
        {"bad_magic", E::bad_magic},
        {"unsupported_version", E::unsupported_version},
        {"unsupported_suite", E::unsupported_suite},
        {"bad_role", E::bad_role},
        {"reserved_set", E::malformed},
        {"tampered_tag", E::seal_failed},
        {"unknown_signer", E::unknown_peer},
        {"bad_signature", E::bad_signature},
        {"wrong_responder", E::wrong_responder},
        {"low_order_ephemeral", E::low_order_point},
        {"clock_skew", E::clock_skew},
        {"replayed_ephemeral", E::replay},
        {"truncated", E::truncated},
    };
    crypto::TrustStore resp_trust;
    REQUIRE_FALSE(resp_trust.add({ini.public_identity(), ini.fingerprint(), "initiator", {}}));
    crypto::TrustStore ini_trust;
    REQUIRE_FALSE(ini_trust.add({resp.public_identity(), resp.fingerprint(), "responder", {}}));
    REQUIRE_FALSE(ini_trust.add({third.public_identity(), third.fingerprint(), "third", {}}));
    const auto responder = [&](protocol::ReplayCache& cache) {
        protocol::HandshakeConfig c;
        c.provider = &provider();
        c.self = &resp;
        c.trust = &resp_trust;
        c.clock = [now = v.number("responder.timestamp_ms")] { return now; };
        c.replay_cache = &cache;
        return protocol::HandshakeState::responder(std::move(c));
    };

    for (const Case& c : cases) {
        const std::string p = "reject." + c.name;
        INFO(p);
        const Bytes input = v.hex(p + ".input");
        const bool to_initiator = v.text(p + ".receiver") == "initiator";
        CHECK(v.text(p + ".reason") == protocol::to_string(c.reason));
        CHECK(v.hex(p + ".reply") == label("nope"));
        protocol::ReplayCache cache;
        std::optional<protocol::HandshakeState> receiver;
        if (to_initiator) {
            protocol::HandshakeConfig ic;
            ic.provider = &provider();
            ic.self = &ini;
            ic.trust = &ini_trust;
            ic.clock = [now = v.number("initiator.timestamp_ms")] { return now; };
            ic.suites = {crypto::SuiteId::x25519_ed25519_aes256gcm_sha256};
            ic.test_only_ephemeral = crypto::SecretBytes(v.hex("initiator.ephemeral_private"));
            receiver = protocol::HandshakeState::initiator(std::move(ic), resp.fingerprint());
            const auto sent = receiver->next();
            REQUIRE(std::holds_alternative<protocol::action::Send>(sent));
            CHECK(std::get<protocol::action::Send>(sent).bytes == good);
        } else {
            if (v.has(p + ".before")) {
                // The responder accepted the valid message once; its cache holds the ephemeral.
                auto first = responder(cache);
                first.feed(good);
                CHECK(std::holds_alternative<protocol::action::Send>(first.next()));
            }
            receiver = responder(cache);
        }
        receiver->feed(input);
        if (v.text(p + ".end_of_stream") == "yes")
            receiver->feed_eof();
        const auto outcome = receiver->next();
        REQUIRE(std::holds_alternative<protocol::action::Failed>(outcome));
        const auto& failed = std::get<protocol::action::Failed>(outcome);
        CHECK(failed.reason == c.reason);
        CHECK(failed.reply == label("nope"));
    }

    // Each input is faulty in the one way its name says; checked from the printed inputs.
    const auto differs_only_at = [&](const std::string& name, std::size_t at) {
        const Bytes m = v.hex("reject." + name + ".input");
        REQUIRE(m.size() == good.size());
        for (std::size_t i = 0; i < m.size(); ++i)
            CHECK((m[i] != good[i]) == (i == at));
    };
    differs_only_at("bad_magic", 3);
    differs_only_at("unsupported_version", 4);
    differs_only_at("unsupported_suite", 5);
    differs_only_at("bad_role", 6);
    differs_only_at("reserved_set", 7);
    differs_only_at("tampered_tag", 159);
    CHECK(v.hex("reject.replayed_ephemeral.input") == good);
    CHECK(v.hex("reject.truncated.input") == Bytes(good.begin(), good.begin() + 100));
    // Sealed, signed messages: open with the receiver's static key (es of 32 zero bytes for
    // the low-order ephemeral, §3.5) and check the signature.
    struct Built {
        std::string name;
        std::string signer;
        std::string receiver;
        bool signature_valid;
    };
    for (const Built& b : {Built{"unknown_signer", "third", "responder", true},
                           Built{"bad_signature", "initiator", "responder", false},
                           Built{"wrong_responder", "third", "initiator", true},
                           Built{"low_order_ephemeral", "initiator", "responder", true},
                           Built{"clock_skew", "initiator", "responder", true}}) {
        INFO(b.name);
        const Bytes m = v.hex("reject." + b.name + ".input");
        REQUIRE(m.size() == 160);
        const ByteView header = ByteView(m).first(40);
        const bool from_responder = b.name == "wrong_responder";
        CHECK(m[6] == (from_responder ? 2 : 1));
        const Bytes receiver_static = v.hex(b.receiver + ".dh_public");
        Bytes es(32, 0);
        if (b.name == "low_order_ephemeral") {
            CHECK(Bytes(header.begin() + 8, header.end()) == Bytes(32, 0));
            crypto::SecretBytes shared;
            CHECK(provider().dh_agree(crypto::SecretBytes(v.hex(b.receiver + ".dh_private")),
                                      header.subspan(8), shared) == errc::low_order_point);
        } else {
            es = x25519(v.hex(b.receiver + ".dh_private"), header.subspan(8));
        }
        const Bytes seal_key = hkdf(header, es, cat({label("sdmp/1 seal"), receiver_static}), 32);
        const Bytes body = aead_open(aes, seal_key, Bytes(12, 0), header, ByteView(m).subspan(40));
        CHECK(to_hex(ByteView(body).first(32)) == v.text(b.signer + ".fingerprint"));
        const Bytes timestamp(body.begin() + 32, body.begin() + 40);
        Bytes signed_data =
            cat({label(from_responder ? "sdmp/1 responder" : "sdmp/1 initiator"), header,
                 v.hex(b.signer + ".fingerprint"), v.hex(b.receiver + ".fingerprint"), timestamp});
        if (from_responder)
            signed_data = cat({signed_data, sha256(good)});
        crypto::Signature sig{};
        std::copy(body.begin() + 40, body.end(), sig.begin());
        CHECK(provider().verify(sign_public_of(v, b.signer), signed_data, sig) ==
              b.signature_valid);
        if (b.name == "clock_skew") {
            const std::uint64_t now = v.number("responder.timestamp_ms");
            CHECK(now - 200'250 == std::stoull(to_hex(timestamp), nullptr, 16));
        } else {
            CHECK(timestamp ==
                  v.hex((from_responder ? "responder" : "initiator") + std::string(".timestamp")));
        }
    }
}

TEST_CASE("vector files follow protocol.md §7", "[vectors]") {
    g_provider = GENERATE(from_range(all_providers()));
    INFO("provider " << provider().name());
    const Vectors v;
    const auto file = [&](const std::string& name) {
        std::string content;
        for (int i = 1; v.has(name + ".line" + std::to_string(i)); ++i)
            content += v.text(name + ".line" + std::to_string(i)) + "\n";
        CHECK(content.size() == v.number(name + ".size"));
        CHECK(std::all_of(content.begin(), content.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
        return content;
    };
    const std::string key = file("file.initiator_key");
    const std::string pub = file("file.responder_pub");
    const std::string store = file("file.trust_store");
    // §7.1 and §7.2 lines, from the printed keys.
    const std::string ini_public =
        "sdmp-public-v1 " + v.text("initiator.sign_public") + v.text("initiator.dh_public");
    const std::string resp_public =
        "sdmp-public-v1 " + v.text("responder.sign_public") + v.text("responder.dh_public");
    CHECK(key == "sdmp-private-v1 " + v.text("initiator.sign_seed") + " " +
                     v.text("initiator.dh_private") + "\n");
    CHECK(pub == resp_public + " name=responder address=127.0.0.1:7400\n");
    CHECK(v.text("file.trust_store.line3") == ini_public + " name=initiator");
    CHECK(v.text("file.trust_store.line4") ==
          resp_public + " name=responder address=127.0.0.1:7400");

    // And the library's loaders read them back.
    const TempDir dir;
    const auto put = [&](const std::string& name, const std::string& content,
                         std::filesystem::perms mode) {
        const auto path = dir.path() / name;
        std::ofstream(path, std::ios::binary) << content;
        std::filesystem::permissions(path, mode);
        return path;
    };
    using P = std::filesystem::perms;
    crypto::Identity loaded;
    REQUIRE_FALSE(crypto::load_identity(
        provider(), put("initiator.key", key, P::owner_read | P::owner_write), loaded));
    CHECK(loaded.fingerprint().hex() == v.text("initiator.fingerprint"));
    crypto::PublicIdentity loaded_pub;
    REQUIRE_FALSE(crypto::load_public_identity(
        provider(), put("responder.pub", pub, P::owner_read | P::owner_write | P::group_read),
        loaded_pub));
    CHECK(loaded_pub.fingerprint(provider()).hex() == v.text("responder.fingerprint"));
    crypto::TrustStore trust;
    REQUIRE_FALSE(crypto::TrustStore::load(
        provider(), put("trust", store, P::owner_read | P::owner_write | P::group_read), trust));
    CHECK(trust.size() == 2);
    const crypto::TrustedPeer* r = trust.find("responder");
    REQUIRE(r != nullptr);
    CHECK(r->fingerprint.hex() == v.text("responder.fingerprint"));
    CHECK(r->address == "127.0.0.1:7400");
    const crypto::TrustedPeer* i = trust.find(v.text("initiator.fingerprint"));
    REQUIRE(i != nullptr);
    CHECK(i->name == "initiator");
    CHECK(i->address.empty());
}

TEST_CASE("vector journal lines chain as docs/apps.md says", "[vectors]") {
    g_provider = GENERATE(from_range(all_providers()));
    INFO("provider " << provider().name());
    const Vectors v;
    // Line 1 is the node's fingerprint; line k+1 is SHA-256 hex of line k's text, '@', the
    // publisher's fingerprint, '/', SHA-256 hex of the resource's bytes.
    CHECK(v.text("journal.line1") == v.text("responder.fingerprint"));
    for (int k = 1; k <= 2; ++k) {
        INFO("line " << k + 1);
        const std::string previous = v.text("journal.line" + std::to_string(k));
        const std::string line = v.text("journal.line" + std::to_string(k + 1));
        CHECK(line.size() == 194);
        CHECK(line == to_hex(sha256(label(previous))) + "@" + v.text("initiator.fingerprint") +
                          "/" + to_hex(sha256(v.hex("journal.resource" + std::to_string(k)))));
    }
}
