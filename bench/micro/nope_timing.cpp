// How long the responder works on an initiator message before it answers `nope`, per cause,
// against the work on a message it accepts (protocol.md §3.5: "avoid making causes
// distinguishable by timing where it is cheap to do so").
//
// Timed: HandshakeState::feed(message) + next() on a fresh responder, i.e. exactly the work
// between the last byte of the message arriving and `nope` (or the responder's own message)
// being ready to write. Every message is built beforehand; every cause is checked to fail for
// the intended reason. Rounds interleave the causes, so drift hits them alike, in an order
// shuffled every round (fixed seed): a cause measured right after one that did no cryptography
// (bad magic) runs measurably slower, and a fixed order would pin that on one cause. Figures are
// medians (and p10/p90) of single measurements.
//
// The signature causes are crafted the way a prober who knows the server's public key would: a
// message sealed properly to the server whose signature is altered, R changed (S stays below the
// group order L) or S >= L (all 0xff), the latter once from a signer the server does not know and
// once from one it does. Ed25519 verifiers reject S >= L before any curve arithmetic; protocol.md
// §3.5 makes the receiver verify a dummy signature instead.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/suite.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake.hpp"
#include "sdmp/protocol/key_schedule.hpp"
#include "sdmp/protocol/replay_cache.hpp"
#include "sdmp/protocol/wire.hpp"

