// The main job of the README's first command: two nodes run the whole sdmp protocol in
// memory (no sockets), so a reader can follow every step of docs/protocol.md.
#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <variant>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"

namespace {

using namespace sdmp;
using Clock = std::chrono::steady_clock;

double micros_since(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

struct Node {
    std::string name;
    crypto::Identity identity;
    crypto::TrustStore trust;
};

crypto::TrustedPeer trusted(const Node& node) {
    return {node.identity.public_identity(), node.identity.fingerprint(), node.name, ""};
}

// Moves bytes between two handshake state machines until both have finished, printing each
// step. Returns the two outcomes.
struct Outcome {
    std::variant<protocol::action::Done, protocol::action::Failed> initiator;
    std::variant<protocol::action::Done, protocol::action::Failed> responder;
};

Outcome run_handshake(protocol::HandshakeState initiator, protocol::HandshakeState responder,
                      const std::string& from, const std::string& to) {
    std::optional<std::variant<protocol::action::Done, protocol::action::Failed>> results[2];
    protocol::HandshakeState* sides[2] = {&initiator, &responder};
    const std::string names[2] = {from, to};
    bool progress = true;
    while (progress && !(results[0] && results[1])) {
        progress = false;
        for (int i = 0; i < 2; ++i) {
            if (results[i])
                continue;
            auto action = sides[i]->next();
            if (auto* send = std::get_if<protocol::action::Send>(&action)) {
                fmt::print(
                    "  {:>7} -> {:<7} connection message, {} bytes (header {} B plaintext, body {} "
                    "B sealed)\n",
                    names[i], names[1 - i], send->bytes.size(), protocol::k_header_size,
                    protocol::k_body_sealed_size);
                sides[1 - i]->feed(send->bytes);
                progress = true;
            } else if (auto* done = std::get_if<protocol::action::Done>(&action)) {
                results[i] = std::move(*done);
                progress = true;
            } else if (auto* failed = std::get_if<protocol::action::Failed>(&action)) {
                if (!failed->reply.empty()) {
                    fmt::print("  {:>7} -> {:<7} \"{}\" ({} plaintext bytes), then closes\n",
                               names[i], names[1 - i], as_string_view(failed->reply),
                               failed->reply.size());
                    sides[1 - i]->feed(failed->reply);
                    sides[1 - i]->feed_eof();
                }
                fmt::print("  {:>7} local log: handshake failed: {}\n", names[i],
                           protocol::to_string(failed->reason));
                results[i] = std::move(*failed);
                progress = true;
            }
        }
    }
    if (!results[0] || !results[1]) {
        fmt::print(stderr, "demo: handshake stalled\n");
        std::exit(1);
    }
    return {std::move(*results[0]), std::move(*results[1])};
}

protocol::HandshakeConfig config_for(Node& node) {
    protocol::HandshakeConfig config;
    config.provider = &crypto::default_provider();
    config.self = &node.identity;
    config.trust = &node.trust;
    return config;
}

}  // namespace

int main() {
    auto& provider = crypto::default_provider();
    fmt::print("sdmp demo: the secure transport of docs/protocol.md, run in memory\n\n");

    fmt::print("1. Identities (Ed25519 signing key + X25519 static key; fingerprint = SHA-256)\n");
    Node alice{"alice", crypto::Identity::generate(provider), {}};
    Node bob{"bob", crypto::Identity::generate(provider), {}};
    Node mallory{"mallory", crypto::Identity::generate(provider), {}};
    for (const Node* n : {&alice, &bob, &mallory}) {
        fmt::print("  {:<8} {}\n", n->name, n->identity.fingerprint().hex());
    }
    if (alice.trust.add(trusted(bob)) || bob.trust.add(trusted(alice)) ||
        mallory.trust.add(trusted(bob))) {
        fmt::print(stderr, "demo: could not build trust stores\n");
        return 1;
    }
    fmt::print(
        "  alice and bob trust each other; mallory knows bob's key, but bob does not know "
        "mallory\n\n");

    fmt::print("2. Handshake alice -> bob (suite 1: X25519, Ed25519, AES-256-GCM, SHA-256)\n");
    protocol::ReplayCache replay_cache;
    auto bob_config = config_for(bob);
    bob_config.replay_cache = &replay_cache;
    auto start = Clock::now();
    auto outcome = run_handshake(
        protocol::HandshakeState::initiator(config_for(alice), bob.identity.fingerprint()),
        protocol::HandshakeState::responder(bob_config), "alice", "bob");
    double handshake_us = micros_since(start);
    auto* alice_done = std::get_if<protocol::action::Done>(&outcome.initiator);
    auto* bob_done = std::get_if<protocol::action::Done>(&outcome.responder);
    if (!alice_done || !bob_done) {
        fmt::print(stderr, "demo: the trusted handshake failed\n");
        return 1;
    }
    auto& a = alice_done->result;
    auto& b = bob_done->result;
    fmt::print("  alice sees peer '{}' {}\n", a.peer_name, a.peer_fingerprint.short_hex());
    fmt::print("  bob   sees peer '{}' {}\n", b.peer_name, b.peer_fingerprint.short_hex());
    fmt::print("  both derived the same transcript hash: {}\n",
               provider.equal(a.keys.transcript_hash, b.keys.transcript_hash) ? "yes" : "NO");
    fmt::print(
        "  session keys: one per direction (never printed); handshake took {:.0f} us for both "
        "sides\n\n",
        handshake_us);

    fmt::print("3. Records (raw DEFLATE, zero padding to 256-byte multiples, AEAD)\n");
    protocol::RecordSealer alice_out(provider, a.suite.aead, a.keys.send_key);
    protocol::RecordOpener bob_in(provider, b.suite.aead, b.keys.receive_key);
    protocol::RecordSealer bob_out(provider, b.suite.aead, b.keys.send_key);
    protocol::RecordOpener alice_in(provider, a.suite.aead, a.keys.receive_key);

    std::string text;
    for (int i = 0; i < 200; ++i)
        text += "the quick brown fox jumps over the lazy dog. ";
    struct Sample {
        const char* what;
        std::string body;
        int level;
    };
    const Sample samples[] = {
        {"short request, level 0", "hello, bob", 0},
        {"9 KB of text, level 0", text, 0},
        {"9 KB of text, level 6", text, 6},
    };
    std::uint64_t id = 0;
    for (const auto& sample : samples) {
        Bytes payload;
        protocol::Request request{
            ++id, "echo", 0, {}, Bytes(sample.body.begin(), sample.body.end())};
        if (protocol::encode_message(request, payload))
            return 1;
        Bytes wire;
        if (auto ec = alice_out.seal(payload, sample.level, wire)) {
            fmt::print(stderr, "demo: seal failed: {}\n", ec.message());
            return 1;
        }
        bob_in.feed(wire);
        Bytes opened;
        std::vector<protocol::Message> messages;
        if (auto ec = bob_in.next(opened);
            ec || protocol::decode_messages(opened, messages) || messages.size() != 1) {
            fmt::print(stderr, "demo: bob could not open the record\n");
            return 1;
        }
        auto& got = std::get<protocol::Request>(messages.front());
        fmt::print(
            "  alice -> bob  {:<24} message {:>5} B -> record {:>5} B on the wire; bob got '{}' "
            "({} B)\n",
            sample.what, payload.size(), wire.size(), got.method, got.body.size());

        // Bob answers on his own key; alice opens it.
        Bytes answer;
        protocol::Response response{got.id, protocol::Status::ok, {}, std::move(got.body)};
        wire.clear();
        if (protocol::encode_message(response, answer) ||
            bob_out.seal(answer, sample.level, wire)) {
            return 1;
        }
        alice_in.feed(wire);
        if (alice_in.next(opened))
            return 1;
    }
    fmt::print(
        "  bob -> alice  answered all {} requests; a flipped bit in any record would close the "
        "connection\n\n",
        id);

    fmt::print("4. Handshake mallory -> bob (bob does not trust mallory)\n");
    auto refused = run_handshake(
        protocol::HandshakeState::initiator(config_for(mallory), bob.identity.fingerprint()),
        protocol::HandshakeState::responder(bob_config), "mallory", "bob");
    auto* mallory_failed = std::get_if<protocol::action::Failed>(&refused.initiator);
    auto* bob_failed = std::get_if<protocol::action::Failed>(&refused.responder);
    if (!mallory_failed || !bob_failed ||
        mallory_failed->reason != protocol::HandshakeError::refused_by_peer) {
        fmt::print(stderr, "demo: the untrusted handshake was not refused as expected\n");
        return 1;
    }
    fmt::print("  mallory learns only \"nope\"; bob keeps the reason ({}) in his own log\n\n",
               protocol::to_string(bob_failed->reason));

    fmt::print(
        "Summary: 1 session established in {:.0f} us, {} requests answered, 1 untrusted peer "
        "refused.\n",
        handshake_us, id);
    return 0;
}
