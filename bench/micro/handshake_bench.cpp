// Handshake CPU cost per side versus the sum of the primitives it performs (protocol.md §3, §4).
//
// Initiator: build its message (next → Send) + process the reply (feed, next → Done).
// Responder: process the initiator message and build its own (feed, next → Send), then Done.
// Each side performs exactly: 1 X25519 key generation, 3 X25519 agreements (es out, es in, ee),
// 1 Ed25519 sign, 1 Ed25519 verify, 3 HKDF (two 32-byte seal keys, one 64-byte session okm),
// 2 SHA-256 (initiator message, 160 B; transcript, 320 B), 1 AEAD seal and 1 AEAD open of
// 104 B (each with its own key set-up). The ratio handshake / primitive sum shows the state
// machine's own overhead; the target is <= 1.3. Figures are medians over runs.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <variant>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake.hpp"

namespace {

using namespace sdmp;
using Clock = std::chrono::steady_clock;

constexpr int k_runs = 11;
constexpr int k_per_run = 200;

double micros(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Median over runs of the mean cost of `op` in microseconds.
double measure(const std::function<void()>& op, int per_run = k_per_run) {
    for (int i = 0; i < per_run / 4 + 1; ++i)
        op();  // warm-up
    std::vector<double> runs;
    for (int r = 0; r < k_runs; ++r) {
        const auto t0 = Clock::now();
        for (int i = 0; i < per_run; ++i)
            op();
        runs.push_back(micros(Clock::now() - t0) / per_run);
    }
    return median(runs);
}

template <class T>
T take(protocol::HandshakeAction a) {
    if (!std::holds_alternative<T>(a))
        throw std::runtime_error("unexpected handshake action");
    return std::get<T>(std::move(a));
}

crypto::Identity make_identity(crypto::CryptoProvider& p) {
    return crypto::Identity::generate(p);
}

void bench_suite(crypto::CryptoProvider& p, const crypto::Suite& suite) {
    const crypto::Identity alice = make_identity(p);
    const crypto::Identity bob = make_identity(p);
    crypto::TrustStore alice_trust;
    crypto::TrustStore bob_trust;
    if (alice_trust.add({bob.public_identity(), bob.fingerprint(), "bob", {}}) ||
        bob_trust.add({alice.public_identity(), alice.fingerprint(), "alice", {}})) {
        throw std::runtime_error("trust store");
    }
    protocol::ReplayCache cache;

    // --- whole handshakes, both sides timed separately in the same loop ---
    std::vector<double> init_runs;
    std::vector<double> resp_runs;
    for (int r = 0; r < k_runs + 1; ++r) {
        Clock::duration init_time{};
        Clock::duration resp_time{};
        for (int i = 0; i < k_per_run; ++i) {
            protocol::HandshakeConfig ic;
            ic.provider = &p;
            ic.self = &alice;
            ic.trust = &alice_trust;
            ic.suites = {suite.id};
            protocol::HandshakeConfig rc;
            rc.provider = &p;
            rc.self = &bob;
            rc.trust = &bob_trust;
            rc.replay_cache = &cache;

            const auto t0 = Clock::now();
            auto initiator = protocol::HandshakeState::initiator(std::move(ic), bob.fingerprint());
            const Bytes hello = take<protocol::action::Send>(initiator.next()).bytes;
            const auto t1 = Clock::now();
            auto responder = protocol::HandshakeState::responder(std::move(rc));
            responder.feed(hello);
            const Bytes reply = take<protocol::action::Send>(responder.next()).bytes;
            take<protocol::action::Done>(responder.next());
            const auto t2 = Clock::now();
            initiator.feed(reply);
            take<protocol::action::Done>(initiator.next());
            const auto t3 = Clock::now();
            init_time += (t1 - t0) + (t3 - t2);
            resp_time += t2 - t1;
        }
        if (r == 0)
            continue;  // warm-up run
        init_runs.push_back(micros(init_time) / k_per_run);
        resp_runs.push_back(micros(resp_time) / k_per_run);
    }
    const double init_hs = median(init_runs);
    const double resp_hs = median(resp_runs);

    // --- primitives, with the sizes the handshake uses ---
    const crypto::DhKeyPair eph = p.dh_generate();
    const crypto::DhKeyPair other = p.dh_generate();
    crypto::SecretBytes shared;
    const crypto::SignKeyPair& sign_key = alice.sign_key();
    std::array<std::uint8_t, 160> msg{};
    std::array<std::uint8_t, 320> two_msgs{};
    std::array<std::uint8_t, 128> signed_i{};  // initiator signs 128 bytes, responder 160
    const crypto::Signature sig_i = p.sign(sign_key, signed_i);
    const crypto::Signature sig_r = p.sign(sign_key, msg);
    std::array<std::uint8_t, 40> salt{};
    std::array<std::uint8_t, 43> info{};
    std::array<std::uint8_t, 32> key{};
    std::array<std::uint8_t, 32> out32{};
    std::array<std::uint8_t, 64> out64{};
    std::array<std::uint8_t, 104> body{};
    const crypto::Nonce nonce{};
    crypto::Tag tag{};
    std::array<std::uint8_t, 104> sealed_body = body;
    p.make_sealer(suite.aead, key)->seal(nonce, salt, sealed_body, tag);
    const crypto::Tag good_tag = tag;

    const double keygen = measure([&] { (void)p.dh_generate(); });
    const double agree = measure([&] {
        if (p.dh_agree(eph.private_key, other.public_key, shared))
            throw std::runtime_error("dh");
    });
    const double sign_i = measure([&] { (void)p.sign(sign_key, signed_i); });
    const double sign_r = measure([&] { (void)p.sign(sign_key, msg); });
    const double verify_i = measure([&] {
        if (!p.verify(sign_key.public_key, signed_i, sig_i))
            throw std::runtime_error("verify");
    });
    const double verify_r = measure([&] {
        if (!p.verify(sign_key.public_key, msg, sig_r))
            throw std::runtime_error("verify");
    });
    const double hkdf32 = measure([&] { p.hkdf(salt, key, info, out32); }, 4 * k_per_run);
    const double hkdf64 =
        measure([&] { p.hkdf(ByteView(salt).first(32), key, ByteView(info).first(19), out64); },
                4 * k_per_run);
    const double sha160 = measure([&] { (void)p.sha256(msg); }, 4 * k_per_run);
    const double sha320 = measure([&] { (void)p.sha256(two_msgs); }, 4 * k_per_run);
    const double seal = measure(
        [&] {
            std::array<std::uint8_t, 104> b = body;
            p.make_sealer(suite.aead, key)->seal(nonce, salt, b, tag);
        },
        4 * k_per_run);
    const double open = measure(
        [&] {
            std::array<std::uint8_t, 104> b = sealed_body;
            if (p.make_opener(suite.aead, key)->open(nonce, salt, b, good_tag)) {
                throw std::runtime_error("open");
            }
        },
        4 * k_per_run);

    // Initiator signs 128 bytes and verifies 160; the responder the reverse.
    const double common = keygen + 3 * agree + 2 * hkdf32 + hkdf64 + sha160 + sha320 + seal + open;
    const double init_prims = common + sign_i + verify_r;
    const double resp_prims = common + sign_r + verify_i;

    std::printf("suite %d (%.*s): medians of %d runs x %d\n", static_cast<int>(suite.id),
                static_cast<int>(suite.name.size()), suite.name.data(), k_runs, k_per_run);
    std::printf(
        "  primitives (us): x25519_keygen %.1f  x25519_agree %.1f  ed25519_sign %.1f/%.1f"
        "  ed25519_verify %.1f/%.1f\n",
        keygen, agree, sign_i, sign_r, verify_i, verify_r);
    std::printf(
        "                   hkdf32 %.2f  hkdf64 %.2f  sha256_160 %.2f  sha256_320 %.2f"
        "  aead_seal_104 %.2f  aead_open_104 %.2f\n",
        hkdf32, hkdf64, sha160, sha320, seal, open);
    std::printf("  initiator: handshake %.1f us  primitive sum %.1f us  ratio %.3f\n", init_hs,
                init_prims, init_hs / init_prims);
    std::printf("  responder: handshake %.1f us  primitive sum %.1f us  ratio %.3f\n", resp_hs,
                resp_prims, resp_hs / resp_prims);
}

}  // namespace

int main() {
    try {
        crypto::CryptoProvider& p = crypto::default_provider();
        std::printf("sdmp handshake CPU per side (provider %.*s)\n",
                    static_cast<int>(p.name().size()), p.name().data());
        for (const crypto::Suite& suite : crypto::all_suites())
            bench_suite(p, suite);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "handshake_bench: %s\n", e.what());
        return 1;
    }
}
