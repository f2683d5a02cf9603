// The sans-IO handshake state machine (protocol.md §3, §4).
//
// Each state is a small struct holding only what is valid in it; a transition moves the
// needed data out and replaces the variant, so secrets of a finished step are destroyed
// (SecretBytes wipes itself) and cannot be reused by mistake.
#include "sdmp/protocol/handshake.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "handshake_message.hpp"
#include "sdmp/error.hpp"

namespace sdmp::protocol {

std::uint64_t system_clock_ms() {
    const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count();
    return ms < 0 ? 0 : static_cast<std::uint64_t>(ms);
}

std::vector<crypto::SuiteId> default_suite_ids() {
    return crypto::all_suite_ids();
}

namespace {

using crypto::SecretBytes;

namespace state {

// Initiator, before its connection message went out.
struct InitiatorStart {
    crypto::TrustedPeer responder;  // the peer it means to reach (protocol.md §1)
    crypto::Suite suite;
};
// Initiator, waiting for the responder's message.
struct InitiatorExpectReply {
    crypto::TrustedPeer responder;
    crypto::Suite suite;
    SecretBytes ephemeral_private;
    detail::ConnectionMessage hello;
};
// Responder, waiting for the initiator's message.
struct ResponderExpectHello {};
// Responder, its own message handed out; Done comes next.
struct ResponderSent {
    Established result;
};
// A failure to report on the next call.
struct Failing {
    HandshakeError reason;
    Bytes reply;
};
// Terminal: Done or Failed was returned.
struct Closed {};

}  // namespace state

using State =
    std::variant<state::InitiatorStart, state::InitiatorExpectReply, state::ResponderExpectHello,
                 state::ResponderSent, state::Failing, state::Closed>;

Bytes nope() {
    return Bytes(k_nope.begin(), k_nope.end());
}

bool starts_with_nope(ByteView in) {
    return in.size() >= k_nope.size() && std::equal(k_nope.begin(), k_nope.end(), in.begin());
}

void check_config(const HandshakeConfig& config) {
    if (config.provider == nullptr || config.self == nullptr || config.trust == nullptr ||
        !config.clock) {
        throw std::invalid_argument(
            "HandshakeConfig: provider, self, trust and clock are required");
    }
}

}  // namespace

struct HandshakeState::Impl {
    HandshakeConfig config;
    Role role;
    State state;
    Bytes input;  // everything fed so far; the first 160 bytes are the peer's message
    bool eof = false;
    bool data_after_eof = false;
    std::optional<HandshakeError> aborted;

    Impl(HandshakeConfig c, Role r, State s) : config(std::move(c)), role(r), state(std::move(s)) {}

    crypto::CryptoProvider& provider() { return *config.provider; }

    // Terminal failure: drops every secret now (the old state is destroyed here).
    HandshakeAction fail(HandshakeError reason, Bytes reply) {
        state = state::Closed{};
        config.test_only_ephemeral.reset();
        return action::Failed{reason, std::move(reply)};
    }

    std::error_code make_ephemeral(crypto::DhKeyPair& out) {
        if (config.test_only_ephemeral.has_value()) {
            const SecretBytes fixed = std::move(*config.test_only_ephemeral);
            config.test_only_ephemeral.reset();
            return provider().dh_from_private(fixed.view(), out);
        }
        out = provider().dh_generate();
        return {};
    }

