// Fuzz-target bodies and their seed generators (see targets.hpp for each target's input layout
// and invariants). Written from docs/protocol.md against the public headers of protocol/ and
// crypto/, so a disagreement between the spec and the implementation shows up as a crash; the
// session_core target also uses the framework's Asio-free internals (framework/src/detail), as
// does session_lifecycle, whose body is in session_lifecycle_target.cpp.
#include "targets.hpp"

#include "fuzz_support.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "detail/compression_chooser.hpp"
#include "detail/keepalive_clock.hpp"
#include "detail/send_queue.hpp"
#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/suite.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/error.hpp"
#include "sdmp/framework/options.hpp"
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
// (violated() and require() are in fuzz_support.hpp.)

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

struct OpenedStream {
    std::vector<Bytes> payloads;
    // need_more when the stream ended between or inside records, else the fatal error.
    protocol::OpenResult end = protocol::OpenResult::need_more_bytes();
};

// Pulls every complete record (protocol.md §5.3).
void drain(protocol::RecordOpener& opener, const RecordSetup& setup, OpenedStream& r) {
    const protocol::RecordLimits& limits = setup.limits;
    for (;;) {
        require(opener.bytes_wanted() >= 1, "bytes_wanted() must be at least 1");
        Bytes payload;
        protocol::OpenResult result;
        if (setup.use_view) {
            ByteView view;
            result = opener.next_view(view);
            require(result.opened() || view.empty(), "next_view() gave a payload without a record");
            payload.assign(view.begin(), view.end());
        } else {
            result = opener.next(payload);
        }
        // record_opener.hpp: needing more bytes is a status, so an error always means failed.
        require(result.failed() == static_cast<bool>(result.error),
                "an OpenResult carries an error without failing, or fails without one");
        if (result.opened()) {
            require(!payload.empty(), "opened an empty payload (protocol.md §5.1)");
            require(payload.size() <= limits.max_payload_size, "payload above max_payload_size");
            r.payloads.push_back(std::move(payload));
            require(opener.records_opened() == r.payloads.size(), "records_opened() miscounts");
            // protocol.md §5.4 (the byte limit is far out of reach of a fuzz input).
            require(opener.key_generation() == r.payloads.size() / limits.records_per_key,
                    "key generation does not follow records_per_key");
            continue;
        }
        r.end = result;
        if (result.need_more())
            return;
        require(documented_record_error(result.error),
                "RecordOpener returned an undocumented error");
        Bytes again;
        require(opener.next(again) == result, "a fatal record error is not sticky");
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

OpenedStream open_chunks(const RecordSetup& setup, const SecretBytes& key,
                         std::span<const ByteView> chunks) {
    protocol::RecordOpener opener(provider(), setup.aead, key, setup.limits);
    OpenedStream r;
    drain(opener, setup, r);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        put(opener, setup, chunks[i]);
        drain(opener, setup, r);
        if (r.end.need_more())
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

OpenedStream open_stream(const Stream& s) {
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
    const OpenedStream r = open_chunks(setup, e.keys.receive_key, chunks);
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

// ------------------------------------------------------------------------------ session core

// The Asio-free parts of a session (framework/src/detail): the send queue under its budgets,
// the writer's compression choice and the keepalive clock, driven by an event program and
// checked against a model of what the session relies on.
namespace core {

using detail::CompressionChooser;
using detail::KeepaliveClock;
using detail::LevelChoice;
using detail::Segment;
using detail::SendQueue;
using detail::SpaceWaiter;

// Event opcodes (the input byte modulo 16; k_end_of_events starts the decoder tail).
enum Op : std::uint8_t {
    op_reserve,        // [size]           try_reserve of raw bytes
    op_unreserve,      // [index]          give an unused reservation back
    op_send,           // [kind size fill] a data message: reserve and enqueue, or wait
    op_consume,        // [index]          a granted waiter queues its message
    op_withdraw,       // [index]          withdraw a waiter (cancelled call)
    op_withdraw_some,  // [mask]           withdraw_if, then release(0, 0)
    op_fail,           // []               fail_waiters (the session closes)
    op_control,        // [kind arg]       try_reserve_control and enqueue a control message
    op_pop,            // [flags]          the writer pops one segment and seals it
    op_write_done,     // []               the writer's batch is written: release it
    op_recycle,        // [capacity]       recycle a spare buffer
    op_receive,        // [delta]          KeepaliveClock::on_receive
    op_activity,       // [delta]          KeepaliveClock::on_activity
    op_timer,          // [delta flags]    KeepaliveClock::on_timer
    op_flush,          // []               release(0, 0)
    op_drain,          // [flags]          the writer pops everything and writes it
};
constexpr std::uint8_t k_end_of_events = 0xff;

// Send kinds: bits 0-1 request/response/notification/request; 2 no_compress; 3 queued from
// inside on_space(); 4 malformed (id 0, encoding fails); 5-6 metadata entries; 7 a method
// name over max_method_size (encoding fails).
constexpr std::uint8_t k_send_no_compress = 0x04;
constexpr std::uint8_t k_send_eager = 0x08;
constexpr std::uint8_t k_send_malformed = 0x10;
constexpr std::uint8_t k_send_long_method = 0x80;
// Control kinds: kind % 6 ping/pong/cancel/goaway/end/error response; bit 7 malformed.
constexpr std::uint8_t k_control_malformed = 0x80;
// Writer flags: bit 0 the link is backlogged; bit 1 recycle the popped buffer.
constexpr std::uint8_t k_pop_backlogged = 0x01;
constexpr std::uint8_t k_pop_recycle = 0x02;
// Timer flags: bit 0 the session is open; bit 1 calls are in flight.
constexpr std::uint8_t k_timer_open = 0x01;
constexpr std::uint8_t k_timer_busy = 0x02;

constexpr std::size_t k_max_waiters = 256;  // waiters made by one input (bounds its memory)

// Mostly small bodies, some of a few KiB, and a few past the 64 KiB from which the queue
// gathers a body instead of copying it (send_queue.cpp, k_gather_min).
std::size_t body_size(std::uint8_t s) {
    if (s < 0x80)
        return s;
    if (s < 0xf0)
        return std::size_t{s - 0x80u} * 64;
    return (std::size_t{64} << 10) - 8 + std::size_t{s - 0xf0u} * 512;
}

// Odd fills are one repeated byte (compressible), even ones noise (incompressible).
Bytes body_bytes(std::size_t n, std::uint8_t fill) {
    Bytes b(n, fill);
    if ((fill & 1) == 0) {
        std::uint32_t x = 0x9e3779b9u * (fill + 1u);
        for (auto& v : b) {
            x = x * 1664525u + 1013904223u;
            v = static_cast<std::uint8_t>(x >> 24);
        }
    }
    return b;
}

std::chrono::milliseconds delta_ms(std::uint8_t d) {
    return std::chrono::milliseconds(d < 0xc0 ? d : (d - 0xc0) * 64);
}

// Config: byte 0 bits 0-2 data budget 64 << n, bits 3-4 max_record_payload 64 << 2n, bit 5
// max_message_size 1 KiB (else the protocol's), bit 6 compress_across_messages; byte 1 bits 0-2
// control allowance 32 << n, bits 3-4 the CompressionPolicy, bits 5-7 the level; byte 2 bits
// 0-3 keepalive interval in 16 ms, bits 4-7 idle timeout in 32 ms; byte 3 compress_threshold in
// 32-byte steps.
struct Config {
    SendQueue::Limits limits;
    SessionOptions options;
};

Config read_config(Cursor& c) {
    const std::uint8_t a = c.byte();
    const std::uint8_t b = c.byte();
    const std::uint8_t k = c.byte();
    const std::uint8_t t = c.byte();
    Config cfg;
    cfg.limits.data_bytes = std::size_t{64} << (a & 0x07u);
    cfg.limits.max_record_payload = std::size_t{64} << (2 * ((a >> 3) & 0x03u));
    if ((a & 0x20u) != 0)
        cfg.limits.encode.max_message_size = 1024;
    cfg.options.compress_across_messages = (a & 0x40u) != 0;
    cfg.limits.control_bytes = std::size_t{32} << (b & 0x07u);
    static constexpr std::array<CompressionPolicy, 4> k_policies = {
        CompressionPolicy::never, CompressionPolicy::automatic, CompressionPolicy::when_smaller,
        CompressionPolicy::always};
    cfg.options.compression = k_policies[(b >> 3) & 0x03u];
    static constexpr std::array<int, 8> k_levels = {0, 1, 2, 3, 4, 6, 9, 12};
    cfg.options.compression_level = k_levels[b >> 5];
    cfg.options.keepalive_interval = std::chrono::milliseconds(16 * (k & 0x0fu));
    cfg.options.idle_timeout = std::chrono::milliseconds(32 * (k >> 4));
    cfg.options.compress_threshold = std::size_t{t} * 32;
    return cfg;
}

class SessionCore;

struct CoreWaiter final : SpaceWaiter {
    SessionCore* core = nullptr;
    Bytes encoded;  // encoded before it waited, as session_calls.cpp does
    bool no_compress = false;
    bool eager = false;    // queues its message from inside on_space()
    bool holding = false;  // granted, its message not queued yet
    int grants = 0;
    int failures = 0;
    void on_space() override;
};

// A message in the queue, as the model expects it to come out.
struct Queued {
    Bytes encoded;
    bool control = false;
    bool no_compress = false;
    bool exchange = false;  // a request, response or notification
};

class SessionCore {
  public:
    explicit SessionCore(const Config& cfg)
        : limits_(cfg.limits),
          options_(cfg.options),
          queue_(cfg.limits),
          chooser_(options_),
          sealer_(provider(), AeadAlgorithm::aes_256_gcm, record_key(0x20)),
          opener_(provider(), AeadAlgorithm::aes_256_gcm, record_key(0x20)),
          now_(std::chrono::hours(1)),
          clock_(options_.keepalive_interval, options_.idle_timeout, now_),
          last_receive_(now_),
          last_activity_(now_) {}

    void run(Cursor& c) {
        while (!c.done()) {
            const std::uint8_t op = c.byte();
            if (op == k_end_of_events)
                return;
            step(static_cast<Op>(op % 16), c);
            check_queue();
        }
    }

    // Everything given back: the writer drains, reservations are returned, waiters fail.
    void finish() {
        fail();
        for (const std::size_t size : std::exchange(reserved_, {}))
            release_data(size);
        for (auto& w : waiters_) {
            if (w->holding) {
                w->holding = false;
                queue_.withdraw(*w);
            }
        }
        check_queue();
        while (!queue_.empty())
            pop(0);
        write_done();
        check_queue();
        require(queue_.data_bytes() == 0 && queue_.control_bytes() == 0 && queue_.waiting() == 0 &&
                    queue_.queued_messages() == 0 && queue_.empty(),
                "the send queue does not give back everything once all is written");
    }

    const SessionCoreCounts& counts() const noexcept { return counts_; }

    void on_space(CoreWaiter& w) {
        require(!w.queued, "a waiter woken by on_space() is still in line");
        require(!line_.empty() && line_.front() == &w,
                "a waiter was woken out of order (first come, first served)");
        line_.pop_front();
        if (w.failed) {
            require(!w.granted, "a failed waiter was granted space");
            require(++w.failures == 1 && w.grants == 0,
                    "a waiter was failed twice or after a grant");
            ++counts_.failed_waiters;
            return;
        }
        require(w.granted && ++w.grants == 1, "a waiter was granted twice");
        // Granted space is reserved before on_space(): the queue now holds what the model held
        // plus this waiter's need, and more than the budget only for a waiter granted alone.
        require(queue_.data_bytes() == data_held() + w.need,
                "a grant did not reserve exactly the waiter's need");
        require(queue_.data_bytes() <= limits_.data_bytes || data_holds() == 0,
                "a waiter was granted beyond the budget while others hold space");
        w.holding = true;
        ++counts_.grants;
        if (w.eager)
            consume(w);
    }

  private:
    void step(Op op, Cursor& c) {
        switch (op) {
            case op_reserve: {
                const std::size_t size = 1 + c.byte() * limits_.data_bytes / 128;
                if (try_reserve(size))
                    reserved_.push_back(size);
                return;
            }
            case op_unreserve: {
                const std::uint8_t i = c.byte();
                if (reserved_.empty())
                    return;
                const auto it =
                    reserved_.begin() + static_cast<std::ptrdiff_t>(i % reserved_.size());
                const std::size_t size = *it;
                reserved_.erase(it);
                release_data(size);
                return;
            }
            case op_send: {
                const std::uint8_t kind = c.byte();
                const std::uint8_t size = c.byte();
                const std::uint8_t fill = c.byte();
                send(kind, body_size(size), fill);
                return;
            }
            case op_consume: {
                CoreWaiter* w = pick(c.byte(), [](const CoreWaiter& x) { return x.holding; });
                if (w != nullptr)
                    consume(*w);
                return;
            }
            case op_withdraw: {
                CoreWaiter* w = pick(c.byte(), [](const CoreWaiter&) { return true; });
                if (w != nullptr)
                    withdraw(*w);
                return;
            }
            case op_withdraw_some:
                withdraw_some(c.byte());
                return;
            case op_fail:
                fail();
                return;
            case op_control: {
                const std::uint8_t kind = c.byte();
                control(kind, c.byte());
                return;
            }
            case op_pop:
                if (!queue_.empty())
                    pop(c.byte());
                return;
            case op_write_done:
                write_done();
                return;
            case op_recycle: {
                static constexpr std::array<std::size_t, 8> k_sizes = {
                    0, 1, 64, 256, 4096, 65536, 600 * 1024, 100};
                Bytes spare(k_sizes[c.byte() % k_sizes.size()], 0xee);
                queue_.recycle(std::move(spare));
                return;
            }
            case op_receive:
                now_ += delta_ms(c.byte());
                clock_.on_receive(now_);
                last_receive_ = now_;
                ping_outstanding_ = false;
                return;
            case op_activity:
                now_ += delta_ms(c.byte());
                clock_.on_activity(now_);
                last_activity_ = now_;
                return;
            case op_timer: {
                now_ += delta_ms(c.byte());
                const std::uint8_t flags = c.byte();
                timer((flags & k_timer_open) != 0, (flags & k_timer_busy) != 0);
                return;
            }
            case op_flush: {
                const std::size_t before = queue_.data_bytes();
                queue_.release(0, 0);
                require(queue_.data_bytes() >= before, "release(0, 0) gave budget back");
                return;
            }
            case op_drain: {
                const std::uint8_t flags = c.byte();
                while (!queue_.empty())
                    pop(flags);
                write_done();
                return;
            }
        }
    }

    // --- the data budget ---

    std::size_t data_held() const noexcept {
        std::size_t n = in_flight_data_;
        for (const std::size_t size : reserved_)
            n += size;
        for (const auto& w : waiters_)
            n += w->holding ? w->need : 0;
        for (const Queued& q : queued_)
            n += q.control ? 0 : q.encoded.size();
        return n;
    }

    // How many reservations, granted waiters and data messages hold budget.
    std::size_t data_holds() const noexcept {
        std::size_t n = reserved_.size() + in_flight_holds_;
        for (const auto& w : waiters_)
            n += w->holding ? 1 : 0;
        for (const Queued& q : queued_)
            n += q.control ? 0 : 1;
        return n;
    }

    std::size_t control_held() const noexcept {
        std::size_t n = in_flight_control_;
        for (const Queued& q : queued_)
            n += q.control ? q.encoded.size() : 0;
        return n;
    }

    bool try_reserve(std::size_t size) {
        const std::size_t held = data_held();
        const bool expected = line_.empty() && (held == 0 || held + size <= limits_.data_bytes);
        const bool got = queue_.try_reserve(size);
        require(got == expected,
                "try_reserve() disagrees with the budget (fits when alone or within it, and "
                "never overtakes a waiter)");
        return got;
    }

    void release_data(std::size_t size) { queue_.release(size, 0); }

    template <typename Filter>
    CoreWaiter* pick(std::uint8_t i, Filter filter) {
        std::vector<CoreWaiter*> candidates;
        for (const auto& w : waiters_) {
            if (filter(*w))
                candidates.push_back(w.get());
        }
        return candidates.empty() ? nullptr : candidates[i % candidates.size()];
    }

    static protocol::Message data_message(std::uint8_t kind, Bytes body, std::uint64_t id) {
        protocol::Metadata metadata;
        for (unsigned i = 0; i < ((kind >> 5) & 0x03u); ++i)
            metadata.emplace_back("k" + std::to_string(i), std::string(i * 7, 'v'));
        if ((kind & k_send_malformed) != 0)
            id = 0;  // protocol.md §6.3: ids are >= 1
        std::string method = (kind & k_send_long_method) != 0 ? std::string(300, 'm') : "call";
        switch (kind & 0x03u) {
            case 1:
                return protocol::Response{id, protocol::Status::ok, std::move(metadata),
                                          std::move(body)};
            case 2:
                if ((kind & k_send_malformed) != 0)
                    method.clear();  // an empty method is malformed
                return protocol::Notification{std::move(method), std::move(metadata),
                                              std::move(body)};
            default:
                return protocol::Request{id, std::move(method), 2500, std::move(metadata),
                                         std::move(body)};
        }
    }

    // A request, response or notification: reserved and queued at once when it fits and
    // nobody waits, else encoded and put in line (session_calls.cpp, session_writer.cpp).
    void send(std::uint8_t kind, std::size_t size, std::uint8_t fill) {
        const bool no_compress = (kind & k_send_no_compress) != 0;
        protocol::Message message = data_message(kind, body_bytes(size, fill), ++next_id_);
        Bytes encoded;
        const bool encodes = !protocol::encode_message(message, encoded, limits_.encode);
        const std::size_t encoded_size = protocol::encoded_size(message);
        require(!encodes || encoded.size() == encoded_size,
                "encoded_size() disagrees with encode_message()");
        if (try_reserve(encoded_size)) {
            enqueue(message, encoded_size, no_compress, false, encodes, std::move(encoded));
            return;
        }
        if (!encodes || waiters_.size() >= k_max_waiters)
            return;  // the call fails before it waits
        auto w = std::make_unique<CoreWaiter>();
        w->core = this;
        w->encoded = std::move(encoded);
        w->no_compress = no_compress;
        w->eager = (kind & k_send_eager) != 0;
        const std::size_t waiting = queue_.waiting();
        queue_.wait_for_space(*w, w->encoded.size());
        require(w->queued && !w->granted && queue_.waiting() == waiting + 1,
                "wait_for_space() did not put the waiter in line");
        line_.push_back(w.get());
        waiters_.push_back(std::move(w));
    }

    // SendQueue::enqueue with its budget reserved; `encodes`/`encoded`: what encode_message
    // made of the message under the same limits.
    void enqueue(protocol::Message& message, std::size_t size, bool no_compress, bool control,
                 bool encodes, Bytes encoded) {
        const std::size_t messages = queue_.queued_messages();
        const bool was_empty = queue_.empty();
        const bool exchange = std::holds_alternative<protocol::Request>(message) ||
                              std::holds_alternative<protocol::Response>(message) ||
                              std::holds_alternative<protocol::Notification>(message);
        const std::error_code ec = queue_.enqueue(message, size, no_compress, control);
        require(!ec == encodes, "enqueue() and encode_message() disagree on a message");
        if (ec) {
            require(queue_.queued_messages() == messages && queue_.empty() == was_empty,
                    "a message that failed to encode left something in the queue");
            queue_.release(control ? 0 : size, control ? size : 0);  // as the session does
            return;
        }
        queued_.push_back({std::move(encoded), control, no_compress, exchange});
    }

    void consume(CoreWaiter& w) {
        // The waiting call takes the grant over and queues what it encoded (session_writer.cpp).
        w.granted = false;
        w.holding = false;
        queued_.push_back({w.encoded, false, w.no_compress, true});
        queue_.enqueue_encoded(std::move(w.encoded), w.no_compress);
    }

    void withdraw(CoreWaiter& w) {
        require(w.queued == (std::count(line_.begin(), line_.end(), &w) > 0),
                "a waiter's queued flag disagrees with the line");
        require(w.granted == w.holding, "a waiter's granted flag disagrees with its grants");
        const std::size_t held = queue_.data_bytes();
        if (w.queued)
            line_.erase(std::find(line_.begin(), line_.end(), &w));
        const bool was_holding = std::exchange(w.holding, false);
        const bool was_queued = w.queued;
        queue_.withdraw(w);
        require(!w.queued && !w.granted, "a withdrawn waiter is still queued or granted");
        if (!was_holding && !was_queued)
            require(queue_.data_bytes() == held, "withdrawing an idle waiter changed the budget");
    }

    void withdraw_some(std::uint8_t mask) {
        std::vector<CoreWaiter*> removed;
        std::size_t bit = 0;
        for (CoreWaiter* w : line_) {
            if (((mask >> (bit++ % 8)) & 1u) != 0)
                removed.push_back(w);
        }
        for (CoreWaiter* w : removed)
            line_.erase(std::find(line_.begin(), line_.end(), w));
        queue_.withdraw_if([&](SpaceWaiter* w) {
            return std::find(removed.begin(), removed.end(), w) != removed.end();
        });
        for (CoreWaiter* w : removed)
            require(!w->queued && !w->granted, "withdraw_if() left a waiter queued or granted");
        require(queue_.waiting() == line_.size(), "withdraw_if() took out other waiters");
        queue_.release(0, 0);  // as send_queue.hpp asks
    }

    void fail() {
        const std::vector<CoreWaiter*> line(line_.begin(), line_.end());
        queue_.fail_waiters(std::make_error_code(std::errc::connection_aborted));
        require(line_.empty() && queue_.waiting() == 0, "fail_waiters() left waiters in line");
        for (CoreWaiter* w : line)
            require(w->failures == 1, "fail_waiters() did not wake every waiter once");
    }

    // --- control messages ---

    void control(std::uint8_t kind, std::uint8_t arg) {
        const bool malformed = (kind & k_control_malformed) != 0;
        protocol::Message message;
        switch (kind % 6) {
            case 0:
                message = protocol::Ping{arg * 0x0101010101010101u};
                break;
            case 1:
                message = protocol::Pong{arg};
                break;
            case 2:
                message = protocol::Cancel{malformed ? 0u : arg + 1u};
                break;
            case 3:
                message = protocol::GoAway{arg, std::string(malformed ? 2000u : arg, 'r')};
                break;
            case 4:
                message = protocol::End{};
                break;
            default:
                // An error answer the reader produces (session_handlers.cpp).
                message = protocol::Response{malformed ? 0u : arg + 1u,
                                             protocol::Status::too_large,
                                             {},
                                             body_bytes(arg % 64, 'e')};
                break;
        }
        Bytes encoded;
        const bool encodes = !protocol::encode_message(message, encoded, limits_.encode);
        const std::size_t size = protocol::encoded_size(message);
        const bool fits = control_held() + size <= limits_.control_bytes;
        const bool got = queue_.try_reserve_control(size);
        require(got == fits, "try_reserve_control() disagrees with the control allowance");
        if (got)
            enqueue(message, size, false, true, encodes, std::move(encoded));
    }

    // --- the writer ---

    void pop(std::uint8_t flags) {
        const std::size_t before = queue_.queued_messages();
        Segment segment = queue_.pop_front();
        require(segment.messages >= 1 && segment.messages <= queued_.size(),
                "a segment without messages, or with more than were queued");
        require(queue_.queued_messages() == before - segment.messages,
                "queued_messages() is not the messages of the segments still queued");

        // protocol.md §5.1: a record payload is the framed messages, in the order queued.
        Bytes whole = segment.bytes;
        append(whole, segment.tail);
        Bytes want;
        std::size_t data = 0;
        std::size_t control = 0;
        std::size_t exchanges = 0;
        std::size_t data_messages = 0;
        bool no_compress = false;
        for (std::size_t i = 0; i < segment.messages; ++i) {
            const Queued& q = queued_.front();
            append(want, q.encoded);
            (q.control ? control : data) += q.encoded.size();
            data_messages += q.control ? 0 : 1;
            exchanges += q.exchange ? 1 : 0;
            no_compress = no_compress || q.no_compress;
            queued_.pop_front();
        }
        require(same_bytes(whole, want),
                "a segment's bytes and tail are not exactly the messages queued into it");
        std::vector<protocol::Message> decoded;
        require(!protocol::decode_messages(whole, decoded) && decoded.size() == segment.messages,
                "a segment does not decode to as many messages as it counts");
        require(segment.data == data && segment.control == control,
                "a segment releases other budget than its messages reserved");
        require(segment.exchanges == exchanges,
                "a segment miscounts its requests, responses and notifications");
        require(!no_compress || (segment.messages == 1 && segment.no_compress),
                "a no_compress message shares its record");
        require(segment.no_compress == no_compress, "a segment is no_compress for no message");
        require(segment.tail.empty() || segment.messages == 1, "a gathered body shares its record");
        require(whole.size() <= limits_.max_record_payload || segment.messages == 1,
                "messages were coalesced beyond max_record_payload");

        seal(segment, whole, (flags & k_pop_backlogged) != 0);

        in_flight_data_ += segment.data;
        in_flight_control_ += segment.control;
        in_flight_holds_ += data_messages;
        if ((flags & k_pop_recycle) != 0)
            queue_.recycle(std::move(segment.bytes));
    }

    // The level choice and the record, as session_writer.cpp makes it.
    void seal(const Segment& segment, const Bytes& whole, bool backlogged) {
        const SessionOptions& o = options_;
        const LevelChoice choice = chooser_.choose(segment, backlogged, sealer_);
        require(choice.level == 0 || choice.level == o.compression_level,
                "a level other than 0 or compression_level");
        // protocol.md §5.1 and SessionOptions::compress_across_messages: data of different
        // calls never shares a DEFLATE stream unless the application allows it.
        const bool may_compress =
            !segment.no_compress && (segment.exchanges <= 1 || o.compress_across_messages);
        require(may_compress || choice.level == 0,
                "a no_compress or multi-call record was given a compression level");
        if (o.compression == CompressionPolicy::never ||
            (o.compression == CompressionPolicy::automatic && !backlogged)) {
            require(choice.level == 0, "compressed against the policy");
        }
        if (o.compression == CompressionPolicy::always && may_compress)
            require(choice.level == o.compression_level && choice.fallback_above == 0,
                    "CompressionPolicy::always did not compress");
        require(choice.fallback_above == 0 ||
                    (choice.level != 0 && choice.fallback_above <= whole.size()),
                "a fallback that cannot trigger, or without a level");

        const ByteView parts[2] = {segment.bytes, segment.tail};
        const std::span<const ByteView> payload(parts, segment.tail.empty() ? 1 : 2);
        Bytes frame(sealer_.sealed_size_bound(whole.size(), choice.level));
        std::size_t written = 0;
        int level_used = -1;
        const std::error_code ec = sealer_.seal_into(payload, choice.level, choice.fallback_above,
                                                     frame, written, &level_used);
        require(!ec, "sealing a queued segment failed");
        require(level_used == 0 || level_used == choice.level, "sealed at a level not chosen");
        if (choice.fallback_above != 0)
            chooser_.note(level_used != 0);
        ++counts_.records;
        counts_.gathered += segment.tail.empty() ? 0 : 1;
        counts_.compressed += level_used != 0 ? 1 : 0;
        opener_.feed(ByteView(frame).first(written));
        Bytes back;
        require(opener_.next(back).opened() && same_bytes(back, whole),
                "a queued segment's record does not open to its messages");
    }

    void write_done() {
        const std::size_t data = std::exchange(in_flight_data_, 0);
        const std::size_t control = std::exchange(in_flight_control_, 0);
        in_flight_holds_ = 0;
        queue_.release(data, control);
    }

    // --- keepalive (protocol.md §6.5) ---

    void timer(bool open, bool busy) {
        const auto interval = options_.keepalive_interval;
        const auto idle = options_.idle_timeout;
        const auto wake = clock_.next_wake(open);
        require(wake.has_value() == (interval.count() > 0 || (idle.count() > 0 && open)),
                "next_wake() disagrees with the watches switched on");
        const KeepaliveClock::Due due = clock_.on_timer(now_, open, busy);
        const bool restart =
            idle.count() > 0 && open && busy && now_ - last_activity_ >= idle && !due.peer_silent;
        if (!wake || now_ < *wake) {
            require(!due.ping && !due.peer_silent && !due.idle && !restart,
                    "the keepalive clock acted before its next_wake()");
        } else {
            require(due.ping || due.peer_silent || due.idle || restart,
                    "the keepalive clock did nothing at its next_wake()");
        }
        if (due.ping) {
            require(!ping_outstanding_, "a ping was asked for while one is outstanding");
            require(interval.count() > 0 && now_ - last_receive_ >= interval,
                    "a ping was asked for before the peer was silent for an interval");
            require(*due.ping > last_ping_, "ping values repeat");
            last_ping_ = *due.ping;
            ++counts_.pings;
            ping_outstanding_ = true;
            ping_sent_ = now_;
        }
        if (due.peer_silent) {
            require(ping_outstanding_ && now_ - ping_sent_ >= interval,
                    "peer_silent before a ping went unanswered for an interval");
            require(!due.ping && !due.idle, "peer_silent together with other decisions");
            ++counts_.peer_silent;
        }
        if (due.idle) {
            ++counts_.idle;
            require(idle.count() > 0 && open && !busy && now_ - last_activity_ >= idle,
                    "idle while not idle for idle_timeout, or busy, or not open");
        }
        if (restart)
            last_activity_ = now_;
    }

    // --- after every event ---

    void check_queue() const {
        require(queue_.data_bytes() == data_held(),
                "data_bytes() is not what reservations, grants and queued data hold");
        require(queue_.data_bytes() <= limits_.data_bytes || data_holds() <= 1,
                "data_bytes() exceeds the budget with more than one message");
        require(queue_.control_bytes() == control_held() &&
                    queue_.control_bytes() <= limits_.control_bytes,
                "control_bytes() is not what queued control messages hold, or over its limit");
        require(queue_.waiting() == line_.size(), "waiting() is not the waiters in line");
        require(queue_.queued_messages() == queued_.size(),
                "queued_messages() is not the messages queued and not popped");
        require(queue_.empty() == queued_.empty(), "the queue has a segment without a message");
        // No waiter is left in line while the head of the line would fit (a lost wake-up).
        require(line_.empty() || !queue_.fits(line_.front()->need),
                "a waiter waits although its need fits");
    }

    const SendQueue::Limits limits_;
    const SessionOptions options_;
    SendQueue queue_;
    CompressionChooser chooser_;
    protocol::RecordSealer sealer_;
    protocol::RecordOpener opener_;

    std::vector<std::size_t> reserved_;  // try_reserve()d, not used yet
    std::vector<std::unique_ptr<CoreWaiter>> waiters_;
    std::deque<CoreWaiter*> line_;    // the model's line, first come first served
    std::deque<Queued> queued_;       // enqueued, not popped, in order
    std::size_t in_flight_data_ = 0;  // popped, not written yet
    std::size_t in_flight_control_ = 0;
    std::size_t in_flight_holds_ = 0;
    std::uint64_t next_id_ = 0;

    KeepaliveClock::Clock::time_point now_;
    KeepaliveClock clock_;
    KeepaliveClock::Clock::time_point last_receive_;
    KeepaliveClock::Clock::time_point last_activity_;
    KeepaliveClock::Clock::time_point ping_sent_{};
    bool ping_outstanding_ = false;
    std::uint64_t last_ping_ = 0;
    SessionCoreCounts counts_;
};

void CoreWaiter::on_space() {
    core->on_space(*this);
}

// protocol.md §5.1, §6.2: the session reader walks a payload with decode_next_message.
// Returns how many messages it walked.
std::size_t walk_payload(ByteView payload, const protocol::MessageLimits& limits) {
    std::size_t pos = 0;
    std::size_t walked = 0;
    bool failed = false;
    while (pos < payload.size()) {
        const std::size_t before = pos;
        protocol::Message message;
        std::size_t envelope = 0;
        if (protocol::decode_next_message(payload, pos, message, envelope, limits)) {
            require(pos == before, "decode_next_message moved pos on an error");
            failed = true;
            break;
        }
        require(pos > before && pos <= payload.size(),
                "decode_next_message moved pos past the payload, or not at all");
        require(envelope <= limits.max_message_size &&
                    pos - before == protocol::varint_size(envelope) + envelope &&
                    envelope == protocol::envelope_size(message),
                "decode_next_message's envelope_size is not the envelope it decoded");
        Bytes again;
        require(!protocol::encode_message(message, again, limits) &&
                    same_bytes(again, payload.subspan(before, pos - before)),
                "a message decode_next_message accepted does not re-encode to its bytes");
        ++walked;
    }
    {
        std::size_t end = payload.size();
        protocol::Message message;
        std::size_t envelope = 0;
        require(protocol::decode_next_message(payload, end, message, envelope, limits) &&
                    end == payload.size(),
                "decode_next_message decoded a message at the end of the payload");
    }
    std::vector<protocol::Message> all;
    const bool whole = !protocol::decode_messages(payload, all, limits);
    require(whole == (!failed && !payload.empty()),
            "decode_messages and decode_next_message disagree on a payload");
    require(!whole || all.size() == walked,
            "decode_messages and decode_next_message count other messages");
    return walked;
}

// Builds session_core inputs for the seeds (see the Op comments for the arguments).
class Program {
  public:
    Program(std::uint8_t a, std::uint8_t b, std::uint8_t k, std::uint8_t threshold)
        : bytes_{a, b, k, threshold} {}
    Program& operator()(Op op, std::initializer_list<std::uint8_t> args = {}) {
        bytes_.push_back(op);
        bytes_.insert(bytes_.end(), args.begin(), args.end());
        return *this;
    }
    Bytes tail(ByteView payload) const {
        Bytes out = bytes_;
        out.push_back(k_end_of_events);
        append(out, payload);
        return out;
    }
    Bytes done() const { return bytes_; }

  private:
    Bytes bytes_;
};

std::vector<Seed> seeds() {
    // Config bytes, see read_config: budget 64 << a, policy and level in b, keepalive in k.
    constexpr std::uint8_t automatic_l1 = (1 << 3) | (1 << 5);
    constexpr std::uint8_t when_smaller_l6 = (2 << 3) | (5 << 5);
    constexpr std::uint8_t always_l1 = (3 << 3) | (1 << 5) | 4;
    return {
        {"basic.bin",
         Program(3, automatic_l1, 0, 0)(op_send, {0x00, 0x10, 0x61})(op_send, {0x01, 0x20, 0x62})(
             op_control, {0, 7})(op_pop, {3})(op_pop, {1})(op_write_done)
             .tail(echo_request())},
        {"waiters.bin",
         Program(0, when_smaller_l6, 0, 4)(op_send, {0x00, 0x30, 0x41})(
             op_send, {0x01, 0x30, 0x42})(op_send, {0x08, 0x10, 0x43})(op_send, {0x02, 0x7f, 0x44})(
             op_send, {0x00, 0x05, 0x45})(op_withdraw, {3})(
             op_pop, {2})(op_write_done)(op_consume, {0})(op_withdraw_some, {0x05})(op_drain, {1})(
             op_send, {0x00, 0x7f, 0x46})(op_send, {0x00, 0x7f, 0x47})(op_fail)(op_reserve, {200})(
             op_unreserve, {0})(op_flush)
             .done()},
        {"gathered.bin",
         Program(0x07 | (3 << 3), when_smaller_l6, 0, 8)(op_send, {0x08, 0xf1, 0x11})(
             op_pop, {1})(op_write_done)(op_send, {0x04, 0xf2, 0x12})(op_send, {0x09, 0x40, 0x13})(
             op_pop, {1})(op_write_done)(op_drain, {3})
             .done()},
        {"coalesced.bin", Program(0x47 | (2 << 3), always_l1, 0, 0)(op_send, {0x00, 0x20, 0x31})(
                              op_send, {0x02, 0x20, 0x33})(op_control, {2, 9})(op_control, {5, 3})(
                              op_send, {0x04, 0x20, 0x35})(op_control, {0x82, 0})(
                              op_send, {0x10, 0x04, 0x37})(op_recycle, {4})(op_drain, {2})
                              .done()},
        {"keepalive.bin", Program(3, 0, 0x22, 0)(op_timer, {31, 1})(op_timer, {2, 1})(
                              op_receive, {10})(op_timer, {40, 1})(op_timer, {40, 3})(
                              op_activity, {5})(op_timer, {70, 1})(op_timer, {40, 0})
                              .done()},
        {"tail_all_types.bin", Program(0, 0, 0, 0).tail(all_types_payload())},
        {"tail_truncated.bin", Program(0, 0, 0, 0).tail(first(text_payload(), 40))},
    };
}

}  // namespace core

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
    const OpenedStream chunked = open_stream(s);
    RecordSetup whole_setup = record_setup(s.options);
    whole_setup.use_feed = true;
    const std::array<ByteView, 1> one = {s.all};
    const OpenedStream whole = open_chunks(
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
    OpenedStream r;
    drain(opener, setup, r);
    require(r.end.error != errc::authentication_failed,
            "a record sealed as protocol.md §5 says does not authenticate");
    require(r.end.need_more() == (r.payloads.size() == segments.size()),
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
        protocol::OpenResult reopened;
        if (setup.use_view) {
            ByteView view;
            reopened = reopener.next_view(view);
            back.assign(view.begin(), view.end());
        } else {
            reopened = reopener.next(back);
        }
        require(reopened.opened() && back == payload,
                "a record from RecordSealer does not open to its payload");
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

SessionCoreCounts session_core_counts(ByteView input) {
    Cursor cursor(input);
    SessionCoreCounts counts;
    {
        core::SessionCore session(core::read_config(cursor));
        session.run(cursor);
        session.finish();
        counts = session.counts();
    }
    const ByteView tail = cursor.rest();
    counts.tail_messages = core::walk_payload(tail, protocol::MessageLimits{});
    core::walk_payload(tail, tight_limits());
    return counts;
}

int fuzz_session_core(const std::uint8_t* data, std::size_t size) {
    session_core_counts(ByteView{data, size});
    return 0;
}

std::span<const Target> all_targets() noexcept {
    static constexpr std::array<Target, 8> k_targets = {{
        {"connection_message", fuzz_connection_message},
        {"handshake_responder", fuzz_handshake_responder},
        {"handshake_initiator", fuzz_handshake_initiator},
        {"record_open", fuzz_record_open},
        {"record_plaintext", fuzz_record_plaintext},
        {"message_decode", fuzz_message_decode},
        {"session_core", fuzz_session_core},
        {"session_lifecycle", fuzz_session_lifecycle},
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
    if (target == "session_core")
        return core::seeds();
    if (target == "session_lifecycle")
        return session_lifecycle_seeds();
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
