// Fuzz-target bodies and their seed generators (see targets.hpp for each target's input layout
// and invariants). Written from docs/protocol.md against the public headers of protocol/ and
// crypto/ only, so a disagreement between the spec and the implementation shows up as a crash.
#include "targets.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/suite.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/error.hpp"
#include "sdmp/protocol/handshake.hpp"
#include "sdmp/protocol/key_schedule.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_limits.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"
#include "sdmp/protocol/replay_cache.hpp"
#include "sdmp/protocol/wire.hpp"

namespace sdmp::fuzz {

namespace {

namespace action = protocol::action;
using crypto::AeadAlgorithm;
using crypto::Identity;
using crypto::SecretBytes;
using crypto::SuiteId;
using protocol::HandshakeAction;
using protocol::HandshakeError;
using protocol::HandshakeState;
using protocol::Role;

// ------------------------------------------------------------------------------ invariants

[[noreturn]] void violated(const char* what) {
    std::fprintf(stderr, "sdmp fuzz: invariant violated: %s\n", what);
    std::abort();
}

void require(bool ok, const char* what) {
    if (!ok)
        violated(what);
}

crypto::CryptoProvider& provider() {
    return crypto::default_provider();
}

bool same_bytes(ByteView a, ByteView b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

void append(Bytes& out, ByteView bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

// ------------------------------------------------------------------------------ fixtures

// protocol.md §8: the clocks and ephemerals of the test vectors.
constexpr std::uint64_t k_initiator_now = 1'700'000'000'000;
constexpr std::uint64_t k_responder_now = k_initiator_now + 250;
constexpr std::uint8_t k_initiator_ephemeral = 0x21;
constexpr std::uint8_t k_responder_ephemeral = 0x22;

SecretBytes filled(std::uint8_t fill) {
    SecretBytes s(32);
    std::fill(s.span().begin(), s.span().end(), fill);
    return s;
}

Identity make_identity(std::uint8_t sign_fill, std::uint8_t dh_fill) {
    Identity id;
    const SecretBytes seed = filled(sign_fill);
    const SecretBytes dh = filled(dh_fill);
    if (Identity::from_private(provider(), seed.view(), dh.view(), id)) {
        violated("fixture: identity from fixed keys");
    }
    return id;
}

crypto::TrustedPeer trusted(const Identity& id, std::string name) {
    return crypto::TrustedPeer{id.public_identity(), id.fingerprint(), std::move(name), {}};
}

struct Fixture {
    Identity alice = make_identity(0x01, 0x11);    // the initiator
    Identity bob = make_identity(0x02, 0x12);      // the responder alice calls
    Identity carol = make_identity(0x03, 0x13);    // trusted by both, not the one alice calls
    Identity mallory = make_identity(0x04, 0x14);  // trusted by nobody
    crypto::TrustStore alice_trust;                // bob, carol
    crypto::TrustStore bob_trust;                  // alice, carol

    Fixture() {
        require(
            !alice_trust.add(trusted(bob, "bob")) && !alice_trust.add(trusted(carol, "carol")) &&
                !bob_trust.add(trusted(alice, "alice")) && !bob_trust.add(trusted(carol, "carol")),
            "fixture: trust stores");
    }
};

const Fixture& fixture() {
    static const Fixture f;
    return f;
}

protocol::HandshakeConfig initiator_config(SuiteId suite) {
    const Fixture& f = fixture();
    protocol::HandshakeConfig c;
    c.provider = &provider();
    c.self = &f.alice;
    c.trust = &f.alice_trust;
    c.clock = [] { return k_initiator_now; };
    c.suites = {suite};
    c.test_only_ephemeral = filled(k_initiator_ephemeral);  // reproducible runs
    return c;
}

protocol::HandshakeConfig responder_config(protocol::ReplayCache* cache) {
    const Fixture& f = fixture();
    protocol::HandshakeConfig c;
    c.provider = &provider();
    c.self = &f.bob;
    c.trust = &f.bob_trust;
    c.clock = [] { return k_responder_now; };
    c.replay_cache = cache;
    c.test_only_ephemeral = filled(k_responder_ephemeral);
    return c;
}

HandshakeState alice_calls_bob(SuiteId suite) {
    return HandshakeState::initiator(initiator_config(suite), fixture().bob.fingerprint());
}

HandshakeState bob_responds(protocol::ReplayCache* cache) {
    return HandshakeState::responder(responder_config(cache));
}

// The fixed key of the record targets; `salt` gives a second, unrelated key.
SecretBytes record_key(std::uint8_t salt = 0) {
    SecretBytes key(32);
    for (std::size_t i = 0; i < key.size(); ++i) {
        key.data()[i] = static_cast<std::uint8_t>(0x42 + salt + 7 * i);
    }
    return key;
}

// protocol.md §5.2: nonce = 4 zero bytes || u64 counter.
crypto::Nonce record_nonce(std::uint64_t counter) {
    crypto::Nonce nonce{};
    for (std::size_t i = 0; i < 8; ++i) {
        nonce[nonce.size() - 1 - i] = static_cast<std::uint8_t>(counter >> (8 * i));
    }
    return nonce;
}

// ------------------------------------------------------------------------------ stream inputs

constexpr std::uint8_t k_opt_eof = 1;     // handshake: end-of-stream after the last chunk
constexpr std::uint8_t k_opt_abort = 2;   // handshake: abort(timeout) after the first chunk
constexpr std::uint8_t k_opt_suite2 = 4;  // initiator: offer suite 2
constexpr std::uint8_t k_opt_chacha = 1;  // records: ChaCha20-Poly1305
constexpr std::uint8_t k_opt_small = 2;   // records: small limits
constexpr std::uint8_t k_opt_feed = 4;    // records: feed() rather than prepare()/commit()
constexpr std::uint8_t k_opt_view = 32;   // records: next_view() (the session's) rather than next()

struct Stream {
    std::uint8_t options = 0;
    ByteView all;
    std::vector<ByteView> chunks;
};

Stream parse_stream(ByteView in) {
    Stream s;
    if (in.empty())
        return s;
    const std::size_t n = in[0] & 0x07u;
    s.options = static_cast<std::uint8_t>(in[0] >> 3);
    const std::size_t sizes_end = std::min(in.size(), 1 + n);
    std::vector<std::size_t> sizes;
    for (std::size_t i = 1; i < sizes_end; ++i)
        sizes.push_back(std::size_t{in[i]} + 1);
    s.all = in.subspan(sizes_end);
    std::size_t pos = 0;
    for (std::size_t i = 0; pos < s.all.size(); ++i) {
        const std::size_t want = sizes.empty() ? s.all.size() : sizes[i % sizes.size()];
        const std::size_t take = std::min(want, s.all.size() - pos);
        s.chunks.push_back(s.all.subspan(pos, take));
        pos += take;
    }
    return s;
}

Bytes stream_input(std::uint8_t options, std::initializer_list<std::size_t> sizes,
                   ByteView stream) {
    Bytes out;
    out.push_back(static_cast<std::uint8_t>((options << 3) | (sizes.size() & 0x07u)));
    for (const std::size_t size : sizes)
        out.push_back(static_cast<std::uint8_t>(size - 1));
    append(out, stream);
    return out;
}

// ------------------------------------------------------------------------------ messages (§6)

const protocol::MessageLimits& tight_limits() {
    static const protocol::MessageLimits limits{.max_message_size = 64,
                                                .max_method_size = 8,
                                                .max_metadata_entries = 2,
                                                .max_metadata_key_size = 8,
                                                .max_metadata_value_size = 16,
                                                .max_reason_size = 16};
    return limits;
}

// protocol.md §6: the encoding is canonical (minimal varints, bodies as the rest), so whatever
// decodes must re-encode to exactly the bytes it came from.
void check_round_trip(ByteView in, const protocol::MessageLimits& limits) {
    std::vector<protocol::Message> messages;
    if (!protocol::decode_messages(in, messages, limits)) {
        require(!messages.empty(), "decode_messages succeeded without a message");
        Bytes again;
        std::size_t predicted = 0;
        for (const auto& m : messages) {
            predicted += protocol::encoded_size(m);
            require(!protocol::encode_message(m, again, limits),
                    "a message decode_messages accepted does not re-encode");
        }
        require(predicted == again.size(), "encoded_size() disagrees with encode_message()");
        require(same_bytes(again, in), "decode_messages then encode_message is not the identity");
    }
    protocol::Message message;
    if (!protocol::decode_message(in, message, limits)) {
        Bytes again;
        require(!protocol::encode_message(message, again, limits),
                "a message decode_message accepted does not re-encode");
        require(protocol::encoded_size(message) == again.size(),
                "encoded_size() disagrees with encode_message()");
        Bytes framed;
        protocol::put_varint(in.size(), framed);
        append(framed, in);
        require(same_bytes(again, framed),
                "decode_message then encode_message is not the identity");
    }
}

// protocol.md §6.1: a varint that decodes is minimal, so it re-encodes to the same bytes.
void check_varint(ByteView in) {
    std::size_t pos = 0;
    std::uint64_t value = 0;
    if (protocol::get_varint(in, pos, value))
        return;
    require(pos == protocol::varint_size(value), "get_varint consumed a non-minimal length");
    Bytes again;
    protocol::put_varint(value, again);
    require(same_bytes(again, in.first(pos)), "get_varint then put_varint is not the identity");
}

// ------------------------------------------------------------------------------ records (§5)

struct RecordSetup {
    AeadAlgorithm aead = AeadAlgorithm::aes_256_gcm;
    protocol::RecordLimits limits;
    bool use_feed = false;
    bool use_view = false;
    std::size_t prepare_min = 1;
};

RecordSetup record_setup(std::uint8_t options) {
    RecordSetup s;
    if ((options & k_opt_chacha) != 0)
        s.aead = AeadAlgorithm::chacha20_poly1305;
    if ((options & k_opt_small) != 0) {
        s.limits.records_per_key = 2;
        s.limits.max_record_size = 16 * protocol::k_padding_block + crypto::k_aead_tag_size;
        s.limits.max_payload_size = 4096;
    }
    s.use_feed = (options & k_opt_feed) != 0;
    s.use_view = (options & k_opt_view) != 0;
    static constexpr std::array<std::size_t, 4> k_prepare_sizes = {1, 64, 4096, 65536};
    s.prepare_min = k_prepare_sizes[(options >> 3) & 0x03u];
    return s;
}

bool documented_record_error(std::error_code ec) {
    // record_opener.hpp lists the fatal errors; malformed is an empty payload (protocol.md §5.1).
    return ec == errc::limit_exceeded || ec == errc::authentication_failed ||
           ec == errc::decompression_failed || ec == errc::bad_padding ||
           ec == errc::counter_exhausted || ec == errc::malformed;
}

struct OpenResult {
    std::vector<Bytes> payloads;
    std::error_code end = errc::need_more_data;  // or the fatal error that ended the stream
};

// Pulls every complete record (protocol.md §5.3).
void drain(protocol::RecordOpener& opener, const RecordSetup& setup, OpenResult& r) {
    const protocol::RecordLimits& limits = setup.limits;
    for (;;) {
        require(opener.bytes_wanted() >= 1, "bytes_wanted() must be at least 1");
        Bytes payload;
        std::error_code ec;
        if (setup.use_view) {
            ByteView view;
            ec = opener.next_view(view);
            require(!ec || view.empty(), "next_view() gave a payload with an error");
            payload.assign(view.begin(), view.end());
        } else {
            ec = opener.next(payload);
        }
        if (!ec) {
            require(!payload.empty(), "opened an empty payload (protocol.md §5.1)");
            require(payload.size() <= limits.max_payload_size, "payload above max_payload_size");
            r.payloads.push_back(std::move(payload));
            require(opener.records_opened() == r.payloads.size(), "records_opened() miscounts");
            // protocol.md §5.4 (the byte limit is far out of reach of a fuzz input).
            require(opener.key_generation() == r.payloads.size() / limits.records_per_key,
                    "key generation does not follow records_per_key");
            continue;
        }
        r.end = ec;
        if (ec == errc::need_more_data)
            return;
        require(documented_record_error(ec), "RecordOpener returned an undocumented error");
        Bytes again;
        require(opener.next(again) == ec, "a fatal record error is not sticky");
        return;
    }
}

void put(protocol::RecordOpener& opener, const RecordSetup& setup, ByteView chunk) {
    if (setup.use_feed) {
        opener.feed(chunk);
        return;
    }
    const std::size_t want = std::max(chunk.size(), setup.prepare_min);
    const MutableByteView space = opener.prepare(want);
    require(space.size() >= want, "prepare() offered less than asked");
    std::copy(chunk.begin(), chunk.end(), space.begin());
    opener.commit(chunk.size());
}

OpenResult open_chunks(const RecordSetup& setup, const SecretBytes& key,
                       std::span<const ByteView> chunks) {
    protocol::RecordOpener opener(provider(), setup.aead, key, setup.limits);
    OpenResult r;
    drain(opener, setup, r);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        put(opener, setup, chunks[i]);
        drain(opener, setup, r);
        if (r.end == errc::need_more_data)
            continue;
        // protocol.md §5.6: after a fatal error nothing more is interpreted.
        if (i + 1 < chunks.size()) {
            put(opener, setup, chunks[i + 1]);
            Bytes payload;
            require(opener.next(payload) == r.end, "bytes after a fatal record error were used");
        }
        break;
    }
    return r;
}

OpenResult open_stream(const Stream& s) {
    const RecordSetup setup = record_setup(s.options);
    return open_chunks(setup, record_key(), s.chunks);
}

// ------------------------------------------------------------------------------ handshake (§3)

bool is_nope(ByteView b) {
    return same_bytes(b, protocol::k_nope);
}

// protocol.md §3.6: every validation failure answers exactly `nope`, a message cut short by
// end-of-stream (truncated) included; only the peer's own refusal answers nothing.
void check_failed(const action::Failed& f) {
    switch (f.reason) {
        case HandshakeError::refused_by_peer:
            require(f.reply.empty(), "the peer's refusal must not be answered");
            return;
        case HandshakeError::none:
        case HandshakeError::internal:
            violated("handshake failed with none/internal before it ended");
        default:
            require(is_nope(f.reply), "a validation failure must answer exactly `nope`");
    }
}

void check_closed(HandshakeState& hs) {
    const std::array<std::uint8_t, 1> extra = {0x00};
    hs.feed(extra);
    const HandshakeAction a = hs.next();
    const auto* f = std::get_if<action::Failed>(&a);
    require(f != nullptr && f->reason == HandshakeError::internal && f->reply.empty(),
            "after Done/Failed, next() must return Failed{internal} and send nothing");
}

// protocol.md §3: the prefix of a connection message this side sends.
void check_own_message(ByteView m, Role sender, std::uint8_t suite) {
    require(m.size() == protocol::k_connection_message_size, "own connection message size");
    require(same_bytes(m.first(4), protocol::k_magic) && m[4] == protocol::k_version &&
                m[5] == suite && m[6] == static_cast<std::uint8_t>(sender) && m[7] == 0,
            "own connection message has a bad prefix");
}

void check_established(const protocol::Established& e, Role own, std::uint8_t suite) {
    const Fixture& f = fixture();
    require(static_cast<std::uint8_t>(e.suite.id) == suite, "established with another suite");
    require(e.keys.send_key.size() == crypto::k_aead_key_size &&
                e.keys.receive_key.size() == crypto::k_aead_key_size,
            "session key size (protocol.md §4)");
    require(!same_bytes(e.keys.send_key.view(), e.keys.receive_key.view()),
            "both directions share one key");
    const crypto::TrustStore& trust = own == Role::initiator ? f.alice_trust : f.bob_trust;
    const crypto::TrustedPeer* peer = trust.find(e.peer_fingerprint);
    require(peer != nullptr && peer->identity == e.peer && peer->name == e.peer_name,
            "established with a peer that is not in the trust store");
    if (own == Role::initiator) {
        require(e.peer_fingerprint == f.bob.fingerprint(),
                "initiator established with someone other than the peer it called (§3.5 step 3)");
    }
}

struct Responded {
    HandshakeError reason = HandshakeError::none;
    std::optional<protocol::Established> established;
    Bytes reply;  // bob's connection message when accepted
};

// Bob's responder on one whole input, then end-of-stream if it still waits.
Responded respond(ByteView message, protocol::ReplayCache& cache) {
    HandshakeState hs = bob_responds(&cache);
    {
        const HandshakeAction first = hs.next();
        const auto* need = std::get_if<action::Need>(&first);
        require(need != nullptr && need->count == protocol::k_prefix_size,
                "a responder starts by asking for the 8-byte prefix");
    }
    hs.feed(message);
    HandshakeAction a = hs.next();
    if (const auto* need = std::get_if<action::Need>(&a)) {
        require(message.size() < protocol::k_connection_message_size && need->count >= 1 &&
                    need->count <= protocol::k_connection_message_size - message.size(),
                "responder asks for more than the rest of a connection message");
        hs.feed_eof();
        a = hs.next();
        const auto* f = std::get_if<action::Failed>(&a);
        require(f != nullptr && f->reason == HandshakeError::truncated,
                "end-of-stream inside a connection message must be truncation");
    }
    if (const auto* f = std::get_if<action::Failed>(&a)) {
        check_failed(*f);
        check_closed(hs);
        return {f->reason, std::nullopt, {}};
    }
    auto* send = std::get_if<action::Send>(&a);
    require(send != nullptr && message.size() >= protocol::k_connection_message_size,
            "a responder answers a whole message with Send or Failed");
    check_own_message(send->bytes, Role::responder, message[5]);
    Responded r;
    r.reply = std::move(send->bytes);
    HandshakeAction d = hs.next();
    auto* done = std::get_if<action::Done>(&d);
    require(done != nullptr, "the responder's Send must be followed by Done");
    require(same_bytes(done->result.leftover, message.subspan(protocol::k_connection_message_size)),
            "leftover is not the bytes after the connection message");
    check_established(done->result, Role::responder, message[5]);
    check_closed(hs);
    r.established = std::move(done->result);
    return r;
}

// One run of a handshake driven like a real driver over a stream of chunks.
struct Run {
    std::optional<Bytes> sent;
    std::optional<protocol::Established> established;
    std::optional<HandshakeError> failed;
    Bytes fed;
    std::size_t chunks_fed = 0;
};

Run drive(HandshakeState& hs, Role role, std::uint8_t offered_suite,
          std::span<const ByteView> chunks, bool eof, bool abort_after_first) {
    Run run;
    bool eof_fed = false;
    bool aborted = false;
    auto feed_next = [&]() -> bool {
        if (run.chunks_fed < chunks.size()) {
            const ByteView chunk = chunks[run.chunks_fed++];
            hs.feed(chunk);
            append(run.fed, chunk);
            if (abort_after_first && !aborted) {
                hs.abort(HandshakeError::timeout);
                aborted = true;
            }
            return true;
        }
        if (eof && !eof_fed) {
            hs.feed_eof();
            eof_fed = true;
            return true;
        }
        return false;
    };
    // Every step feeds something or ends the run.
    for (std::size_t step = 0; step < chunks.size() + 8; ++step) {
        HandshakeAction a = hs.next();
        if (auto* send = std::get_if<action::Send>(&a)) {
            require(!run.sent.has_value(), "a handshake sent two connection messages");
            require(!aborted, "an aborted handshake sent a message");
            if (role == Role::initiator) {
                require(run.fed.empty(), "the initiator must send before it reads");
                check_own_message(send->bytes, role, offered_suite);
            } else {
                require(run.fed.size() >= protocol::k_connection_message_size,
                        "the responder answered before a whole message arrived");
                check_own_message(send->bytes, role, run.fed[5]);
            }
            run.sent = std::move(send->bytes);
            // The responder's driver writes; bytes read meanwhile belong to the leftover.
            if (role == Role::responder)
                feed_next();
            continue;
        }
        if (const auto* need = std::get_if<action::Need>(&a)) {
            require(need->count >= 1, "Need{0}");
            require(!aborted, "an aborted handshake still asks for bytes");
            if (role == Role::initiator)
                require(run.sent.has_value(), "initiator reads first");
            if (!feed_next())
                return run;  // waits for bytes that never come
            continue;
        }
        if (const auto* f = std::get_if<action::Failed>(&a)) {
            check_failed(*f);
            if (f->reason == HandshakeError::truncated)
                require(eof_fed, "truncated before EOF");
            if (f->reason == HandshakeError::refused_by_peer) {
                require(eof_fed && role == Role::initiator && is_nope(run.fed),
                        "refused_by_peer without exactly `nope` then end-of-stream");
            }
            if (aborted)
                require(f->reason == HandshakeError::timeout, "abort() was ignored");
            check_closed(hs);
            run.failed = f->reason;
            return run;
        }
        auto& done = std::get<action::Done>(a);
        require(!aborted, "an aborted handshake completed");
        require(run.sent.has_value(), "Done before this side sent its connection message");
        require(run.fed.size() >= protocol::k_connection_message_size &&
                    same_bytes(done.result.leftover,
                               ByteView(run.fed).subspan(protocol::k_connection_message_size)),
                "leftover is not the bytes fed after the connection message");
        check_established(done.result, role, role == Role::initiator ? offered_suite : run.fed[5]);
        check_closed(hs);
        run.established = std::move(done.result);
        return run;
    }
    violated("the handshake makes no progress");
}

// Chunking must not change a handshake's outcome: the state machine decides on the first 160
// bytes (and `nope` / end-of-stream), never on how they arrived.
void check_same_outcome(const Run& chunked, const Run& whole) {
    require(chunked.failed == whole.failed, "chunking changed the handshake verdict");
    require(chunked.established.has_value() == whole.established.has_value(),
            "chunking changed whether the handshake completes");
    require(chunked.sent.has_value() == whole.sent.has_value() &&
                (!chunked.sent || *chunked.sent == *whole.sent),
            "the same exchange produced another connection message");
    if (!chunked.established)
        return;
    const protocol::Established& a = *chunked.established;
    const protocol::Established& b = *whole.established;
    require(same_bytes(a.keys.send_key.view(), b.keys.send_key.view()) &&
                same_bytes(a.keys.receive_key.view(), b.keys.receive_key.view()) &&
                a.keys.transcript_hash == b.keys.transcript_hash &&
                a.peer_fingerprint == b.peer_fingerprint,
            "the same exchange derived other session keys");
}

// After the handshake the stream carries records under the receive key (protocol.md §4, §5).
void open_after_handshake(const protocol::Established& e, std::span<const ByteView> rest) {
    RecordSetup setup;
    setup.aead = e.suite.aead;
    setup.use_feed = true;
    std::vector<ByteView> chunks;
    if (!e.leftover.empty())
        chunks.push_back(e.leftover);
    chunks.insert(chunks.end(), rest.begin(), rest.end());
    const OpenResult r = open_chunks(setup, e.keys.receive_key, chunks);
    for (const Bytes& payload : r.payloads)
        check_round_trip(payload, protocol::MessageLimits{});
}

Run run_responder(const Stream& s, bool whole) {
    HandshakeState hs = bob_responds(nullptr);
    const std::array<ByteView, 1> one = {s.all};
    const std::span<const ByteView> chunks =
        whole ? std::span<const ByteView>(one).first(s.all.empty() ? 0 : 1) : s.chunks;
    return drive(hs, Role::responder, 0, chunks, (s.options & k_opt_eof) != 0,
                 !whole && (s.options & k_opt_abort) != 0);
}

Run run_initiator(const Stream& s, bool whole) {
    const SuiteId suite = (s.options & k_opt_suite2) != 0
                              ? SuiteId::x25519_ed25519_chacha20poly1305_sha256
                              : SuiteId::x25519_ed25519_aes256gcm_sha256;
    HandshakeState hs = alice_calls_bob(suite);
    const std::array<ByteView, 1> one = {s.all};
    const std::span<const ByteView> chunks =
        whole ? std::span<const ByteView>(one).first(s.all.empty() ? 0 : 1) : s.chunks;
    return drive(hs, Role::initiator, static_cast<std::uint8_t>(suite), chunks,
                 (s.options & k_opt_eof) != 0, !whole && (s.options & k_opt_abort) != 0);
}

int fuzz_handshake_stream(ByteView in, Run (*run_role)(const Stream&, bool)) {
    const Stream s = parse_stream(in);
    const Run chunked = run_role(s, false);
    if (chunked.established) {
        open_after_handshake(*chunked.established,
                             std::span<const ByteView>(s.chunks).subspan(chunked.chunks_fed));
    }
    if ((s.options & k_opt_abort) == 0)
        check_same_outcome(chunked, run_role(s, true));
    return 0;
}

// ------------------------------------------------------------------------------ seeds

Bytes bytes_of(std::string_view s) {
    const ByteView b = as_bytes(s);
    return Bytes(b.begin(), b.end());
}

Bytes concat(std::initializer_list<ByteView> parts) {
    Bytes out;
    for (const ByteView p : parts)
        append(out, p);
    return out;
}

Bytes encoded(std::initializer_list<protocol::Message> messages) {
    Bytes out;
    for (const auto& m : messages) {
        if (protocol::encode_message(m, out))
            violated("seed: encode_message");
    }
    return out;
}

// One envelope without its length frame.
Bytes envelope(const protocol::Message& m) {
    const Bytes framed = encoded({m});
    std::size_t pos = 0;
    std::uint64_t length = 0;
    if (protocol::get_varint(framed, pos, length))
        violated("seed: frame");
    return Bytes(framed.begin() + static_cast<std::ptrdiff_t>(pos), framed.end());
}

std::string text_body(std::size_t lines) {
    std::string s;
    for (std::size_t i = 0; i < lines; ++i) {
        s += "line " + std::to_string(i) + ": records are deflated, padded and sealed\n";
    }
    return s;
}

Bytes echo_request() {
    // protocol.md §8: request id 1, method "echo", no timeout, no metadata, body "hello".
    return encoded({protocol::Request{1, "echo", 0, {}, bytes_of("hello")}});
}

Bytes echo_response() {
    return encoded({protocol::Response{1, protocol::Status::ok, {}, bytes_of("hello")}});
}

Bytes text_payload() {
    return encoded({
        protocol::Request{
            7, "store", 2500, {{"content-type", "text/plain"}}, bytes_of(text_body(24))},
        protocol::Notification{"progress", {{"step", "1"}}, bytes_of(text_body(4))},
    });
}

Bytes all_types_payload() {
    return encoded({
        protocol::Request{3, "sum", 100, {{"k", "v"}}, {1, 2, 3}},
        protocol::Response{3, protocol::Status::ok, {}, {6}},
        protocol::Notification{"tick", {}, {}},
        protocol::Cancel{4},
        protocol::Ping{0x0102030405060708},
        protocol::Pong{0x0102030405060708},
        protocol::GoAway{3, "bye"},
        protocol::End{},
    });
}

// Records sealed by RecordSealer (protocol.md §5) under `key`.
Bytes seal_records(AeadAlgorithm aead, const SecretBytes& key, const protocol::RecordLimits& limits,
                   std::initializer_list<std::pair<ByteView, int>> payloads) {
    protocol::RecordSealer sealer(provider(), aead, key, limits);
    Bytes out;
    for (const auto& [payload, level] : payloads) {
        if (sealer.seal(payload, level, out))
            violated("seed: seal");
    }
    return out;
}

// The padded AEAD plaintext of the first record RecordSealer makes of `payload`.
Bytes record_plaintext(ByteView payload, int level) {
    const SecretBytes key = record_key();
    Bytes frame = seal_records(AeadAlgorithm::aes_256_gcm, key, {}, {{payload, level}});
    const std::size_t body =
        frame.size() - protocol::k_record_prefix_size - crypto::k_aead_tag_size;
    Bytes plain(frame.begin() + protocol::k_record_prefix_size,
                frame.begin() + static_cast<std::ptrdiff_t>(protocol::k_record_prefix_size + body));
    crypto::Tag tag{};
    std::copy(frame.end() - static_cast<std::ptrdiff_t>(tag.size()), frame.end(), tag.begin());
    if (provider()
            .make_opener(AeadAlgorithm::aes_256_gcm, key.view())
            ->open(record_nonce(0), ByteView(frame).first(protocol::k_record_prefix_size), plain,
                   tag)) {
        violated("seed: open");
    }
    return plain;
}

Bytes plaintext_input(std::uint8_t options, std::initializer_list<ByteView> segments) {
    Bytes out = {options};
    for (const ByteView s : segments) {
        if (s.size() > 0xffff)
            violated("seed: segment too long");
        out.push_back(static_cast<std::uint8_t>(s.size() >> 8));
        out.push_back(static_cast<std::uint8_t>(s.size()));
        append(out, s);
    }
    return out;
}

// A connection message written from protocol.md §3 alone (independent of protocol/src), for
// seeds that reach the steps after the seal: unknown signer, bad signature, wrong responder...
struct Craft {
    Role role = Role::initiator;
    SuiteId suite = SuiteId::x25519_ed25519_aes256gcm_sha256;
    std::uint8_t ephemeral_fill = 0x55;
    std::optional<crypto::DhPublic> raw_ephemeral;  // put in the header as is; `es` is zero
    const Identity* signer = nullptr;
    const crypto::PublicIdentity* seal_to = nullptr;
    crypto::Fingerprint signed_receiver;
    std::uint64_t timestamp = k_initiator_now;
    std::optional<crypto::Digest> initiator_hash;  // responder messages (§3.4)
    bool corrupt_signature = false;
};

Bytes craft(const Craft& c) {
    crypto::CryptoProvider& p = provider();
    crypto::DhPublic ephemeral{};
    SecretBytes es(crypto::k_dh_shared_size);
    if (c.raw_ephemeral) {
        ephemeral = *c.raw_ephemeral;
    } else {
        crypto::DhKeyPair pair;
        if (p.dh_from_private(filled(c.ephemeral_fill).view(), pair) ||
            p.dh_agree(pair.private_key, c.seal_to->dh_public, es)) {
            violated("seed: craft DH");
        }
        ephemeral = pair.public_key;
    }
    Bytes header = {'S',
                    'D',
                    'M',
                    'P',
                    1,
                    static_cast<std::uint8_t>(c.suite),
                    static_cast<std::uint8_t>(c.role),
                    0};
    append(header, ephemeral);

    const crypto::Digest& own = c.signer->fingerprint().bytes();
    std::array<std::uint8_t, 8> timestamp{};
    for (std::size_t i = 0; i < 8; ++i) {
        timestamp[7 - i] = static_cast<std::uint8_t>(c.timestamp >> (8 * i));
    }
    Bytes to_sign = bytes_of(c.role == Role::initiator ? "sdmp/1 initiator" : "sdmp/1 responder");
    append(to_sign, header);
    append(to_sign, own);
    append(to_sign, c.signed_receiver.bytes());
    append(to_sign, timestamp);
    if (c.initiator_hash)
        append(to_sign, *c.initiator_hash);
    crypto::Signature signature = p.sign(c.signer->sign_key(), to_sign);
    if (c.corrupt_signature)
        signature[17] ^= 0x01;

    Bytes body = concat({own, timestamp, signature});
    Bytes info = bytes_of("sdmp/1 seal");
    append(info, c.seal_to->dh_public);
    SecretBytes seal_key(32);
    p.hkdf(header, es.view(), info, seal_key.span());
    crypto::Tag tag{};
    const AeadAlgorithm aead = c.suite == SuiteId::x25519_ed25519_chacha20poly1305_sha256
                                   ? AeadAlgorithm::chacha20_poly1305
                                   : AeadAlgorithm::aes_256_gcm;
    p.make_sealer(aead, seal_key.view())->seal(crypto::Nonce{}, header, body, tag);
    return concat({header, body, tag});
}

Craft hello_from(const Identity& signer) {
    const Fixture& f = fixture();
    Craft c;
    c.signer = &signer;
    c.seal_to = &f.bob.public_identity();
    c.signed_receiver = f.bob.fingerprint();
    return c;
}

// A whole handshake between the fixtures, for the messages and session keys of the seeds.
struct Exchange {
    Bytes hello;
    Bytes reply;
    std::optional<protocol::Established> alice;
    std::optional<protocol::Established> bob;
};

Exchange exchange(SuiteId suite) {
    Exchange x;
    HandshakeState alice = alice_calls_bob(suite);
    HandshakeState bob = bob_responds(nullptr);
    HandshakeAction a = alice.next();
    x.hello = std::get<action::Send>(a).bytes;
    a = bob.next();
    bob.feed(x.hello);
    a = bob.next();
    if (!std::holds_alternative<action::Send>(a))
        violated("seed: bob refuses alice");
    x.reply = std::get<action::Send>(a).bytes;
    a = bob.next();
    x.bob = std::move(std::get<action::Done>(a).result);
    a = alice.next();
    alice.feed(x.reply);
    a = alice.next();
    if (!std::holds_alternative<action::Done>(a))
        violated("seed: alice refuses bob");
    x.alice = std::move(std::get<action::Done>(a).result);
    return x;
}

Bytes first(const Bytes& b, std::size_t n) {
    return Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
}

Bytes with_byte(Bytes b, std::size_t at, std::uint8_t value) {
    b[at] = value;
    return b;
}

std::vector<Seed> connection_message_seeds() {
    const Fixture& f = fixture();
    const Exchange s1 = exchange(SuiteId::x25519_ed25519_aes256gcm_sha256);
    const Exchange s2 = exchange(SuiteId::x25519_ed25519_chacha20poly1305_sha256);

    Craft bad_signature = hello_from(f.alice);
    bad_signature.corrupt_signature = true;
    Craft wrong_receiver = hello_from(f.alice);
    wrong_receiver.signed_receiver = f.carol.fingerprint();
    Craft sealed_to_carol = hello_from(f.alice);
    sealed_to_carol.seal_to = &f.carol.public_identity();
    Craft skewed = hello_from(f.alice);
    skewed.timestamp = k_initiator_now - 10 * 60 * 1000;
    Craft low_order = hello_from(f.alice);
    low_order.raw_ephemeral = crypto::DhPublic{};  // u = 0: DH result all zero (§3.3)
    Craft carol_suite2 = hello_from(f.carol);
    carol_suite2.suite = SuiteId::x25519_ed25519_chacha20poly1305_sha256;

    return {
        {"valid_suite1.bin", s1.hello},  // = suite1.initiator_message of protocol.md §8
        {"valid_suite2.bin", s2.hello},
        {"valid_trailing.bin", concat({s1.hello, as_bytes("trailing record bytes")})},
        {"carol_valid.bin", craft(hello_from(f.carol))},
        {"carol_valid_suite2.bin", craft(carol_suite2)},
        {"unknown_signer.bin", craft(hello_from(f.mallory))},
        {"bad_signature.bin", craft(bad_signature)},
        {"wrong_receiver_signed.bin", craft(wrong_receiver)},
        {"sealed_to_other.bin", craft(sealed_to_carol)},
        {"clock_skew.bin", craft(skewed)},
        {"low_order.bin", craft(low_order)},
        {"bad_magic.bin", with_byte(s1.hello, 0, 'X')},
        {"bad_version.bin", with_byte(s1.hello, 4, 2)},
        {"unknown_suite.bin", with_byte(s1.hello, 5, 3)},
        {"bad_role.bin", with_byte(s1.hello, 6, 2)},
        {"reserved_set.bin", with_byte(s1.hello, 7, 1)},
        {"tampered_seal.bin",
         with_byte(s1.hello, 100, static_cast<std::uint8_t>(s1.hello[100] ^ 1))},
        {"truncated.bin", first(s1.hello, 100)},
        {"nope.bin", bytes_of("nope")},
    };
}

std::vector<Seed> handshake_responder_seeds() {
    const Fixture& f = fixture();
    const Exchange s1 = exchange(SuiteId::x25519_ed25519_aes256gcm_sha256);
    const Exchange s2 = exchange(SuiteId::x25519_ed25519_chacha20poly1305_sha256);
    const Bytes text = text_payload();
    const Bytes records = seal_records(s1.alice->suite.aead, s1.alice->keys.send_key, {},
                                       {{echo_request(), 0}, {text, 6}});
    return {
        {"whole_suite1.bin", stream_input(0, {}, s1.hello)},
        {"whole_suite2_eof.bin", stream_input(k_opt_eof, {}, s2.hello)},
        {"chunked_with_records.bin", stream_input(0, {1, 7, 40}, concat({s1.hello, records}))},
        {"truncated_eof.bin", stream_input(k_opt_eof, {}, first(s1.hello, 100))},
        {"abort.bin", stream_input(k_opt_abort, {10}, s1.hello)},
        {"unknown_signer.bin", stream_input(0, {}, craft(hello_from(f.mallory)))},
        {"not_sdmp_eof.bin", stream_input(k_opt_eof, {}, as_bytes("GET / HTTP/1.1\r\n\r\n"))},
    };
}

std::vector<Seed> handshake_initiator_seeds() {
    const Fixture& f = fixture();
    const Exchange s1 = exchange(SuiteId::x25519_ed25519_aes256gcm_sha256);
    const Exchange s2 = exchange(SuiteId::x25519_ed25519_chacha20poly1305_sha256);
    const Bytes records = seal_records(s1.bob->suite.aead, s1.bob->keys.send_key, {},
                                       {{echo_response(), 0}, {text_payload(), 6}});
    auto reply_from = [&](const Identity& signer) {
        Craft c;
        c.role = Role::responder;
        c.signer = &signer;
        c.seal_to = &f.alice.public_identity();
        c.signed_receiver = f.alice.fingerprint();
        c.timestamp = k_responder_now;
        c.initiator_hash = provider().sha256(s1.hello);
        return craft(c);
    };
    return {
        {"reply_suite1.bin", stream_input(0, {}, s1.reply)},  // = protocol.md §8 message
        {"reply_suite2.bin", stream_input(k_opt_suite2, {}, s2.reply)},
        {"reply_chunked_with_records.bin",
         stream_input(k_opt_eof, {3, 64, 200}, concat({s1.reply, records}))},
        {"nope_eof.bin", stream_input(k_opt_eof, {}, as_bytes("nope"))},
        {"nope_split_eof.bin", stream_input(k_opt_eof, {1}, as_bytes("nope"))},
        {"nope_then_data.bin", stream_input(0, {}, as_bytes("nopeSDMP"))},
        {"wrong_responder.bin", stream_input(0, {}, reply_from(f.carol))},
        {"unknown_responder.bin", stream_input(0, {}, reply_from(f.mallory))},
        {"suite_mismatch.bin", stream_input(0, {}, s2.reply)},
        {"truncated_eof.bin", stream_input(k_opt_eof, {}, first(s1.reply, 150))},
        {"abort.bin", stream_input(k_opt_abort, {50}, s1.reply)},
    };
}

std::vector<Seed> record_open_seeds() {
    const SecretBytes key = record_key();
    const RecordSetup small = record_setup(k_opt_small);
    const Bytes echo = echo_request();
    const Bytes text = text_payload();
    const AeadAlgorithm aes = AeadAlgorithm::aes_256_gcm;
    const Bytes level0 = seal_records(aes, key, {}, {{echo, 0}});
    Bytes bad_length = {0, 0, 1, 0};  // 256 < 256 + 16 (protocol.md §5.3 step 1)
    bad_length.resize(4 + 256);
    return {
        {"level0.bin", stream_input(0, {}, level0)},
        {"level6.bin", stream_input(0, {}, seal_records(aes, key, {}, {{text, 6}}))},
        {"two_records_chunked.bin",
         stream_input(1 << 3, {1, 100, 255}, seal_records(aes, key, {}, {{echo, 0}, {text, 6}}))},
        {"chacha.bin",
         stream_input(k_opt_chacha, {},
                      seal_records(AeadAlgorithm::chacha20_poly1305, key, {}, {{echo, 1}}))},
        {"ratchet_feed.bin",
         stream_input(
             k_opt_small | k_opt_feed, {200},
             seal_records(aes, key, small.limits, {{echo, 0}, {echo, 6}, {text, 1}, {echo, 0}}))},
        {"truncated.bin", stream_input(0, {}, first(level0, 100))},
        {"bad_length.bin", stream_input(0, {}, bad_length)},
    };
}

std::vector<Seed> record_plaintext_seeds() {
    const Bytes echo = echo_request();
    const Bytes text = text_payload();
    Bytes bad_padding = record_plaintext(echo, 0);
    bad_padding.back() = 1;
    // A stored block without BFINAL (protocol.md §5.1 requires a final block).
    const Bytes not_final = {0x00, 0x05, 0x00, 0xfa, 0xff, 'h', 'e', 'l', 'l', 'o'};
    return {
        {"stored.bin", plaintext_input(0, {record_plaintext(echo, 0)})},
        {"level6.bin", plaintext_input(6 << 2, {record_plaintext(text, 6)})},
        {"level1_level12.bin",
         plaintext_input(1 << 2,
                         {record_plaintext(text, 1), record_plaintext(all_types_payload(), 12)})},
        {"chacha_ratchet.bin",
         plaintext_input(k_opt_chacha | k_opt_small,
                         {record_plaintext(echo, 0), record_plaintext(echo, 6),
                          record_plaintext(echo_response(), 0)})},
        {"all_types.bin", plaintext_input(0, {record_plaintext(all_types_payload(), 0)})},
        {"bad_padding.bin", plaintext_input(0, {bad_padding})},
        {"not_final.bin", plaintext_input(0, {not_final})},
    };
}

std::vector<Seed> message_decode_seeds() {
    using protocol::Status;
    return {
        {"request.bin", echo_request()},
        {"request_metadata.bin",
         encoded({protocol::Request{300,
                                    "store",
                                    1500,
                                    {{"content-type", "text/plain"}, {"trace", "ab12"}},
                                    {0xde, 0xad}}})},
        {"response.bin", echo_response()},
        {"response_error.bin",
         encoded({protocol::Response{
             9, Status::invalid_argument, {{"field", "name"}}, bytes_of("name is empty")}})},
        {"notification.bin", encoded({protocol::Notification{"tick", {}, {}}})},
        {"cancel.bin", encoded({protocol::Cancel{300}})},
        {"ping.bin", encoded({protocol::Ping{0x0102030405060708}})},
        {"pong.bin", encoded({protocol::Pong{0xfffffffffffffffe}})},
        {"goaway.bin", encoded({protocol::GoAway{41, "shutting down"}})},
        {"end.bin", encoded({protocol::End{}})},
        {"all_types.bin", all_types_payload()},
        {"envelope_request.bin", envelope(protocol::Request{1, "echo", 0, {}, bytes_of("hello")})},
        {"envelope_goaway.bin", envelope(protocol::GoAway{0, ""})},
        {"varint_max.bin", Bytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
}

}  // namespace

// ------------------------------------------------------------------------------ targets

int fuzz_connection_message(const std::uint8_t* data, std::size_t size) {
    const ByteView in{data, size};
    protocol::ReplayCache cache;
    const Responded first = respond(in, cache);
    if (!first.established)
        return 0;

    // protocol.md §3.5 step 6: the same message again inside the window is a replay.
    require(respond(in, cache).reason == HandshakeError::replay,
            "an accepted initiator message was accepted twice");

    // When it is alice's own hello, alice must accept bob's answer and agree on the keys (§4).
    HandshakeState alice = alice_calls_bob(static_cast<SuiteId>(in[5]));
    HandshakeAction a = alice.next();
    const auto* hello = std::get_if<action::Send>(&a);
    require(hello != nullptr, "the fixture initiator does not send");
    if (!same_bytes(hello->bytes, in.first(protocol::k_connection_message_size)))
        return 0;
    alice.feed(first.reply);
    a = alice.next();
    const auto* done = std::get_if<action::Done>(&a);
    require(done != nullptr, "alice refuses the reply bob answered her own hello with");
    const protocol::SessionKeys& ak = done->result.keys;
    const protocol::SessionKeys& bk = first.established->keys;
    require(same_bytes(ak.send_key.view(), bk.receive_key.view()) &&
                same_bytes(ak.receive_key.view(), bk.send_key.view()) &&
                ak.transcript_hash == bk.transcript_hash,
            "the two sides derived different session keys");
    return 0;
}

int fuzz_handshake_responder(const std::uint8_t* data, std::size_t size) {
    return fuzz_handshake_stream(ByteView{data, size}, run_responder);
}

int fuzz_handshake_initiator(const std::uint8_t* data, std::size_t size) {
    return fuzz_handshake_stream(ByteView{data, size}, run_initiator);
}

int fuzz_record_open(const std::uint8_t* data, std::size_t size) {
    const Stream s = parse_stream(ByteView{data, size});
    const OpenResult chunked = open_stream(s);
    RecordSetup whole_setup = record_setup(s.options);
    whole_setup.use_feed = true;
    const std::array<ByteView, 1> one = {s.all};
    const OpenResult whole = open_chunks(
        whole_setup, record_key(), std::span<const ByteView>(one).first(s.all.empty() ? 0 : 1));
    require(chunked.end == whole.end && chunked.payloads == whole.payloads,
            "how the bytes arrive changed what the record layer opens");
    return 0;
}

int fuzz_record_plaintext(const std::uint8_t* data, std::size_t size) {
    const ByteView in{data, size};
    if (in.empty())
        return 0;
    const RecordSetup setup = record_setup(in[0] & (k_opt_chacha | k_opt_small));
    const int level = ((in[0] >> 2) & 0x0f) % 13;

    std::vector<ByteView> segments;
    for (std::size_t pos = 1; pos + 2 <= in.size() && segments.size() < 16;) {
        const std::size_t length = (std::size_t{in[pos]} << 8) | in[pos + 1];
        pos += 2;
        const std::size_t take = std::min(length, in.size() - pos);
        segments.push_back(in.subspan(pos, take));
        pos += take;
    }
    if (segments.empty())
        return 0;

    // Seal each segment as a record plaintext, from protocol.md §5 with the raw AEAD.
    Bytes stream;
    SecretBytes key = record_key();
    std::uint64_t counter = 0;
    std::uint64_t key_bytes = 0;
    for (const ByteView segment : segments) {
        const std::size_t blocks = std::max<std::size_t>(
            1, (segment.size() + protocol::k_padding_block - 1) / protocol::k_padding_block);
        Bytes plain(segment.begin(), segment.end());
        plain.resize(blocks * protocol::k_padding_block, 0);  // §5.1: zero padding
        const auto length = static_cast<std::uint32_t>(plain.size() + crypto::k_aead_tag_size);
        const std::array<std::uint8_t, 4> prefix = {
            static_cast<std::uint8_t>(length >> 24), static_cast<std::uint8_t>(length >> 16),
            static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)};
        crypto::Tag tag{};
        provider()
            .make_sealer(setup.aead, key.view())
            ->seal(record_nonce(counter), prefix, plain, tag);
        append(stream, prefix);
        append(stream, plain);
        append(stream, tag);
        // §5.4: after the record that reaches a limit, ratchet and restart the counter.
        ++counter;
        key_bytes += plain.size();
        if (counter >= setup.limits.records_per_key || key_bytes >= setup.limits.bytes_per_key) {
            key = protocol::next_traffic_key(provider(), key);
            counter = 0;
            key_bytes = 0;
        }
    }

    protocol::RecordOpener opener(provider(), setup.aead, record_key(), setup.limits);
    opener.feed(stream);
    OpenResult r;
    drain(opener, setup, r);
    require(r.end != errc::authentication_failed,
            "a record sealed as protocol.md §5 says does not authenticate");
    require((r.end == errc::need_more_data) == (r.payloads.size() == segments.size()),
            "the record stream ended early without an error, or late with one");

    // Re-seal what opened: RecordSealer's output must open to the same payloads.
    const SecretBytes other_key = record_key(0x10);
    protocol::RecordSealer sealer(provider(), setup.aead, other_key, setup.limits);
    protocol::RecordOpener reopener(provider(), setup.aead, other_key, setup.limits);
    for (const Bytes& payload : r.payloads) {
        check_round_trip(payload, protocol::MessageLimits{});
        Bytes frame;
        std::error_code ec;
        if (setup.use_view) {
            // The session's path: the payload as two parts (a message head and its body),
            // stored blocks instead when the level does not halve it, into sized space.
            const ByteView whole(payload);
            const std::size_t split = payload.size() / 3;
            const ByteView parts[2] = {whole.first(split), whole.subspan(split)};
            frame.resize(sealer.sealed_size_bound(payload.size(), level));
            std::size_t written = 0;
            ec = sealer.seal_into(parts, level, payload.size() / 2, frame, written);
            frame.resize(written);
        } else {
            ec = sealer.seal(payload, level, frame);
        }
        if (ec) {
            require(ec == errc::limit_exceeded && frame.empty(),
                    "RecordSealer failed on a payload within max_payload_size");
            continue;
        }
        reopener.feed(frame);
        Bytes back;
        if (setup.use_view) {
            ByteView view;
            ec = reopener.next_view(view);
            back.assign(view.begin(), view.end());
        } else {
            ec = reopener.next(back);
        }
        require(!ec && back == payload, "a record from RecordSealer does not open to its payload");
    }
    return 0;
}

int fuzz_message_decode(const std::uint8_t* data, std::size_t size) {
    const ByteView in{data, size};
    check_round_trip(in, protocol::MessageLimits{});
    check_round_trip(in, tight_limits());
    check_varint(in);
    return 0;
}

std::span<const Target> all_targets() noexcept {
    static constexpr std::array<Target, 6> k_targets = {{
        {"connection_message", fuzz_connection_message},
        {"handshake_responder", fuzz_handshake_responder},
        {"handshake_initiator", fuzz_handshake_initiator},
        {"record_open", fuzz_record_open},
        {"record_plaintext", fuzz_record_plaintext},
        {"message_decode", fuzz_message_decode},
    }};
    return k_targets;
}

std::vector<Seed> make_seeds(std::string_view target) {
    if (target == "connection_message")
        return connection_message_seeds();
    if (target == "handshake_responder")
        return handshake_responder_seeds();
    if (target == "handshake_initiator")
        return handshake_initiator_seeds();
    if (target == "record_open")
        return record_open_seeds();
    if (target == "record_plaintext")
        return record_plaintext_seeds();
    if (target == "message_decode")
        return message_decode_seeds();
    return {};
}

protocol::HandshakeError responder_verdict(ByteView initiator_message) {
    protocol::ReplayCache cache;
    return respond(initiator_message, cache).reason;
}

std::optional<protocol::HandshakeError> initiator_verdict(ByteView stream_input) {
    const Run run = run_initiator(parse_stream(stream_input), false);
    if (run.established)
        return HandshakeError::none;
    return run.failed;
}

std::size_t records_opened(ByteView stream_input) {
    return open_stream(parse_stream(stream_input)).payloads.size();
}

}  // namespace sdmp::fuzz
