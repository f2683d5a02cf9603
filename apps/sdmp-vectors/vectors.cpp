// Test vectors for docs/protocol.md §8: full handshakes with fixed keys, then a few records.
#include "vectors.hpp"

#include <array>
#include <stdexcept>
#include <variant>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake.hpp"
#include "sdmp/protocol/key_schedule.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"
#include "sdmp/protocol/wire.hpp"

namespace sdmp::vectors {

namespace {

using crypto::SecretBytes;
using protocol::HandshakeState;

// Fixed inputs. Every key is 32 copies of one byte so the document can state them in words.
constexpr std::uint8_t k_initiator_sign_seed = 0x01;
constexpr std::uint8_t k_initiator_dh_private = 0x11;
constexpr std::uint8_t k_responder_sign_seed = 0x02;
constexpr std::uint8_t k_responder_dh_private = 0x12;
constexpr std::uint8_t k_initiator_ephemeral = 0x21;
constexpr std::uint8_t k_responder_ephemeral = 0x22;
constexpr std::uint64_t k_initiator_clock_ms = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr std::uint64_t k_responder_clock_ms = 1'700'000'000'250;
constexpr std::size_t k_hex_line = 64;

crypto::CryptoProvider& provider() {
    return crypto::default_provider();
}

void require(bool ok, const char* what) {
    if (!ok)
        throw std::runtime_error(std::string("sdmp-vectors: ") + what);
}

SecretBytes filled(std::uint8_t value) {
    SecretBytes s(32);
    for (auto& b : s.span())
        b = value;
    return s;
}

Bytes u64_bytes(std::uint64_t v) {
    Bytes out(8);
    for (int i = 7; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v & 0xff);
        v >>= 8;
    }
    return out;
}

Bytes concat(std::initializer_list<ByteView> parts) {
    Bytes out;
    for (const ByteView p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

class Writer {
  public:
    void comment(std::string_view text) {
        out_ += "# ";
        out_ += text;
        out_ += '\n';
    }
    void blank() { out_ += '\n'; }
    void value(std::string_view name, std::string_view value) {
        out_ += name;
        out_ += ": ";
        out_ += value;
        out_ += '\n';
    }
    void hex(std::string_view name, ByteView bytes) {
        const std::string h = to_hex(bytes);
        if (h.size() <= k_hex_line) {
            value(name, h);
            return;
        }
        out_ += name;
        out_ += ":\n";
        for (std::size_t i = 0; i < h.size(); i += k_hex_line) {
            out_ += "  ";
            out_ += h.substr(i, k_hex_line);
            out_ += '\n';
        }
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

struct Node {
    std::uint8_t sign_seed;
    std::uint8_t dh_private;
    crypto::Identity identity;
};

Node make_node(std::uint8_t sign_seed, std::uint8_t dh_private) {
    Node n{sign_seed, dh_private, {}};
    require(!crypto::Identity::from_private(provider(), filled(sign_seed).view(),
                                            filled(dh_private).view(), n.identity),
            "identity from fixed keys");
    return n;
}

struct Handshake {
    Bytes initiator_message;
    Bytes responder_message;
    protocol::Established initiator;
    protocol::Established responder;
};

template <class T>
T take(protocol::HandshakeAction a, const char* what) {
    require(std::holds_alternative<T>(a), what);
    return std::get<T>(std::move(a));
}

Handshake run_handshake(const Node& ini, const Node& resp, crypto::SuiteId suite) {
    crypto::TrustStore ini_trust;
    crypto::TrustStore resp_trust;
    require(!ini_trust.add(
                {resp.identity.public_identity(), resp.identity.fingerprint(), "responder", {}}),
            "trust store");
    require(!resp_trust.add(
                {ini.identity.public_identity(), ini.identity.fingerprint(), "initiator", {}}),
            "trust store");

    protocol::HandshakeConfig ic;
    ic.provider = &provider();
    ic.self = &ini.identity;
    ic.trust = &ini_trust;
    ic.clock = [] { return k_initiator_clock_ms; };
    ic.suites = {suite};
    ic.test_only_ephemeral = filled(k_initiator_ephemeral);
    protocol::HandshakeConfig rc;
    rc.provider = &provider();
    rc.self = &resp.identity;
    rc.trust = &resp_trust;
    rc.clock = [] { return k_responder_clock_ms; };
    rc.suites = {suite};
    rc.test_only_ephemeral = filled(k_responder_ephemeral);

    auto initiator = HandshakeState::initiator(std::move(ic), resp.identity.fingerprint());
    auto responder = HandshakeState::responder(std::move(rc));
    Handshake h;
    h.initiator_message = take<protocol::action::Send>(initiator.next(), "initiator send").bytes;
    take<protocol::action::Need>(responder.next(), "responder need");
    responder.feed(h.initiator_message);
    h.responder_message = take<protocol::action::Send>(responder.next(), "responder send").bytes;
    h.responder = take<protocol::action::Done>(responder.next(), "responder done").result;
    take<protocol::action::Need>(initiator.next(), "initiator need");
    initiator.feed(h.responder_message);
    h.initiator = take<protocol::action::Done>(initiator.next(), "initiator done").result;
    require(provider().equal(h.initiator.keys.send_key.view(), h.responder.keys.receive_key.view()),
            "keys agree");
    return h;
}

crypto::AeadAlgorithm aead_of(crypto::SuiteId suite) {
    const auto s = crypto::find_suite(static_cast<std::uint8_t>(suite));
    require(s.has_value(), "suite");
    return s->aead;
}

// The plaintext body of a connection message, opened with the seal key (protocol.md §3.2).
Bytes open_body(ByteView message, const SecretBytes& seal_key, crypto::AeadAlgorithm aead) {
    const ByteView header = message.first(protocol::k_header_size);
    Bytes body(message.begin() + protocol::k_header_size,
               message.begin() + protocol::k_header_size + protocol::k_body_plain_size);
    crypto::Tag tag{};
    std::copy(message.end() - static_cast<std::ptrdiff_t>(tag.size()), message.end(), tag.begin());
    require(
        !provider().make_opener(aead, seal_key.view())->open(crypto::Nonce{}, header, body, tag),
        "open sealed body");
    return body;
}

// One connection message with its intermediate values: es, seal key, body, signed string.
void write_message(Writer& w, std::string_view prefix, std::string_view label, ByteView message,
                   const SecretBytes& ephemeral_private, const crypto::DhPublic& receiver_static,
                   crypto::AeadAlgorithm aead, ByteView sender_fp, ByteView receiver_fp,
                   ByteView extra) {
    const std::string p(prefix);
    const ByteView header = message.first(protocol::k_header_size);
    SecretBytes es;
    require(!provider().dh_agree(ephemeral_private, receiver_static, es), "es");
    const SecretBytes seal_key = protocol::derive_seal_key(provider(), header, es, receiver_static);
    const Bytes body = open_body(message, seal_key, aead);
    const ByteView timestamp = ByteView(body).subspan(32, 8);
    const Bytes signed_data =
        concat({as_bytes(label), header, sender_fp, receiver_fp, timestamp, extra});
    w.hex(p + ".es", es.view());
    w.hex(p + ".seal_key", seal_key.view());
    w.hex(p + ".signed_data", signed_data);
    w.hex(p + ".body", body);
    w.hex(p + "_message", message);
}

// A record sealed by RecordSealer and its AEAD plaintext (protocol.md §5).
void write_record(Writer& w, const std::string& name, protocol::RecordSealer& sealer,
                  protocol::RecordOpener& opener, crypto::AeadAlgorithm aead,
                  const SecretBytes& key, std::uint64_t counter, ByteView payload, int level) {
    Bytes record;
    require(!sealer.seal(payload, level, record), "seal record");
    Bytes check;
    opener.feed(record);
    require(!opener.next(check) && check == Bytes(payload.begin(), payload.end()), "record opens");

    // protocol.md §5.2: nonce = 4 zero bytes || u64 counter; aad = the length prefix.
    crypto::Nonce nonce{};
    const Bytes ctr = u64_bytes(counter);
    std::copy(ctr.begin(), ctr.end(), nonce.begin() + 4);
    const ByteView aad = ByteView(record).first(protocol::k_record_prefix_size);
    Bytes plaintext(record.begin() + protocol::k_record_prefix_size,
                    record.end() - static_cast<std::ptrdiff_t>(crypto::k_aead_tag_size));
    crypto::Tag tag{};
    std::copy(record.end() - static_cast<std::ptrdiff_t>(tag.size()), record.end(), tag.begin());
    require(!provider().make_opener(aead, key.view())->open(nonce, aad, plaintext, tag),
            "record plaintext");

    w.value(name + ".level", std::to_string(level));
    w.hex(name + ".nonce", nonce);
    w.hex(name + ".payload", payload);
    w.hex(name + ".plaintext", plaintext);
    w.hex(name, record);
}

Bytes framed(const protocol::Message& m) {
    Bytes out;
    require(!protocol::encode_message(m, out), "encode message");
    return out;
}

void write_handshake(Writer& w, const std::string& s, const Node& ini, const Node& resp,
                     crypto::SuiteId suite, const Handshake& h) {
    const auto aead = aead_of(suite);
    const SecretBytes eph_i = filled(k_initiator_ephemeral);
    const SecretBytes eph_r = filled(k_responder_ephemeral);
    const ByteView fp_i = ini.identity.fingerprint().bytes();
    const ByteView fp_r = resp.identity.fingerprint().bytes();
    write_message(w, s + ".initiator", protocol::k_label_initiator_signature, h.initiator_message,
                  eph_i, resp.identity.dh_key().public_key, aead, fp_i, fp_r, {});
    const crypto::Digest hello_hash = provider().sha256(h.initiator_message);
    w.hex(s + ".initiator_message_hash", hello_hash);
    write_message(w, s + ".responder", protocol::k_label_responder_signature, h.responder_message,
                  eph_r, ini.identity.dh_key().public_key, aead, fp_r, fp_i, hello_hash);

    crypto::DhKeyPair er;
    require(!provider().dh_from_private(eph_r.view(), er), "ephemeral");
    SecretBytes ee;
    require(!provider().dh_agree(eph_i, er.public_key, ee), "ee");
    w.hex(s + ".ee", ee.view());
    w.hex(s + ".transcript_hash", h.initiator.keys.transcript_hash);
    w.hex(s + ".k_ir", h.initiator.keys.send_key.view());
    w.hex(s + ".k_ri", h.initiator.keys.receive_key.view());
}

}  // namespace

std::string generate() {
    const Node ini = make_node(k_initiator_sign_seed, k_initiator_dh_private);
    const Node resp = make_node(k_responder_sign_seed, k_responder_dh_private);
    Writer w;
    w.comment(
        "sdmp protocol version 1 test vectors (docs/protocol.md §8), printed by sdmp-vectors.");
    w.comment("Byte strings are lower-case hex; a long one continues on indented lines of 64.");
    w.comment("Every private key below is 32 copies of one byte.");
    w.blank();

    w.comment("Inputs: identities (§1), ephemerals, clocks");
    for (const auto* n : {&ini, &resp}) {
        const std::string who = n == &ini ? "initiator" : "responder";
        w.hex(who + ".sign_seed", filled(n->sign_seed).view());
        w.hex(who + ".sign_public", n->identity.public_identity().sign_public);
        w.hex(who + ".dh_private", filled(n->dh_private).view());
        w.hex(who + ".dh_public", n->identity.public_identity().dh_public);
        w.value(who + ".fingerprint", n->identity.fingerprint().hex());
        const std::uint8_t eph = n == &ini ? k_initiator_ephemeral : k_responder_ephemeral;
        crypto::DhKeyPair kp;
        require(!provider().dh_from_private(filled(eph).view(), kp), "ephemeral");
        w.hex(who + ".ephemeral_private", filled(eph).view());
        w.hex(who + ".ephemeral_public", kp.public_key);
        const std::uint64_t clock = n == &ini ? k_initiator_clock_ms : k_responder_clock_ms;
        w.value(who + ".timestamp_ms", std::to_string(clock));
        w.hex(who + ".timestamp", u64_bytes(clock));
    }

    for (const auto suite : {crypto::SuiteId::x25519_ed25519_aes256gcm_sha256,
                             crypto::SuiteId::x25519_ed25519_chacha20poly1305_sha256}) {
        const auto aead = aead_of(suite);
        const std::string s = "suite" + std::to_string(static_cast<int>(suite));
        const Handshake h = run_handshake(ini, resp, suite);
        w.blank();
        w.comment("Suite " + std::to_string(static_cast<int>(suite)) + " (" +
                  std::string(crypto::find_suite(static_cast<std::uint8_t>(suite))->name) +
                  "): handshake (§3, §4)");
        write_handshake(w, s, ini, resp, suite, h);

        w.blank();
        w.comment(s + ": records (§5, §6). i2r = initiator to responder, r2i = the reverse.");
        protocol::RecordSealer i2r(provider(), aead, h.initiator.keys.send_key);
        protocol::RecordOpener i2r_open(provider(), aead, h.responder.keys.receive_key);
        const Bytes request =
            framed(protocol::Request{1, "echo", 0, {}, Bytes{'h', 'e', 'l', 'l', 'o'}});
        write_record(w, s + ".record.i2r.0", i2r, i2r_open, aead, h.initiator.keys.send_key, 0,
                     request, 0);
        if (suite == crypto::SuiteId::x25519_ed25519_aes256gcm_sha256) {
            w.comment("Level 6. For so short a payload libdeflate still emits a stored block; in");
            w.comment(
                "general compressed bytes depend on the compressor and need not be reproduced.");
            write_record(w, s + ".record.i2r.1", i2r, i2r_open, aead, h.initiator.keys.send_key, 1,
                         request, 6);
            protocol::RecordSealer r2i(provider(), aead, h.responder.keys.send_key);
            protocol::RecordOpener r2i_open(provider(), aead, h.initiator.keys.receive_key);
            const Bytes response = framed(
                protocol::Response{1, protocol::Status::ok, {}, Bytes{'h', 'e', 'l', 'l', 'o'}});
            write_record(w, s + ".record.r2i.0", r2i, r2i_open, aead, h.responder.keys.send_key, 0,
                         response, 0);
            w.comment("Key update (§5.4) of k_ir");
            w.hex(s + ".k_ir_next",
                  protocol::next_traffic_key(provider(), h.initiator.keys.send_key).view());
        }
    }
    return w.take();
}

std::map<std::string, std::string> parse(std::string_view text) {
    std::map<std::string, std::string> values;
    std::string* continued = nullptr;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty() || line.front() == '#') {
            continued = nullptr;
            continue;
        }
        if (line.starts_with("  ")) {
            if (continued == nullptr)
                throw std::runtime_error("vectors: stray continuation line");
            *continued += line.substr(2);
            continue;
        }
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            throw std::runtime_error("vectors: bad line: " + std::string(line));
        }
        const std::string name(line.substr(0, colon));
        std::string_view rest = line.substr(colon + 1);
        if (rest.starts_with(' '))
            rest.remove_prefix(1);
        auto [it, inserted] = values.emplace(name, std::string(rest));
        if (!inserted)
            throw std::runtime_error("vectors: duplicate name: " + name);
        continued = rest.empty() ? &it->second : nullptr;
    }
    return values;
}

bool extract_from_doc(std::string_view doc, std::string& out) {
    const std::size_t begin = doc.find(k_begin_marker);
    if (begin == std::string_view::npos)
        return false;
    const std::size_t end = doc.find(k_end_marker, begin);
    if (end == std::string_view::npos)
        return false;
    const std::string_view block = doc.substr(begin, end - begin);
    const std::size_t open = block.find("\n```");
    if (open == std::string_view::npos)
        return false;
    const std::size_t first = block.find('\n', open + 1);
    const std::size_t close = block.rfind("\n```");
    if (first == std::string_view::npos || close == std::string_view::npos || close < first) {
        return false;
    }
    out = std::string(block.substr(first + 1, close + 1 - (first + 1)));
    return true;
}

bool replace_in_doc(std::string& doc, std::string_view vectors) {
    const std::size_t begin = doc.find(k_begin_marker);
    if (begin == std::string::npos)
        return false;
    const std::size_t end = doc.find(k_end_marker, begin);
    if (end == std::string::npos)
        return false;
    std::string block(k_begin_marker);
    block += "\n```text\n";
    block += vectors;
    block += "```\n";
    doc.replace(begin, end - begin, block);
    return true;
}

}  // namespace sdmp::vectors
