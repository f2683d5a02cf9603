// Options of sessions, clients, servers and calls, with their documented defaults.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/suite.hpp"
#include "sdmp/framework/log.hpp"
#include "sdmp/framework/reply.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_limits.hpp"

namespace sdmp {

class Context;
class Metrics;
class Router;
class Session;

// How the writer picks the DEFLATE level of each record (protocol.md §5.1).
enum class CompressionPolicy : unsigned char {
    never,  // level 0 (stored blocks) always
    // Compress only while bytes are what limits the session: as long as the socket takes every
    // write at once, level 0 (compressing would only spend CPU); after a write had to wait for
    // the link or the peer, records are chosen as with `when_smaller`, until a write is taken
    // whole again.
    automatic,
    // Whatever the link does: level 0 below `compress_threshold`; above it, a 4 KiB sample of
    // the record is compressed and `compression_level` is used only when the sample shrank by
    // at least a tenth (after samples that did not, up to 64 large records go out at level 0
    // before the next probe). For metered links, where every byte saved counts.
    when_smaller,
    always,  // `compression_level` for every record
};

struct SessionOptions {
    // Record layer limits, key update included (both peers must agree on the key-update limits).
    protocol::RecordLimits record_limits{};
    // Largest envelope this side sends or handles, counted without its length frame
    // (protocol.md §6.2); at most the protocol's 16 MiB, which any received envelope must
    // respect (a larger one closes the connection). An outgoing message over it fails at the
    // sender (errc::limit_exceeded); an incoming request over it is answered with `too_large`
    // and the session stays open; a response over it completes the call with `too_large`; a
    // notification over it is dropped.
    std::size_t max_message_size = std::size_t{16} << 20;
    // Incoming requests and notifications being handled at once; more → `overloaded`
    // (requests) or dropped (notifications).
    std::size_t max_in_flight = 1024;
    // Notifications that no handler of the session's router takes wait here for
    // Session::next_notification(), up to this many envelope bytes; more are dropped. 0 (the
    // default): no buffer, such notifications are dropped. Every dropped notification is
    // counted (SessionStats::notifications_dropped, Metrics) and the first one of a session
    // is logged.
    std::size_t notification_buffer_bytes = 0;
    // Bound on encoded messages waiting to be written (requests, responses, notifications):
    // a sender co_awaits space, so a peer that does not read cannot grow our memory. A message
    // larger than the bound is still admitted when the queue is empty. Small control messages
    // (ping, pong, cancel, goaway, error answers produced by the reader) use a separate
    // allowance, `max_control_bytes`; a peer that makes it overflow is disconnected.
    std::size_t send_queue_bytes = std::size_t{4} << 20;
    std::size_t max_control_bytes = std::size_t{1} << 20;
    // The writer coalesces queued messages into one record up to this payload size.
    std::size_t max_record_payload = std::size_t{256} << 10;
    // When more messages are due at once (a record of requests being answered, many calls
    // started together), the writer lets them join one write, but starts writing once this
    // many are queued: the peer begins on them while the rest are produced, so both ends work
    // at the same time instead of taking turns. 0 = gather everything due before writing.
    std::size_t flush_after_messages = 16;
    CompressionPolicy compression = CompressionPolicy::automatic;
    // Whatever the policy, a record that carries more than one request, response or
    // notification is sent at level 0, so that data of different calls never shares a DEFLATE
    // stream (CRIME/BREACH: a secret compressed next to bytes a peer chose leaks through the
    // record's length; protocol.md §5.1). Set this only when every message on the session is
    // of one trust domain.
    bool compress_across_messages = false;
    std::size_t compress_threshold = 4096;  // bytes of payload (automatic, when_smaller)
    int compression_level = 1;              // libdeflate level used when compressing
    // Send a ping after this long without receiving anything; close when the peer still sends
    // nothing for as long again. 0 = off.
    std::chrono::milliseconds keepalive_interval{30000};
    // Close (gracefully) after this long without any request, response or notification in
    // either direction while nothing is in flight. 0 = off.
    std::chrono::milliseconds idle_timeout{0};
    // After our side finished sending, how long we keep reading for the peer's end of stream
    // before closing (avoids turning close() into a reset).
    std::chrono::milliseconds close_linger{2000};
    // Graceful close (Session::close(), last client handle dropped): how long calls in flight in
    // either direction may take before they are cancelled.
    std::chrono::milliseconds drain_timeout{30000};
    // Timeout of calls whose CallOptions give none. 0 = none.
    std::chrono::milliseconds default_call_timeout{0};
};

// The connection-message exchange (protocol.md §3).
struct HandshakeOptions {
    // The crypto of the handshake and of every record of the session it opens (one provider
    // per connection, both directions). nullptr = crypto::default_provider() (Botan). To choose
    // by name at run time, e.g. from a configuration file:
    //     options.handshake.provider = crypto::find_provider("openssl");
    // which is nullptr when this build has no such provider (crypto::provider_names() lists
    // those it has), so check it before use. The two ends of a connection need not use the
    // same provider: every provider gives the same bytes. A provider of your own must outlive
    // the server or session using it (find_provider()'s instances live as long as the process).
    crypto::CryptoProvider* provider = nullptr;
    std::chrono::milliseconds timeout{10000};  // the whole exchange (protocol.md §3.6)
    // Responder only: the first byte of the initiator's connection message must arrive within
    // `first_byte_timeout` of the accept and all 160 bytes within `message_timeout` (each
    // capped by `timeout`). A legitimate initiator sends its message at once, so they can be
    // short: slow and silent connections give up their handshake slot quickly.
    std::chrono::milliseconds first_byte_timeout{2000};
    std::chrono::milliseconds message_timeout{5000};
    std::optional<std::chrono::milliseconds> max_clock_skew = std::chrono::minutes(2);
    // Initiator: the first is offered. Responder: the accepted set.
    std::vector<crypto::SuiteId> suites = crypto::all_suite_ids();
    // Refusing with `nope`: after writing it we shut down sending and read and discard what the
    // peer still sends, up to these bounds, so our close does not become a reset that could
    // destroy the `nope` in flight (protocol.md §3.6).
    std::size_t refuse_drain_bytes = std::size_t{64} << 10;
    std::chrono::milliseconds refuse_drain_time{1500};
};

struct ClientOptions {
    HandshakeOptions handshake;
    SessionOptions session;
    // Handlers for calls and notifications the server sends us (optional).
    std::shared_ptr<const Router> router;
    Logger logger;
    std::shared_ptr<Metrics> metrics;  // nullptr = a private instance
};

// Per-source admission limits of a server's handshakes (a handshake costs the responder three
// X25519 agreements and two Ed25519 operations; protocol.md §3.5). A source is the remote IPv4
// address, or the /64 prefix of an IPv6 address (one host usually owns a whole /64; an
// IPv4-mapped IPv6 address counts as its IPv4 address). A connection over either limit is
// refused like every admission refusal: `nope`, then close (protocol.md §3.6).
struct SourceLimits {
    // Token bucket per source: `handshake_rate` new connections per second on average, up to
    // `handshake_burst` (at least 1) at once. A rate of 0 = no rate limit.
    double handshake_rate = 50.0;
    double handshake_burst = 100.0;
    // Handshakes in progress from one source (so one source cannot take every one of
    // ServerOptions::max_handshakes with stalled handshakes). 0 = no per-source limit.
    std::size_t max_handshakes_per_source = 64;
    // Sources remembered; when full, the source seen least recently is forgotten (its bucket
    // starts full again when it comes back). Sources with a handshake in progress are always
    // kept, so the table holds at most max_sources entries plus those (in steady state at most
    // ServerOptions::max_handshakes).
    std::size_t max_sources = 16384;
    // Loopback peers (127.0.0.0/8, ::1) are not limited: they are local processes, or a local
    // proxy through which every remote peer would appear as one source.
    bool exempt_loopback = true;
};

// How a server that owns its io_context spreads connections over ServerOptions::threads
// threads in Server::run(). Either way every coroutine of one connection runs serially, so
// session state needs no lock; the models differ in which thread may run a connection. A server
// on the application's executor ignores this: each of its connections gets a strand on that
// executor, and the application decides which threads run it.
enum class ThreadingModel : unsigned char {
    // One io_context run by every thread; each connection gets its own strand on it. Any
    // thread can pick up any connection that has work, so uneven load spreads by itself.
    strand_per_session,
    // One io_context per thread (concurrency hint 1, so its scheduler takes its single-thread
    // fast paths); each accepted connection is pinned to the context with the fewest
    // connections at that moment and runs only there, without a strand. Cheaper per operation
    // (no strand queue, fewer hand-overs between threads), but placement counts connections,
    // not work: two busy connections can share a thread while another idles, and a handler
    // that blocks its thread holds up every connection pinned there. Accept loops, shutdown
    // and async_run() itself live on the first context.
    context_per_thread,
};

struct ServerOptions {
    HandshakeOptions handshake;
    SessionOptions session;
    std::size_t threads = 1;  // used by Server::run() on the server's own io_context(s)
    // Default context_per_thread: against strand_per_session with 2 threads it served 14 %
    // more requests/s with 16 busy sessions and 7 % more even when both busy sessions shared
    // one thread, at the same handshake rate (bench/micro/threading_bench; docs/performance.md,
    // "Server threading model"). With threads = 1 the two differ only by the strands. Prefer
    // strand_per_session when handlers block their thread, or for a few connections of very
    // uneven load on many cores.
    ThreadingModel threading = ThreadingModel::context_per_thread;
    std::size_t max_sessions = 10000;  // connections (handshaking or established); more
                                       // are refused with `nope`
    // Handshakes in progress. When the table is full, a new connection evicts the oldest
    // handshake whose connection message is still incomplete once that one has held its slot
    // for `handshake_eviction_age` (it is refused with `nope`); a message waiting whole in the
    // socket's receive buffer counts as complete. Until then, or while every handshake in the
    // table has its whole message, the newcomer waits for a slot, up to
    // HandshakeOptions::message_timeout, and only then is refused.
    std::size_t max_handshakes = 256;
    // How long an incomplete handshake keeps its slot against newcomers. 0 (the default): a
    // newcomer evicts the oldest incomplete one at once, so a flood of stalled connections
    // never delays a prompt client. A longer age lets one busy client's burst of connects,
    // whose messages lag behind the server's accepts, through without refusals (a burst of
    // 1,000 from one process needs about 1 s), but under a flood of stalled connections every
    // newcomer then waits in line for slots that free at most `max_handshakes` per age.
    std::chrono::milliseconds handshake_eviction_age{0};
    // Refusals that write `nope` and then drain the peer for up to
    // HandshakeOptions::refuse_drain_time at once. Past it a refusal writes `nope` only if the
    // socket takes it at once and closes at once. A refusal never holds a connection or
    // handshake slot.
    std::size_t max_refusal_drains = 128;
    // Sessions (established) with one peer fingerprint; more are refused with `nope` at the
    // handshake. 0 = no limit.
    std::size_t max_sessions_per_peer = 64;
    std::chrono::milliseconds drain_timeout{30000};  // graceful shutdown: in-flight calls' budget
    std::size_t replay_cache_capacity = std::size_t{1} << 16;
    int listen_backlog = 1024;
    Logger logger;
    std::shared_ptr<Metrics> metrics;  // nullptr = a private instance
    // Called on the session's strand (context_per_thread: on its context's thread) once a
    // session is established (e.g. to keep a handle for server-initiated calls). Must not block.
    std::function<void(const Session&)> on_session;
    SourceLimits source_limits;  // per-source handshake rate and concurrency (see above)
};

struct CallOptions {
    // Budget of this call; 0 = none (then SessionOptions::default_call_timeout applies).
    std::chrono::milliseconds timeout{0};
    // Absolute deadline; the earliest of timeout, deadline and parent_deadline wins.
    std::optional<std::chrono::steady_clock::time_point> deadline;
    // The deadline of the call a handler serves, copied by inherit(). A copy rather than a
    // reference to the Context, so the options stay valid wherever they go (a deferred call,
    // another thread) after the handler is gone. Kept apart from `deadline` so that no later
    // setter can extend an inherited budget.
    std::optional<std::chrono::steady_clock::time_point> parent_deadline;
    // Send this message alone in a record at level 0 (never coalesced, never compressed):
    // for data that is already compressed, or secret data next to attacker-chosen data.
    bool no_compress = false;
    Metadata metadata;

    // Chainable setters, e.g. `sdmp::CallOptions{}.with_timeout(2s).inherit(ctx)` (GCC 12
    // warns about designated initializers that leave members out under -Wextra).
    CallOptions& with_timeout(std::chrono::milliseconds value) {
        timeout = value;
        return *this;
    }
    CallOptions& with_deadline(std::chrono::steady_clock::time_point value) {
        deadline = value;
        return *this;
    }
    // A handler calling another peer on behalf of the call it serves: this call gets what is
    // left of that call's budget (parent_deadline), so a chain of calls never outlives its
    // first caller's deadline. Context::call does it for you.
    CallOptions& inherit(const Context& parent);
    CallOptions& uncompressed() {
        no_compress = true;
        return *this;
    }
    CallOptions& with_metadata(std::string key, std::string value) {
        metadata.emplace_back(std::move(key), std::move(value));
        return *this;
    }
};

}  // namespace sdmp