namespace {

using namespace sdmp;
using Clock = std::chrono::steady_clock;

constexpr int k_rounds = 2000;
constexpr int k_warmup = 50;

struct Cause {
    const char* name;
    protocol::HandshakeError expected;  // none: the message is accepted (the responder's Send)
    // Builds the message of one measurement; `prepare` runs untimed just before it (replay:
    // the first, untimed delivery that puts the ephemeral into the cache).
    std::function<Bytes()> make;
    std::function<void(const Bytes&)> prepare;
    std::vector<double> samples_us;
};

// protocol.md §3.1: the signature is the last 64 bytes of the body: R, then S.
constexpr std::size_t k_body_signature = 40;
constexpr std::size_t k_signature_half = 32;

double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main() {
    crypto::CryptoProvider& p = crypto::default_provider();
    const crypto::Identity server = crypto::Identity::generate(p);
    const crypto::Identity client = crypto::Identity::generate(p);
    const crypto::Identity stranger = crypto::Identity::generate(p);

    // Every initiator knows the server.
    crypto::TrustStore knows_server;
    if (knows_server.add({server.public_identity(), server.fingerprint(), "server", {}}))
        throw std::runtime_error("trust store");
    // The server knows the client.
    crypto::TrustStore server_trust;
    if (server_trust.add({client.public_identity(), client.fingerprint(), "client", {}}))
        throw std::runtime_error("trust store");
    protocol::ReplayCache cache;

    auto hello = [&](const crypto::Identity& from, protocol::Clock clock) {
        protocol::HandshakeConfig config;
        config.provider = &p;
        config.self = &from;
        config.trust = &knows_server;
        if (clock)
            config.clock = std::move(clock);
        auto initiator =
            protocol::HandshakeState::initiator(std::move(config), server.fingerprint());
        auto action = initiator.next();
        auto* send = std::get_if<protocol::action::Send>(&action);
        if (send == nullptr)
            throw std::runtime_error("initiator did not send");
        return send->bytes;
    };
    auto valid = [&] { return hello(client, {}); };
    auto responder = [&](const crypto::TrustStore* trust) {
        protocol::HandshakeConfig config;
        config.provider = &p;
        config.self = &server;
        config.trust = trust;
        config.replay_cache = &cache;
        return protocol::HandshakeState::responder(std::move(config));
    };

    // Opens a message sealed to the server (the bench holds the server's key), lets `edit`
    // change the signature and seals the body again under the same header, so the seal still
    // opens (protocol.md §3.2).
    auto resealed = [&](Bytes m, void (*edit)(std::uint8_t * signature)) {
        const ByteView header(m.data(), protocol::k_header_size);
        crypto::DhPublic ephemeral{};
        std::copy_n(m.begin() + 8, ephemeral.size(), ephemeral.begin());  // header bytes 8..40
        crypto::SecretBytes es;
        if (p.dh_agree(server.dh_key().private_key, ephemeral, es))
            throw std::runtime_error("reseal: es");
        const crypto::SecretBytes key =
            protocol::derive_seal_key(p, header, es, server.dh_key().public_key);
        const crypto::AeadAlgorithm aead = crypto::find_suite(m[5])->aead;
        const MutableByteView body(m.data() + protocol::k_header_size, protocol::k_body_plain_size);
        std::uint8_t* const tag_at = body.data() + body.size();  // the 16 bytes after the body
        crypto::Tag tag{};
        std::copy_n(tag_at, tag.size(), tag.begin());
        if (p.make_opener(aead, key.view())->open(crypto::Nonce{}, header, body, tag))
            throw std::runtime_error("reseal: open");
        edit(body.data() + k_body_signature);
        p.make_sealer(aead, key.view())->seal(crypto::Nonce{}, header, body, tag);
        std::copy(tag.begin(), tag.end(), tag_at);
        return m;
    };
    auto alter_r = [](std::uint8_t* signature) { signature[0] ^= 0x01; };
    auto s_all_ff = [](std::uint8_t* signature) {
        std::fill_n(signature + k_signature_half, k_signature_half, std::uint8_t{0xff});
    };

    using E = protocol::HandshakeError;
    std::vector<Cause> causes;
    auto add = [&](const char* name, E expected, std::function<Bytes()> make,
                   std::function<void(const Bytes&)> prepare = {}) {
        causes.push_back({name, expected, std::move(make), std::move(prepare), {}});
    };
    add("accepted (reply built)", E::none, valid);
    add("bad magic", E::bad_magic, [&] {
        Bytes m = valid();
        m[0] ^= 0x01;
        return m;
    });
    add("low-order ephemeral", E::low_order_point, [&] {
        Bytes m = valid();
        std::fill(m.begin() + 8, m.begin() + 40, 0);
        return m;
    });
    add("seal does not open", E::seal_failed, [&] {
        Bytes m = valid();
        m[protocol::k_header_size + 10] ^= 0x01;
        return m;
    });
    add("unknown peer", E::unknown_peer, [&] { return hello(stranger, {}); });
    add("unknown peer, S >= L (seal opens)", E::unknown_peer,
        [&] { return resealed(hello(stranger, {}), s_all_ff); });
    add("bad signature (R altered)", E::bad_signature, [&] { return resealed(valid(), alter_r); });
    add("bad signature, S >= L", E::bad_signature, [&] { return resealed(valid(), s_all_ff); });
    add("clock skew (+10 min)", E::clock_skew,
        [&] { return hello(client, [] { return protocol::system_clock_ms() + 10 * 60 * 1000; }); });
    add("replay", E::replay, valid, [&](const Bytes& m) {
        auto first = responder(&server_trust);
        first.feed(m);
        if (!std::holds_alternative<protocol::action::Send>(first.next()))
            throw std::runtime_error("first delivery of the replay refused");
    });

    std::vector<std::size_t> order(causes.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::mt19937 shuffler(20240917);
    for (int round = 0; round < k_warmup + k_rounds; ++round) {
        std::shuffle(order.begin(), order.end(), shuffler);
        for (const std::size_t index : order) {
            Cause& cause = causes[index];
            const Bytes message = cause.make();
            if (cause.prepare)
                cause.prepare(message);
            auto state = responder(&server_trust);
            const auto t0 = Clock::now();
            state.feed(message);
            protocol::HandshakeAction action = state.next();
            const auto t1 = Clock::now();

            if (cause.expected == E::none) {
                if (!std::holds_alternative<protocol::action::Send>(action))
                    throw std::runtime_error(std::string(cause.name) + ": not accepted");
            } else {
                const auto* failed = std::get_if<protocol::action::Failed>(&action);
                if (failed == nullptr || failed->reason != cause.expected ||
                    failed->reply.size() != protocol::k_nope.size()) {
                    throw std::runtime_error(std::string(cause.name) + ": wrong outcome");
                }
            }
            if (round >= k_warmup)
                cause.samples_us.push_back(
                    std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
    }

    // The reference for "is the cause visible in the timing": the other refusals after the
    // prefix check, and a message that passes validation (replay fails only after all of it).
    const double accepted = quantile(causes.front().samples_us, 0.5);
    double validated = 0;
    for (const Cause& cause : causes) {
        if (cause.expected == E::replay)
            validated = quantile(cause.samples_us, 0.5);
    }
    std::printf("Responder time from a whole initiator message to its answer, %d rounds\n",
                k_rounds);
    std::printf("(suite %s; feed + next on a fresh responder; us)\n\n",
                std::string(crypto::find_suite(1)->name).c_str());
    std::printf("| cause | local reason | median | p10 | p90 | vs replay (full validation) |\n");
    std::printf("|---|---|---:|---:|---:|---:|\n");
    for (const Cause& cause : causes) {
        const double median = quantile(cause.samples_us, 0.5);
        std::printf("| %s | %s | %.1f | %.1f | %.1f | %+.1f%% |\n", cause.name,
                    cause.expected == E::none
                        ? "-"
                        : std::string(protocol::to_string(cause.expected)).c_str(),
                    median, quantile(cause.samples_us, 0.1), quantile(cause.samples_us, 0.9),
                    100.0 * (median - validated) / validated);
    }
    std::printf("\naccepted / full validation: %.2fx\n", accepted / validated);
    return 0;
}
