// Fuzz-target bodies for sdmp's sans-IO parsers, shared by the libFuzzer executables
// (fuzz/fuzz_<target>.cpp) and the regression test (tests/protocol/test_fuzz_regressions.cpp),
// so a committed crashing input replays through exactly the code the fuzzer ran.
//
// Every target feeds untrusted bytes to one parser of protocol/ (session_core and
// session_lifecycle: to the session's Asio-free parts in framework/src/detail) and checks
// invariants that must hold for any input; a violated invariant prints what failed and calls
// std::abort(), which libFuzzer reports as a crash. The targets return 0 otherwise (libFuzzer's
// convention).
//
// Fixtures are fixed so that every run is reproducible: the identities and clocks of the
// protocol.md §8 vectors (initiator "alice": sign seed 32 x 0x01, DH 32 x 0x11, clock
// 1 700 000 000 000 ms, ephemeral 32 x 0x21; responder "bob": 0x02, 0x12, clock 250 ms later,
// ephemeral 32 x 0x22), plus "carol" (0x03, 0x13) whom both trust and "mallory" (0x04, 0x14)
// whom nobody trusts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "sdmp/crypto/bytes.hpp"
#include "sdmp/protocol/handshake_error.hpp"

namespace sdmp::fuzz {

// Input: one initiator connection message (plus anything after it). Fed to bob's responder
// HandshakeState (trust: alice, carol; replay cache on), then end-of-stream.
// Checks: the verdict replies exactly `nope` (truncation included, protocol.md §3.6); an
// accepted message yields a 160-byte responder message, Done with leftover = the bytes after 160,
// a replay verdict when fed again to the same cache; and, when it is alice's own hello, alice's
// initiator completes against the reply with matching keys.
int fuzz_connection_message(const std::uint8_t* data, std::size_t size);

// Stream inputs (handshake_responder, handshake_initiator, record_open):
//   byte 0       bits 0-2: n, the number of chunk-size bytes; bits 3-7: target options
//   bytes 1..n   chunk sizes minus one (1..256), used in turn
//   rest         the byte stream, fed in chunks of those sizes (one chunk when n == 0)
// Handshake options: bit 0 end-of-stream after the last chunk; bit 1 abort(timeout) after the
// first chunk; bit 2 (initiator) offer suite 2 instead of suite 1.
//
// The responder (bob) / initiator (alice, calling bob) is driven like a real driver; after Done
// the remaining bytes go to a RecordOpener under the session key. Checks: the action sequence
// (Send once, Need counts >= 1, Failed terminal with the right reply, Failed{internal} after the
// end), leftover = the bytes fed after the 160, the established peer, and that feeding the same
// stream in one piece ends the same way (same verdict, same keys).
int fuzz_handshake_responder(const std::uint8_t* data, std::size_t size);
int fuzz_handshake_initiator(const std::uint8_t* data, std::size_t size);

// Record options: bit 0 ChaCha20-Poly1305 (else AES-256-GCM); bit 1 small limits (key update
// every 2 records, records <= 4 KiB, payloads <= 4 KiB); bit 2 feed() instead of
// prepare()/commit(); bits 3-4 the min_size passed to prepare() (1, 64, 4 KiB, 64 KiB).
// The stream goes to a RecordOpener under a fixed key. Checks: payloads are non-empty and within
// the limit, counters and key generations add up, fatal errors are sticky, bytes_wanted() >= 1,
// and feeding the stream in one piece opens the same payloads and ends with the same error.
int fuzz_record_open(const std::uint8_t* data, std::size_t size);

// Input: byte 0 options (bit 0 ChaCha20-Poly1305; bit 1 small limits; bits 2-5 a DEFLATE level
// for the re-seal check), then up to 16 segments `u16 length || bytes`. Each segment, zero-padded
// to a multiple of 256, is sealed as one record's *plaintext* with the raw AEAD exactly as
// protocol.md §5 says (length prefix as AAD, counter nonce, key update §5.4), so the fuzzer reaches
// the inflate / padding / message-decode code behind the tag. Checks: no record fails
// authentication (the opener's nonce and key schedule match the spec), opened payloads decode and
// re-encode identically, and re-sealing them with RecordSealer opens to the same bytes.
int fuzz_record_plaintext(const std::uint8_t* data, std::size_t size);

// Input: a record payload (framed messages) and, separately, one envelope. With the default and
// with tight MessageLimits: decode_messages and decode_message; what decodes must re-encode
// byte-identically with encode_message (and encoded_size must agree); a varint that decodes must
// re-encode to the same bytes.
int fuzz_message_decode(const std::uint8_t* data, std::size_t size);

// The Asio-free parts of a session (framework/src/detail): SendQueue, CompressionChooser,
// KeepaliveClock, checked against a model of what the session relies on.
// Input: 4 config bytes (budgets, record size, message limit, compression policy and level,
// keepalive and idle intervals, threshold; targets.cpp read_config), then events, one opcode
// byte (modulo 16) and its arguments each (targets.cpp core::Op), until a 0xff byte; the bytes
// after it are a record payload walked with decode_next_message, the session reader's decoder.
// Events: reservations, data messages (sizes up to past the 64 KiB gather threshold,
// no_compress, malformed ones) reserved or waiting, grants taken up, withdrawals, failed waiters,
// control messages, the writer popping, sealing and releasing segments, recycled buffers,
// receive/activity/timer at increasing times.
// Checks: data_bytes() is exactly what reservations, grants and queued data hold, over the
// budget only for one message alone; control_bytes() likewise, within its allowance; waiters
// are granted first come first served, at most once, never after failing, and none waits while
// the head of the line fits; queued_messages() is the messages of the segments not popped; each
// popped segment's bytes + tail are exactly the messages queued into it, in order (and decode to
// as many), within max_record_payload unless alone, no_compress and gathered messages alone;
// no_compress and multi-call segments get level 0 unless compress_across_messages (protocol.md
// §5.1), the policy is obeyed, and the sealed record opens to the segment; everything is given
// back at the end. Keepalive (§6.5): no ping while one is outstanding, peer_silent only once a
// ping went unanswered for an interval, idle only when idle, nothing before next_wake() and
// something at it. decode_next_message never moves pos past the payload, leaves it on error,
// re-encodes what it accepts and agrees with decode_messages.
int fuzz_session_core(const std::uint8_t* data, std::size_t size);

// The session's lifecycle and its two tables (framework/src/detail): SessionLifecycle,
// RequestTable and CallTable driven together as SessionImpl drives them (apply, check_drained,
// the reader's admission, start_call, on_response, on_goaway, fail_pending), checked against a
// model. Body in session_lifecycle_target.cpp.
// Input: 2 config bytes (byte 0: max_in_flight 0-15, max_message_size; byte 1: call ids already
// used, from 0 or up to 2^64 - 1), then events until the input ends, one opcode byte (modulo 16)
// and its arguments each (session_lifecycle_target.cpp Op): the peer's requests (fresh,
// duplicate or extreme ids, sizes up to twice the limit, with or without a handler),
// notifications, cancels, responses, goaways and end; handlers finishing; our calls starting and
// ending; close, the drain timer, abort, the reader stopping (eof, cut, error); senders waiting
// for space; probes of events that must do nothing; finished(). Peer messages stop when the
// reader does, and one after the peer's end stops it with `malformed`. Then the session winds
// down: close, drain deadline, every handler and call ends, the peer's end and eof, finished().
// Checks: states only move forward (open, draining, closing, closed; an abort from any state but
// closed to closing; only finished() closes); each event's actions are the documented ones
// (close_socket exactly on an abort; fail_waiters and fail_calls on every move to closing, with
// the abort's reason, which is the first and stays; goaway and the drain timer only when a close
// begins the drain, linger only when drained() ends it; drained() and drain_deadline() act only
// while draining; the reader stopping never leaves the session open); admission in the
// documented order (duplicate id of an unfinished request always duplicate_id, accept only while
// open and below max_in_flight unfinished entries); find(), for_each() and highest_request()
// agree with the model; call ids strictly increase and run out only at 2^64 - 1; take() and
// take_if() return a pending call once and nothing else; after goaways no pending call is above
// the lowest last id, on_goaway() returns exactly those above it and refused() is exactly
// id > that id; take_all() returns every pending call; and, with the actions applied, the
// session is never draining with nothing in flight, never closing with calls or waiters left,
// an abort leaves no task uncancelled, and the wind-down always reaches closed.
int fuzz_session_lifecycle(const std::uint8_t* data, std::size_t size);

using TargetFunction = int (*)(const std::uint8_t*, std::size_t);

struct Target {
    std::string_view name;  // also the corpus folder name: fuzz/corpus/<name>/
    TargetFunction run;
};

std::span<const Target> all_targets() noexcept;

// Seed inputs for a target, generated from the same fixtures (fuzz/make_corpus.cpp writes them
// to fuzz/corpus/<target>/). Empty for an unknown target.
struct Seed {
    std::string name;
    Bytes bytes;
};
std::vector<Seed> make_seeds(std::string_view target);

// Probes for tests: what a target's fixture decides about an input.
// The connection_message verdict (none = accepted).
protocol::HandshakeError responder_verdict(ByteView initiator_message);
// The handshake_initiator verdict on a stream input: none = established, nullopt = still waiting.
std::optional<protocol::HandshakeError> initiator_verdict(ByteView stream_input);
// How many records the record_open fixture opens from a stream input.
std::size_t records_opened(ByteView stream_input);
// What the session_core target did with an input.
struct SessionCoreCounts {
    std::size_t grants = 0;          // waiters granted space
    std::size_t failed_waiters = 0;  // waiters failed by fail_waiters()
    std::size_t records = 0;         // segments popped and sealed
    std::size_t gathered = 0;        // of which with a gathered body
    std::size_t compressed = 0;      // of which sealed at a level above 0
    std::size_t pings = 0;
    std::size_t peer_silent = 0;
    std::size_t idle = 0;
    std::size_t tail_messages = 0;  // messages decode_next_message walked in the tail
};
SessionCoreCounts session_core_counts(ByteView input);
// What the session_lifecycle target's event program did with an input (before the wind-down).
struct SessionLifecycleCounts {
    std::size_t accepted = 0;         // the peer's requests admitted
    std::size_t notifications = 0;    // the peer's notifications admitted
    std::size_t answered_now = 0;     // requests answered at once (overloaded, shutting_down...)
    std::size_t shutting_down = 0;    // of which shutting_down
    std::size_t duplicates = 0;       // requests reusing an unfinished request's id
    std::size_t cancelled_tasks = 0;  // by the peer's cancel, an abort or the drain deadline
    std::size_t calls = 0;            // our calls given an id
    std::size_t ids_exhausted = 0;    // calls refused for want of an id
    std::size_t answered = 0;         // calls taken out by the peer's response
    std::size_t calls_done = 0;       // calls that ended here (take_if)
    std::size_t refused_calls = 0;    // calls taken out by the peer's goaway
    std::size_t failed_calls = 0;     // calls failed by fail_calls
    std::size_t goaways_sent = 0;
    std::size_t drain_deadlines = 0;  // drain timers that fired
    bool drained = false;             // reached closing through drained()
    bool aborted = false;
    bool peer_ended = false;
    std::string_view state;  // "open", "draining", "closing" or "closed"
    std::error_code reason;
};
SessionLifecycleCounts session_lifecycle_counts(ByteView input);

}  // namespace sdmp::fuzz
