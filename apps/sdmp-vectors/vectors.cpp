// Test vectors for docs/protocol.md §8: full handshakes with fixed keys, records, envelopes,
// refused connection messages, the files of §7 and journal lines (docs/apps.md).
#include "vectors.hpp"

#include <stdlib.h>  // mkdtemp

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake.hpp"
#include "sdmp/protocol/key_schedule.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_limits.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"
#include "sdmp/protocol/replay_cache.hpp"
#include "sdmp/protocol/wire.hpp"
#include "sdmp/services/journal_line.hpp"

namespace sdmp::vectors {

namespace {

namespace fs = std::filesystem;
using crypto::SecretBytes;
using protocol::HandshakeState;
using protocol::Role;

// Fixed inputs. Every key is 32 copies of one byte so the document can state them in words.
constexpr std::uint8_t k_initiator_sign_seed = 0x01;
constexpr std::uint8_t k_initiator_dh_private = 0x11;
constexpr std::uint8_t k_responder_sign_seed = 0x02;
constexpr std::uint8_t k_responder_dh_private = 0x12;
constexpr std::uint8_t k_third_sign_seed = 0x03;  // trusted by the initiator only
constexpr std::uint8_t k_third_dh_private = 0x13;
constexpr std::uint8_t k_initiator_ephemeral = 0x21;
constexpr std::uint8_t k_responder_ephemeral = 0x22;
constexpr std::uint8_t k_third_ephemeral = 0x23;
constexpr std::uint64_t k_initiator_clock_ms = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr std::uint64_t k_responder_clock_ms = 1'700'000'000'250;
// 200 s behind the initiator's clock: outside the default skew of 120 s (protocol.md §3.5).
constexpr std::uint64_t k_skewed_clock_ms = 1'699'999'800'000;
constexpr std::string_view k_responder_address = "127.0.0.1:7400";
constexpr std::size_t k_hex_line = 64;
constexpr std::size_t k_max_stored_block = 65535;  // RFC 1951 §3.2.4

// The provider of the generate() call running on this thread. A thread-local rather than a
// parameter of every helper below; thread-local so concurrent calls do not mix providers.
thread_local crypto::CryptoProvider* t_provider = nullptr;

crypto::CryptoProvider& provider() {
    return *t_provider;
}

// Selects the provider for the duration of one generate() call, restoring the previous one
// (a nested or later call on the same thread).
class ProviderScope {
  public:
    explicit ProviderScope(crypto::CryptoProvider& selected) : previous_(t_provider) {
        t_provider = &selected;
    }
    ~ProviderScope() { t_provider = previous_; }
    ProviderScope(const ProviderScope&) = delete;
    ProviderScope& operator=(const ProviderScope&) = delete;