    HandshakeAction step();
    HandshakeAction send_hello(state::InitiatorStart& s);
    std::optional<HandshakeAction> await_message();
    HandshakeAction process_reply(state::InitiatorExpectReply& s);
    HandshakeAction process_hello();
};

// Waits for one whole connection message (protocol.md §3.5 step 1 as soon as the prefix is
// in, §3.6 for `nope`). Returns nothing once 160 bytes with an acceptable prefix are buffered.
// End of stream before that is a truncated message, refused with `nope` like any validation
// failure (protocol.md §3.6): the peer may have shut down only its write side and still read.
std::optional<HandshakeAction> HandshakeState::Impl::await_message() {
    if (data_after_eof)
        return fail(HandshakeError::unexpected_data, nope());
    const ByteView in = input;

    // The responder refuses with exactly `nope` then end-of-stream (protocol.md §3.6); that
    // alone is not answered. Until we know nothing follows, `nope` is neither a refusal nor bad
    // magic. A strict prefix of `nope` then end-of-stream is a truncation (below).
    if (role == Role::initiator && starts_with_nope(in)) {
        if (in.size() > k_nope.size())
            return fail(HandshakeError::unexpected_data, nope());
        if (eof)
            return fail(HandshakeError::refused_by_peer, {});
        return action::Need{k_prefix_size - in.size()};
    }

    if (in.size() < k_prefix_size) {
        if (eof)
            return fail(HandshakeError::truncated, nope());
        return action::Need{k_prefix_size - in.size()};
    }
    const Role expected_sender = role == Role::initiator ? Role::responder : Role::initiator;
    std::span<const crypto::SuiteId> accepted = config.suites;
    crypto::SuiteId offered{};
    if (const auto* s = std::get_if<state::InitiatorExpectReply>(&state)) {
        // protocol.md §3.5 step 1: the initiator requires the suite it offered.
        offered = s->suite.id;
        accepted = {&offered, 1};
    }
    if (const HandshakeError e =
            detail::check_prefix(in.first(k_prefix_size), expected_sender, accepted);
        e != HandshakeError::none) {
        return fail(e, nope());
    }
    if (in.size() < k_connection_message_size) {
        if (eof)
            return fail(HandshakeError::truncated, nope());  // protocol.md §3.6
        return action::Need{k_connection_message_size - in.size()};
    }
    return std::nullopt;
}

HandshakeAction HandshakeState::Impl::send_hello(state::InitiatorStart& s) {
    crypto::DhKeyPair ephemeral;
    if (make_ephemeral(ephemeral))
        return fail(HandshakeError::internal, {});

    detail::ConnectionMessage hello{};
    const detail::Outgoing out{
        Role::initiator,          s.suite,        &ephemeral, config.self, &s.responder.identity,
        &s.responder.fingerprint, config.clock(), nullptr};
    if (const auto ec = detail::build_message(provider(), out, hello)) {
        // The trusted responder key is low-order: nothing was sent, so nothing to refuse.
        return fail(ec == errc::low_order_point ? HandshakeError::low_order_point
                                                : HandshakeError::internal,
                    {});
    }
    state::InitiatorExpectReply next{std::move(s.responder), s.suite,
                                     std::move(ephemeral.private_key), hello};
    state = std::move(next);
    return action::Send{Bytes(hello.begin(), hello.end())};
}

// Initiator: protocol.md §3.5 on the responder's message, then §4.
HandshakeAction HandshakeState::Impl::process_reply(state::InitiatorExpectReply& s) {
    const ByteView message = ByteView(input).first(k_connection_message_size);
    const crypto::Digest hello_hash = provider().sha256(s.hello);
    const detail::Incoming in{
        Role::responder,          s.suite,     config.self,           config.trust,
        &s.responder.fingerprint, &hello_hash, config.max_clock_skew, config.clock()};
    const detail::Opened opened = detail::open_message(provider(), in, message);
    if (opened.error != HandshakeError::none)
        return fail(opened.error, nope());

    // Step 7 and §4: ee, transcript hash, keys; the ephemeral private is erased right after.
    SecretBytes ee;
    const std::error_code ec =
        provider().dh_agree(s.ephemeral_private, detail::ephemeral_of(message), ee);
    s.ephemeral_private.wipe();
    if (ec)
        return fail(HandshakeError::low_order_point, nope());
    const std::array<ByteView, 2> transcript = {ByteView(s.hello), message};
    const crypto::Digest th = provider().sha256(std::span<const ByteView>(transcript));

    Established result{derive_session_keys(provider(), ee, th, Role::initiator),
                       s.suite,
                       opened.peer->identity,
                       opened.peer->fingerprint,
                       opened.peer->name,
                       Bytes(input.begin() + k_connection_message_size, input.end())};
    state = state::Closed{};
    return action::Done{std::move(result)};
}

// Responder: protocol.md §3.5 on the initiator's message, then its own message and §4.
HandshakeAction HandshakeState::Impl::process_hello() {
    const ByteView message = ByteView(input).first(k_connection_message_size);
    const auto suite = crypto::find_suite(message[5]);
    if (!suite)
        return fail(HandshakeError::unsupported_suite, nope());  // checked in the prefix
    const std::uint64_t now = config.clock();
    const detail::Incoming in{Role::initiator, *suite,  config.self,           config.trust,
                              nullptr,         nullptr, config.max_clock_skew, now};
    const detail::Opened opened = detail::open_message(provider(), in, message);
    if (opened.error != HandshakeError::none)
        return fail(opened.error, nope());

    // Step 6: only authenticated messages reach the cache, so nobody can fill it with junk.
    const crypto::DhPublic peer_ephemeral = detail::ephemeral_of(message);
    if (config.replay_cache != nullptr && config.replay_cache->seen_before(peer_ephemeral, now)) {
        return fail(HandshakeError::replay, nope());
    }
    if (config.accept_peer && !config.accept_peer(opened.peer->fingerprint))
        return fail(HandshakeError::not_accepted, nope());

    // Step 7: session DH with a fresh ephemeral.
    crypto::DhKeyPair ephemeral;
    if (make_ephemeral(ephemeral))
        return fail(HandshakeError::internal, nope());
    SecretBytes ee;
    if (provider().dh_agree(ephemeral.private_key, peer_ephemeral, ee)) {
        return fail(HandshakeError::low_order_point, nope());
    }

    const crypto::Digest hello_hash = provider().sha256(message);
    detail::ConnectionMessage reply{};
    const detail::Outgoing out{
        Role::responder,           *suite, &ephemeral, config.self, &opened.peer->identity,
        &opened.peer->fingerprint, now,    &hello_hash};
    const std::error_code ec = detail::build_message(provider(), out, reply);
    ephemeral.private_key.wipe();  // protocol.md §4: erased once ee (and the seal) are done
    if (ec)
        return fail(HandshakeError::low_order_point, nope());

    const std::array<ByteView, 2> transcript = {message, ByteView(reply)};
    const crypto::Digest th = provider().sha256(std::span<const ByteView>(transcript));
    state =
        state::ResponderSent{Established{derive_session_keys(provider(), ee, th, Role::responder),
                                         *suite,
                                         opened.peer->identity,
                                         opened.peer->fingerprint,
                                         opened.peer->name,
                                         {}}};
    return action::Send{Bytes(reply.begin(), reply.end())};
}

HandshakeAction HandshakeState::Impl::step() {
    if (std::holds_alternative<state::Closed>(state))
        return fail(HandshakeError::internal, {});
    if (auto* f = std::get_if<state::Failing>(&state)) {
        const HandshakeError reason = f->reason;
        Bytes reply = std::move(f->reply);
        return fail(reason, std::move(reply));
    }
    if (aborted.has_value())
        return fail(*aborted, nope());  // protocol.md §3.6 (deadline)

    if (auto* s = std::get_if<state::InitiatorStart>(&state))
        return send_hello(*s);
    if (auto* s = std::get_if<state::InitiatorExpectReply>(&state)) {
        if (auto pending = await_message())
            return std::move(*pending);
        return process_reply(*s);
    }
    if (std::holds_alternative<state::ResponderExpectHello>(state)) {
        if (auto pending = await_message())
            return std::move(*pending);
        return process_hello();
    }
    if (auto* s = std::get_if<state::ResponderSent>(&state)) {
        Established result = std::move(s->result);
        result.leftover.assign(input.begin() + k_connection_message_size, input.end());
        state = state::Closed{};
        return action::Done{std::move(result)};
    }
    return fail(HandshakeError::internal, {});
}

HandshakeState HandshakeState::initiator(HandshakeConfig config,
                                         const crypto::Fingerprint& responder) {
    check_config(config);
    State initial = state::Failing{HandshakeError::unsupported_suite, {}};
    const auto suite = config.suites.empty()
                           ? std::nullopt
                           : crypto::find_suite(static_cast<std::uint8_t>(config.suites.front()));
    const crypto::TrustedPeer* peer = config.trust->find(responder);
    if (peer == nullptr) {
        // protocol.md §1: the initiator must know the responder it names. Nothing is sent.
        initial = state::Failing{HandshakeError::unknown_peer, {}};
    } else if (suite.has_value()) {
        initial = state::InitiatorStart{*peer, *suite};
    }
    return HandshakeState(
        std::make_unique<Impl>(std::move(config), Role::initiator, std::move(initial)));
}

HandshakeState HandshakeState::responder(HandshakeConfig config) {
    check_config(config);
    return HandshakeState(
        std::make_unique<Impl>(std::move(config), Role::responder, state::ResponderExpectHello{}));
}

HandshakeState::HandshakeState(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HandshakeState::HandshakeState(HandshakeState&&) noexcept = default;
HandshakeState& HandshakeState::operator=(HandshakeState&&) noexcept = default;
HandshakeState::~HandshakeState() = default;

HandshakeAction HandshakeState::next() {
    if (!impl_)
        return action::Failed{HandshakeError::internal, {}};
    return impl_->step();
}

void HandshakeState::feed(ByteView bytes) {
    if (!impl_ || bytes.empty())
        return;
    if (std::holds_alternative<state::Closed>(impl_->state))
        return;
    if (impl_->eof) {
        impl_->data_after_eof = true;
        return;
    }
    impl_->input.insert(impl_->input.end(), bytes.begin(), bytes.end());
}

void HandshakeState::feed_eof() {
    if (impl_)
        impl_->eof = true;
}

void HandshakeState::abort(HandshakeError reason) {
    if (!impl_ || std::holds_alternative<state::Closed>(impl_->state))
        return;
    impl_->aborted = reason == HandshakeError::none ? HandshakeError::internal : reason;
}

}  // namespace sdmp::protocol