  private:
    crypto::CryptoProvider* previous_;
};

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

Bytes bytes_of(std::string_view s) {
    return Bytes(s.begin(), s.end());
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
        // An empty value would read as the start of continuation lines (see parse()).
        require(!value.empty(), "empty value");
        out_ += name;
        out_ += ": ";
        out_ += value;
        out_ += '\n';
    }
    void number(std::string_view name, std::uint64_t value) {
        this->value(name, std::to_string(value));
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
    std::string name;
    std::uint8_t sign_seed;
    std::uint8_t dh_private;
    std::uint8_t ephemeral;
    std::uint64_t clock_ms;
    crypto::Identity identity;

    ByteView fingerprint() const { return identity.fingerprint().bytes(); }
    const crypto::DhPublic& dh_public() const { return identity.dh_key().public_key; }
};

Node make_node(std::string name, std::uint8_t sign_seed, std::uint8_t dh_private,
               std::uint8_t ephemeral, std::uint64_t clock_ms) {
    Node n{std::move(name), sign_seed, dh_private, ephemeral, clock_ms, {}};
    require(!crypto::Identity::from_private(provider(), filled(sign_seed).view(),
                                            filled(dh_private).view(), n.identity),
            "identity from fixed keys");
    return n;
}

crypto::DhPublic ephemeral_public(std::uint8_t ephemeral) {
    crypto::DhKeyPair kp;
    require(!provider().dh_from_private(filled(ephemeral).view(), kp), "ephemeral");
    return kp.public_key;
}

crypto::TrustedPeer trusted(const Node& n, std::string_view address = {}) {
    return {n.identity.public_identity(), n.identity.fingerprint(), n.name, std::string(address)};
}

crypto::TrustStore trust_of(std::initializer_list<const Node*> nodes) {
    crypto::TrustStore store;
    for (const Node* n : nodes)
        require(!store.add(trusted(*n)), "trust store");
    return store;
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

// The initiator of every vector: fixed ephemeral and clock, offering `suite`, asking for the
// responder, trusting `trust`.
HandshakeState make_initiator(const Node& ini, const Node& resp, const crypto::TrustStore& trust,
                              crypto::SuiteId suite) {
    protocol::HandshakeConfig c;
    c.provider = &provider();
    c.self = &ini.identity;
    c.trust = &trust;
    c.clock = [ms = ini.clock_ms] { return ms; };
    c.suites = {suite};
    c.test_only_ephemeral = filled(ini.ephemeral);
    return HandshakeState::initiator(std::move(c), resp.identity.fingerprint());
}

// The responder of every vector: default skew and suites, the given replay cache.
HandshakeState make_responder(const Node& resp, const crypto::TrustStore& trust,
                              protocol::ReplayCache* cache) {
    protocol::HandshakeConfig c;
    c.provider = &provider();
    c.self = &resp.identity;
    c.trust = &trust;
    c.clock = [ms = resp.clock_ms] { return ms; };
    c.replay_cache = cache;
    c.test_only_ephemeral = filled(resp.ephemeral);
    return HandshakeState::responder(std::move(c));
}

Handshake run_handshake(const Node& ini, const Node& resp, crypto::SuiteId suite) {
    const crypto::TrustStore ini_trust = trust_of({&resp});
    const crypto::TrustStore resp_trust = trust_of({&ini});
    auto initiator = make_initiator(ini, resp, ini_trust, suite);
    auto responder = make_responder(resp, resp_trust, nullptr);
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

// AEAD-Open of ciphertext || tag (the tag is the last 16 bytes).
Bytes aead_open(crypto::AeadAlgorithm aead, ByteView key, const crypto::Nonce& nonce, ByteView aad,
                ByteView sealed, const char* what) {
    require(sealed.size() >= crypto::k_aead_tag_size, what);
    Bytes plain(sealed.begin(),
                sealed.end() - static_cast<std::ptrdiff_t>(crypto::k_aead_tag_size));
    crypto::Tag tag{};
    std::copy(sealed.end() - static_cast<std::ptrdiff_t>(tag.size()), sealed.end(), tag.begin());
    require(!provider().make_opener(aead, key)->open(nonce, aad, plain, tag), what);
    return plain;
}

// The plaintext body of a connection message, opened with the seal key (protocol.md §3.2).
Bytes open_body(ByteView message, const SecretBytes& seal_key, crypto::AeadAlgorithm aead) {
    return aead_open(aead, seal_key.view(), crypto::Nonce{}, message.first(protocol::k_header_size),
                     message.subspan(protocol::k_header_size), "open sealed body");
}

// One connection message built from the formulas of protocol.md §3, independently of the
// handshake code, so that it can also be built wrong on purpose.
struct MessageSpec {
    crypto::SuiteId suite;
    Role role;
    crypto::DhPublic ephemeral;  // goes in the header
    Bytes es;                    // X25519(ephemeral private, receiver static), as the sender has it
    const Node* sender;
    crypto::DhPublic receiver_static;
    ByteView receiver_fingerprint;
    std::uint64_t timestamp_ms;
    ByteView initiator_message_hash;  // responder messages only
    bool corrupt_signature = false;
};

Bytes build_message(const MessageSpec& m) {
    Bytes header = concat({protocol::k_magic,
                           Bytes{protocol::k_version, static_cast<std::uint8_t>(m.suite),
                                 static_cast<std::uint8_t>(m.role), 0},
                           m.ephemeral});
    const SecretBytes seal_key =
        protocol::derive_seal_key(provider(), header, SecretBytes(m.es), m.receiver_static);
    const std::string_view label = m.role == Role::initiator
                                       ? protocol::k_label_initiator_signature
                                       : protocol::k_label_responder_signature;
    const Bytes timestamp = u64_bytes(m.timestamp_ms);
    const Bytes signed_data = concat({as_bytes(label), header, m.sender->fingerprint(),
                                      m.receiver_fingerprint, timestamp, m.initiator_message_hash});
    crypto::Signature signature = provider().sign(m.sender->identity.sign_key(), signed_data);
    if (m.corrupt_signature)
        signature[0] ^= 0x01;
    Bytes body = concat({m.sender->fingerprint(), timestamp, signature});
    crypto::Tag tag{};
    provider()
        .make_sealer(aead_of(m.suite), seal_key.view())
        ->seal(crypto::Nonce{}, header, body, tag);
    return concat({header, body, tag});
}

Bytes dh(std::uint8_t private_byte, const crypto::DhPublic& peer) {
    SecretBytes shared;
    require(!provider().dh_agree(filled(private_byte), peer, shared), "dh");
    return Bytes(shared.view().begin(), shared.view().end());
}

// One connection message with its intermediate values: es, seal key, signed string, body.
void write_message(Writer& w, const std::string& prefix, std::string_view label, ByteView message,
                   const Node& sender, const Node& receiver, crypto::AeadAlgorithm aead,
                   ByteView extra) {
    const ByteView header = message.first(protocol::k_header_size);
    SecretBytes es;
    require(!provider().dh_agree(filled(sender.ephemeral), receiver.dh_public(), es), "es");
    const SecretBytes seal_key =
        protocol::derive_seal_key(provider(), header, es, receiver.dh_public());
    const Bytes body = open_body(message, seal_key, aead);
    const ByteView timestamp = ByteView(body).subspan(32, 8);
    const Bytes signed_data = concat(
        {as_bytes(label), header, sender.fingerprint(), receiver.fingerprint(), timestamp, extra});
    w.hex(prefix + ".es", es.view());
    w.hex(prefix + ".seal_key", seal_key.view());
    w.hex(prefix + ".signed_data", signed_data);
    w.hex(prefix + ".body", body);
    w.hex(prefix + "_message", message);
}

crypto::Nonce record_nonce(std::uint64_t counter) {
    // protocol.md §5.2: nonce = 4 zero bytes || u64 counter.
    crypto::Nonce nonce{};
    const Bytes ctr = u64_bytes(counter);
    std::copy(ctr.begin(), ctr.end(), nonce.begin() + 4);
    return nonce;
}

// The AEAD plaintext of a record: DEFLATE output plus zero padding (protocol.md §5).
Bytes record_plaintext(ByteView record, crypto::AeadAlgorithm aead, const SecretBytes& key,
                       std::uint64_t counter) {
    return aead_open(aead, key.view(), record_nonce(counter),
                     record.first(protocol::k_record_prefix_size),
                     record.subspan(protocol::k_record_prefix_size), "record plaintext");
}

// A record sealed by RecordSealer and its AEAD plaintext (protocol.md §5).
void write_record(Writer& w, const std::string& name, protocol::RecordSealer& sealer,
                  protocol::RecordOpener& opener, crypto::AeadAlgorithm aead,
                  const SecretBytes& key, std::uint64_t counter, ByteView payload, int level) {
    Bytes record;
    require(!sealer.seal(payload, level, record), "seal record");
    Bytes check;
    opener.feed(record);
    require(opener.next(check).opened() && check == Bytes(payload.begin(), payload.end()),
            "record opens");
    w.number(name + ".level", static_cast<std::uint64_t>(level));
    w.hex(name + ".nonce", record_nonce(counter));
    w.hex(name + ".payload", payload);
    w.hex(name + ".plaintext", record_plaintext(record, aead, key, counter));
    w.hex(name, record);
}

Bytes framed(const protocol::Message& m) {
    Bytes out;
    require(!protocol::encode_message(m, out), "encode message");
    return out;
}

// A payload that DEFLATE level 6 shrinks well: one request whose JSON body repeats itself.
Bytes compressible_request() {
    std::string body = "{\"items\":[";
    for (int i = 0; i < 12; ++i) {
        if (i != 0)
            body += ',';
        body += "{\"name\":\"item-" + std::to_string(i) +
                "\",\"state\":\"available\",\"tags\":[\"red\",\"green\",\"blue\"]}";
    }
    body += "]}";
    return framed(protocol::Request{2, "kv.put", 0, {}, bytes_of(body)});
}

void write_handshake(Writer& w, const std::string& s, const Node& ini, const Node& resp,
                     crypto::SuiteId suite, const Handshake& h) {
    const auto aead = aead_of(suite);
    write_message(w, s + ".initiator", protocol::k_label_initiator_signature, h.initiator_message,
                  ini, resp, aead, {});
    const crypto::Digest hello_hash = provider().sha256(h.initiator_message);
    w.hex(s + ".initiator_message_hash", hello_hash);
    write_message(w, s + ".responder", protocol::k_label_responder_signature, h.responder_message,
                  resp, ini, aead, hello_hash);
    w.hex(s + ".ee", dh(ini.ephemeral, ephemeral_public(resp.ephemeral)));
    w.hex(s + ".transcript_hash", h.initiator.keys.transcript_hash);
    w.hex(s + ".k_ir", h.initiator.keys.send_key.view());
    w.hex(s + ".k_ri", h.initiator.keys.receive_key.view());
}

void write_records(Writer& w, const std::string& s, crypto::SuiteId suite, const Handshake& h) {
    const auto aead = aead_of(suite);
    const SecretBytes& k_ir = h.initiator.keys.send_key;
    const SecretBytes& k_ri = h.responder.keys.send_key;
    w.comment(s + ": records (§5, §6). i2r = initiator to responder, r2i = the reverse.");
    protocol::RecordSealer i2r(provider(), aead, k_ir);
    protocol::RecordOpener i2r_open(provider(), aead, h.responder.keys.receive_key);
    const Bytes request = framed(protocol::Request{1, "echo", 0, {}, bytes_of("hello")});
    write_record(w, s + ".record.i2r.0", i2r, i2r_open, aead, k_ir, 0, request, 0);
    w.comment("Level 6. For so short a payload libdeflate still emits a stored block; in");
    w.comment("general compressed bytes depend on the compressor and need not be reproduced.");
    write_record(w, s + ".record.i2r.1", i2r, i2r_open, aead, k_ir, 1, request, 6);
    w.comment("Level 6 on a payload that compresses (dynamic Huffman blocks). Another compressor");
    w.comment("produces other bytes; what must hold is that the record opens to the payload.");
    write_record(w, s + ".record.i2r.2", i2r, i2r_open, aead, k_ir, 2, compressible_request(), 6);
    protocol::RecordSealer r2i(provider(), aead, k_ri);
    protocol::RecordOpener r2i_open(provider(), aead, h.initiator.keys.receive_key);
    const Bytes response =
        framed(protocol::Response{1, protocol::Status::ok, {}, bytes_of("hello")});
    write_record(w, s + ".record.r2i.0", r2i, r2i_open, aead, k_ri, 0, response, 0);

    w.comment("Key update (§5.4) of both directions, and the first record under the next k_ir:");
    w.comment("with records_per_key = 1 (the default is 2^24) it follows record i2r.0 and uses");
    w.comment("counter 0 again.");
    const SecretBytes k_ir_next = protocol::next_traffic_key(provider(), k_ir);
    w.hex(s + ".k_ir_next", k_ir_next.view());
    w.hex(s + ".k_ri_next", protocol::next_traffic_key(provider(), k_ri).view());
    protocol::RecordLimits one_per_key;
    one_per_key.records_per_key = 1;
    protocol::RecordSealer updating(provider(), aead, k_ir, one_per_key);
    protocol::RecordOpener updating_open(provider(), aead, h.responder.keys.receive_key,
                                         one_per_key);
    Bytes first;
    require(!updating.seal(request, 0, first), "seal before update");
    Bytes check;
    updating_open.feed(first);
    require(updating_open.next(check).opened(), "open before update");
    write_record(w, s + ".record.i2r_next.0", updating, updating_open, aead, k_ir_next, 0, request,
                 0);
}

// protocol.md §5.1: level-0 output of a payload too large for one stored block, shown by its
// size, block lengths and SHA-256 (the bytes themselves would fill pages).
void write_stored_blocks(Writer& w) {
    constexpr std::size_t k_size = 2 * k_max_stored_block + 1;
    Bytes payload(k_size);
    for (std::size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<std::uint8_t>(i % 251);
    // Sealed with an arbitrary key that appears nowhere else, and opened again right here.
    const SecretBytes key = filled(0x5a);
    const auto aead = crypto::AeadAlgorithm::aes_256_gcm;
    protocol::RecordSealer sealer(provider(), aead, key);
    Bytes record;
    require(!sealer.seal(payload, 0, record), "seal stored");
    const Bytes plaintext = record_plaintext(record, aead, key, 0);
    // Walk the stored blocks (RFC 1951 §3.2.4) to where the DEFLATE stream ends.
    std::size_t pos = 0;
    std::string lengths;
    for (bool final = false; !final;) {
        require(pos + 5 <= plaintext.size() && (plaintext[pos] & 0xfe) == 0, "stored block header");
        final = plaintext[pos] == 1;
        const std::size_t len = plaintext[pos + 1] | (std::size_t{plaintext[pos + 2]} << 8);
        const std::size_t nlen = plaintext[pos + 3] | (std::size_t{plaintext[pos + 4]} << 8);
        require((len ^ 0xffff) == nlen, "stored block NLEN");
        lengths += (lengths.empty() ? "" : " ") + std::to_string(len);
        pos += 5 + len;
    }
    require(pos <= plaintext.size(), "stored blocks fit");
    for (std::size_t i = pos; i < plaintext.size(); ++i)
        require(plaintext[i] == 0, "zero padding");
    const ByteView deflate = ByteView(plaintext).first(pos);
    w.comment("Level-0 DEFLATE (§5.1) of a payload of 131071 bytes, byte i being i mod 251 (not");
    w.comment("framed messages: this shows the block splitting only).");
    w.number("stored.payload_size", k_size);
    w.value("stored.block_lengths", lengths);
    w.number("stored.deflate_size", deflate.size());
    w.hex("stored.deflate_sha256", provider().sha256(deflate));
    w.hex("stored.deflate_first_block_header", deflate.first(5));
    w.hex("stored.deflate_last_block_header", deflate.subspan(2 * (5 + k_max_stored_block), 5));
}

void write_metadata(Writer& w, const std::string& name, const protocol::Metadata& metadata) {
    w.number(name + ".metadata_count", metadata.size());
    for (std::size_t i = 0; i < metadata.size(); ++i) {
        const std::string entry = name + ".metadata." + std::to_string(i);
        w.value(entry + ".key", metadata[i].first);
        w.value(entry + ".value", metadata[i].second);
    }
}

// protocol.md §6.2: one framed envelope of each type, with the fields that went into it.
void write_envelopes(Writer& w) {
    w.comment("Envelopes (§6): each value is varint(len(envelope)) || envelope. The request's id");
    w.comment("and length, and the response's id (>= 2^14), are multi-byte varints.");
    const protocol::Request request{
        300,
        "kv.put",
        1500,
        {{"trace", "ab12"}, {std::string(protocol::k_metadata_no_compress), "1"}},
        bytes_of("{\"key\":\"greeting\",\"value\":\"a value long enough to make the envelope "
                 "longer than 127 bytes\"}")};
    w.number("envelope.request.id", request.id);
    w.number("envelope.request.timeout_ms", request.timeout_ms);
    w.value("envelope.request.method", request.method);
    write_metadata(w, "envelope.request", request.metadata);
    w.hex("envelope.request.body", request.body);
    w.number("envelope.request.envelope_size", protocol::envelope_size(request));
    w.hex("envelope.request", framed(request));

    const protocol::Response response{
        70000, protocol::Status::not_found, {{"retry", "no"}}, bytes_of("no such key")};
    w.number("envelope.response.id", response.id);
    w.number("envelope.response.status", static_cast<std::uint64_t>(response.status));
    write_metadata(w, "envelope.response", response.metadata);
    w.hex("envelope.response.body", response.body);
    w.hex("envelope.response", framed(response));

    const protocol::Notification notification{"journal.update", {}, bytes_of("{\"entries\":[]}")};
    w.value("envelope.notification.method", notification.method);
    write_metadata(w, "envelope.notification", notification.metadata);
    w.hex("envelope.notification.body", notification.body);
    w.hex("envelope.notification", framed(notification));

    w.number("envelope.cancel.id", 300);
    w.hex("envelope.cancel", framed(protocol::Cancel{300}));
    constexpr std::uint64_t opaque = 0x0102030405060708;
    w.hex("envelope.ping.opaque", u64_bytes(opaque));
    w.hex("envelope.ping", framed(protocol::Ping{opaque}));
    w.hex("envelope.pong.opaque", u64_bytes(opaque));
    w.hex("envelope.pong", framed(protocol::Pong{opaque}));
    const protocol::GoAway goaway{300, "closing"};
    w.number("envelope.goaway.last_request_id", goaway.last_request_id);
    w.value("envelope.goaway.reason", goaway.reason);
    w.hex("envelope.goaway", framed(goaway));
    w.hex("envelope.end", framed(protocol::End{}));
}

// One refused connection message, fed to a fresh receiver (protocol.md §3.5, §3.6).
struct Refusal {
    std::string name;
    bool to_initiator = false;   // else to the responder
    bool replay_first = false;   // the responder has already accepted suite1.initiator_message
    bool end_of_stream = false;  // the input is followed by end of stream
    Bytes input;
};

void write_refusals(Writer& w, const Node& ini, const Node& resp, const Node& third,
                    const Handshake& h) {
    w.comment("Refused connection messages (§3.5, §3.6), suite 1. A receiver that gets `input`");
    w.comment("(then end of stream when end_of_stream is yes) answers `reply` (nope), closes,");
    w.comment("and logs `reason`. The responder is the responder above: it trusts the initiator");
    w.comment("only, its clock reads responder.timestamp_ms, max skew 120000 ms, suites 1 and 2,");
    w.comment("a replay cache. The initiator is the initiator above: it trusts the responder and");
    w.comment("third, offered suite 1 to the responder and sent suite1.initiator_message.");
    const Bytes& good = h.initiator_message;
    const crypto::SuiteId suite1 = crypto::SuiteId::x25519_ed25519_aes256gcm_sha256;
    const auto with_byte = [&](std::size_t at, std::uint8_t value) {
        Bytes m = good;
        m[at] = value;
        return m;
    };
    // A correctly built initiator message, varied one way at a time below.
    const MessageSpec valid{suite1,
                            Role::initiator,
                            ephemeral_public(ini.ephemeral),
                            dh(ini.ephemeral, resp.dh_public()),
                            &ini,
                            resp.dh_public(),
                            resp.fingerprint(),
                            ini.clock_ms,
                            {},
                            false};
    require(build_message(valid) == good, "built message equals the handshake's");

    std::vector<Refusal> refusals;
    refusals.push_back({"bad_magic", false, false, false, with_byte(3, 'Q')});  // "SDMQ"
    refusals.push_back({"unsupported_version", false, false, false, with_byte(4, 2)});
    refusals.push_back({"unsupported_suite", false, false, false, with_byte(5, 3)});
    refusals.push_back({"bad_role", false, false, false, with_byte(6, 2)});
    refusals.push_back({"reserved_set", false, false, false, with_byte(7, 1)});
    Bytes tampered = good;
    tampered.back() ^= 0x01;  // last byte of the tag
    refusals.push_back({"tampered_tag", false, false, false, tampered});

    MessageSpec stranger = valid;  // signed and sealed correctly by a peer the responder lacks
    stranger.sender = &third;
    stranger.ephemeral = ephemeral_public(third.ephemeral);
    stranger.es = dh(third.ephemeral, resp.dh_public());
    refusals.push_back({"unknown_signer", false, false, false, build_message(stranger)});

    MessageSpec bad_signature = valid;
    bad_signature.corrupt_signature = true;  // first byte of the signature flipped, then sealed
    refusals.push_back({"bad_signature", false, false, false, build_message(bad_signature)});

    // A trusted peer other than the one the initiator asked for answers, correctly otherwise.
    const crypto::Digest hello_hash = provider().sha256(good);
    const MessageSpec impostor{suite1,
                               Role::responder,
                               ephemeral_public(third.ephemeral),
                               dh(third.ephemeral, ini.dh_public()),
                               &third,
                               ini.dh_public(),
                               ini.fingerprint(),
                               resp.clock_ms,
                               hello_hash,
                               false};
    refusals.push_back({"wrong_responder", true, false, false, build_message(impostor)});

    // Ephemeral 0 (a low-order value): es is all zero; the body is sealed with the key derived
    // from 32 zero bytes and signed correctly, so the ephemeral is the only fault.
    MessageSpec low_order = valid;
    low_order.ephemeral = crypto::DhPublic{};
    low_order.es = Bytes(32, 0);
    refusals.push_back({"low_order_ephemeral", false, false, false, build_message(low_order)});

    MessageSpec skewed = valid;
    skewed.timestamp_ms = k_skewed_clock_ms;
    refusals.push_back({"clock_skew", false, false, false, build_message(skewed)});

    refusals.push_back({"replayed_ephemeral", false, true, false, good});
    refusals.push_back({"truncated", false, false, true, Bytes(good.begin(), good.begin() + 100)});

    const crypto::TrustStore resp_trust = trust_of({&ini});
    const crypto::TrustStore ini_trust = trust_of({&resp, &third});
    for (const Refusal& r : refusals) {
        protocol::ReplayCache cache;
        HandshakeState receiver = r.to_initiator ? make_initiator(ini, resp, ini_trust, suite1)
                                                 : make_responder(resp, resp_trust, &cache);
        if (r.to_initiator) {
            const auto hello = take<protocol::action::Send>(receiver.next(), "initiator send");
            require(hello.bytes == good, "initiator message as in suite 1");
        }
        if (r.replay_first) {
            auto first = make_responder(resp, resp_trust, &cache);
            first.feed(good);
            take<protocol::action::Send>(first.next(), "first acceptance");
        }
        receiver.feed(r.input);
        if (r.end_of_stream)
            receiver.feed_eof();
        const auto failed = take<protocol::action::Failed>(receiver.next(), "refusal");
        const std::string p = "reject." + r.name;
        w.value(p + ".receiver", r.to_initiator ? "initiator" : "responder");
        if (r.replay_first)
            w.value(p + ".before", "the responder accepted suite1.initiator_message");
        w.hex(p + ".input", r.input);
        w.value(p + ".end_of_stream", r.end_of_stream ? "yes" : "no");
        w.value(p + ".reason", protocol::to_string(failed.reason));
        if (failed.reply.empty()) {
            w.value(p + ".reply", "none");
        } else {
            w.hex(p + ".reply", failed.reply);
        }
    }
}

// Removes the folder it made when it goes out of scope.
class TempDir {
  public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "sdmp-vectors-XXXXXX").string();
        require(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    require(in.good(), "read written file");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A text file as written, one value per line (`name.lineN`, from 1) and its size in bytes.
void write_file(Writer& w, const std::string& name, const std::string& content) {
    require(!content.empty() && content.back() == '\n', "file ends with a newline");
    w.number(name + ".size", content.size());
    std::size_t number = 0;
    for (std::size_t pos = 0; pos < content.size();) {
        const std::size_t end = content.find('\n', pos);
        w.value(name + ".line" + std::to_string(++number), content.substr(pos, end - pos));
        pos = end + 1;
    }
}

// protocol.md §7, written by the library's own writers into a temporary folder.
void write_files(Writer& w, const Node& ini, const Node& resp) {
    w.comment("Files (§7) as the library writes them. Each `NAME.lineN` is one line of the file");
    w.comment("without its newline; every line ends with \\n, and NAME.size counts all bytes.");
    const TempDir dir;
    require(!crypto::save_identity(ini.identity, dir.path() / "initiator.key"), "save identity");
    write_file(w, "file.initiator_key", read_text(dir.path() / "initiator.key"));

    // A folder trust store writes each peer as a §7.2 file with its name and address.
    crypto::TrustStore one;
    require(!one.add(trusted(resp, k_responder_address)), "trust store");
    fs::create_directory(dir.path() / "peers");
    require(!one.save(dir.path() / "peers"), "save folder store");
    write_file(w, "file.responder_pub", read_text(dir.path() / "peers" / "responder.pub"));

    crypto::TrustStore two;
    require(!two.add(trusted(ini)), "trust store");
    require(!two.add(trusted(resp, k_responder_address)), "trust store");
    require(!two.save(dir.path() / "trust"), "save file store");
    write_file(w, "file.trust_store", read_text(dir.path() / "trust"));
}

// docs/apps.md "Journal format": the responder's journal after the initiator published two
// resources.
void write_journal(Writer& w, const Node& ini, const Node& resp) {
    w.comment("Journal lines (docs/apps.md, journal format) of the responder's node, after the");
    w.comment("initiator published resource1 then resource2.");
    const std::string line1 = resp.identity.fingerprint().hex();
    w.value("journal.line1", line1);
    std::string previous = line1;
    for (int i = 1; i <= 2; ++i) {
        const Bytes resource = bytes_of("resource " + std::to_string(i) + "\n");
        const services::JournalEntry entry{services::line_number_after(previous),
                                           ini.identity.fingerprint(),
                                           services::resource_id_of(resource)};
        const std::string text = entry.text();
        require(services::JournalEntry::parse(text) == entry && services::follows(entry, previous),
                "journal line");
        w.hex("journal.resource" + std::to_string(i), resource);
        w.value("journal.line" + std::to_string(i + 1), text);
        previous = text;
    }
}

}  // namespace

std::string generate() {
    return generate(crypto::default_provider());
}

std::string generate(crypto::CryptoProvider& selected) {
    const ProviderScope scope(selected);
    const Node ini = make_node("initiator", k_initiator_sign_seed, k_initiator_dh_private,
                               k_initiator_ephemeral, k_initiator_clock_ms);
    const Node resp = make_node("responder", k_responder_sign_seed, k_responder_dh_private,
                                k_responder_ephemeral, k_responder_clock_ms);
    const Node third = make_node("third", k_third_sign_seed, k_third_dh_private, k_third_ephemeral,
                                 k_responder_clock_ms);
    Writer w;
    w.comment(
        "sdmp protocol version 1 test vectors (docs/protocol.md §8), printed by sdmp-vectors.");
    w.comment("Byte strings are lower-case hex; a long one continues on indented lines of 64.");
    w.comment("Every private key below is 32 copies of one byte.");
    w.blank();

    w.comment("Inputs: identities (§1), ephemerals, clocks. `third` only appears in refusals.");
    for (const Node* n : {&ini, &resp, &third}) {
        const std::string& who = n->name;
        w.hex(who + ".sign_seed", filled(n->sign_seed).view());
        w.hex(who + ".sign_public", n->identity.public_identity().sign_public);
        w.hex(who + ".dh_private", filled(n->dh_private).view());
        w.hex(who + ".dh_public", n->identity.public_identity().dh_public);
        w.value(who + ".fingerprint", n->identity.fingerprint().hex());
        w.hex(who + ".ephemeral_private", filled(n->ephemeral).view());
        w.hex(who + ".ephemeral_public", ephemeral_public(n->ephemeral));
        if (n == &third)
            continue;  // its clock is the responder's
        w.number(who + ".timestamp_ms", n->clock_ms);
        w.hex(who + ".timestamp", u64_bytes(n->clock_ms));
    }

    std::optional<Handshake> suite1;
    for (const auto suite : {crypto::SuiteId::x25519_ed25519_aes256gcm_sha256,
                             crypto::SuiteId::x25519_ed25519_chacha20poly1305_sha256}) {
        const std::string s = "suite" + std::to_string(static_cast<int>(suite));
        Handshake h = run_handshake(ini, resp, suite);
        w.blank();
        w.comment("Suite " + std::to_string(static_cast<int>(suite)) + " (" +
                  std::string(crypto::find_suite(static_cast<std::uint8_t>(suite))->name) +
                  "): handshake (§3, §4)");
        write_handshake(w, s, ini, resp, suite, h);
        w.blank();
        write_records(w, s, suite, h);
        if (!suite1)
            suite1 = std::move(h);
    }
    w.blank();
    write_stored_blocks(w);
    w.blank();
    write_envelopes(w);
    w.blank();
    write_refusals(w, ini, resp, third, *suite1);
    w.blank();
    write_files(w, ini, resp);
    w.blank();
    write_journal(w, ini, resp);
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
