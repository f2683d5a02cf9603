// Handshake CPU cost per side versus the sum of the primitives it performs (protocol.md §3, §4).
//
// Initiator: build its message (next → Send) + process the reply (feed, next → Done).
// Responder: process the initiator message and build its own (feed, next → Send), then Done.
// Each side performs exactly: 1 X25519 key generation, 3 X25519 agreements (es out, es in, ee),
// 1 Ed25519 sign, 1 Ed25519 verify, 3 HKDF (two 32-byte seal keys, one 64-byte session okm),
// 2 SHA-256 (initiator message, 160 B; transcript, 320 B), 1 AEAD seal and 1 AEAD open of
// 104 B (each with its own key set-up). The ratio handshake / primitive sum shows the state
// machine's own overhead; the target is <= 1.3. Figures are medians over interleaved rounds
// (the ratio is the median of per-round ratios).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
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

constexpr int k_runs = 15;
constexpr int k_per_run = 100;

double micros(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <class T>
T take(protocol::HandshakeAction a) {
    if (!std::holds_alternative<T>(a))
        throw std::runtime_error("unexpected handshake action");
    return std::get<T>(std::move(a));
}

// One measured quantity: per-round means, reported as their median.
struct Series {
    const char* name;
    std::function<void()> op;  // empty for the handshake series
    int batch;
    std::vector<double> rounds;
    double value() const { return median(rounds); }
};

void bench_suite(crypto::CryptoProvider& p, const crypto::Suite& suite) {
    const crypto::Identity alice = crypto::Identity::generate(p);
    const crypto::Identity bob = crypto::Identity::generate(p);
    crypto::TrustStore alice_trust;
    crypto::TrustStore bob_trust;
    if (alice_trust.add({bob.public_identity(), bob.fingerprint(), "bob", {}}) ||
        bob_trust.add({alice.public_identity(), alice.fingerprint(), "alice", {}})) {
        throw std::runtime_error("trust store");
    }
    protocol::ReplayCache cache;

    // Whole handshakes; both sides timed separately in the same loop.
    auto handshake_batch = [&](double& init_us, double& resp_us) {
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
        init_us = micros(init_time) / k_per_run;
        resp_us = micros(resp_time) / k_per_run;
    };

    // Primitives, with the sizes the handshake uses.
    const crypto::DhKeyPair eph = p.dh_generate();
    const crypto::DhKeyPair other = p.dh_generate();
    crypto::SecretBytes shared;
    const crypto::SignKeyPair& sign_key = alice.sign_key();
    const std::array<std::uint8_t, 160> msg{};
    const std::array<std::uint8_t, 320> two_msgs{};
    const std::array<std::uint8_t, 128> signed_i{};  // initiator signs 128 bytes, responder 160
    const crypto::Signature sig_i = p.sign(sign_key, signed_i);
    const crypto::Signature sig_r = p.sign(sign_key, msg);
    const std::array<std::uint8_t, 40> salt{};
    const std::array<std::uint8_t, 43> info{};
    const std::array<std::uint8_t, 32> key{};
    std::array<std::uint8_t, 32> out32{};
    std::array<std::uint8_t, 64> out64{};
    const std::array<std::uint8_t, 104> body{};
    const crypto::Nonce nonce{};
    crypto::Tag tag{};
    std::array<std::uint8_t, 104> sealed_body = body;
    p.make_sealer(suite.aead, key)->seal(nonce, salt, sealed_body, tag);
    const crypto::Tag good_tag = tag;

    enum : std::size_t {
        keygen,
        agree,
        sign_i_,
        sign_r_,
        verify_i_,
        verify_r_,
        hkdf32,
        hkdf64,
        sha160,
        sha320,
        seal,
        open,
        count
    };
    std::array<Series, count> prims = {{
        {"x25519_keygen", [&] { (void)p.dh_generate(); }, k_per_run, {}},
        {"x25519_agree",
         [&] {
             if (p.dh_agree(eph.private_key, other.public_key, shared))
                 throw std::runtime_error("dh");
         },
         k_per_run,
         {}},
        {"ed25519_sign_128", [&] { (void)p.sign(sign_key, signed_i); }, k_per_run, {}},
        {"ed25519_sign_160", [&] { (void)p.sign(sign_key, msg); }, k_per_run, {}},
        {"ed25519_verify_128",
         [&] {
             if (!p.verify(sign_key.public_key, signed_i, sig_i))
                 throw std::runtime_error("verify");
         },
         k_per_run,
         {}},
        {"ed25519_verify_160",
         [&] {
             if (!p.verify(sign_key.public_key, msg, sig_r))
                 throw std::runtime_error("verify");
         },
         k_per_run,
         {}},
        {"hkdf_32", [&] { p.hkdf(salt, key, info, out32); }, 8 * k_per_run, {}},
        {"hkdf_64",
         [&] { p.hkdf(ByteView(salt).first(32), key, ByteView(info).first(19), out64); },
         8 * k_per_run,
         {}},
        {"sha256_160", [&] { (void)p.sha256(msg); }, 8 * k_per_run, {}},
        {"sha256_320", [&] { (void)p.sha256(two_msgs); }, 8 * k_per_run, {}},
        {"aead_seal_104",
         [&] {
             std::array<std::uint8_t, 104> b = body;
             crypto::Tag t{};
             p.make_sealer(suite.aead, key)->seal(nonce, salt, b, t);
         },
         8 * k_per_run,
         {}},
        {"aead_open_104",
         [&] {
             std::array<std::uint8_t, 104> b = sealed_body;
             if (p.make_opener(suite.aead, key)->open(nonce, salt, b, good_tag)) {
                 throw std::runtime_error("open");
             }
         },
         8 * k_per_run,
         {}},
    }};

    // Rounds interleave the handshake batch with every primitive batch, so load from other
    // processes on this shared machine hits both sides of each ratio alike. Round 0 warms up.
    std::vector<double> init_hs;
    std::vector<double> resp_hs;
    std::vector<double> init_ratio;
    std::vector<double> resp_ratio;
    for (int r = 0; r <= k_runs; ++r) {
        double i_us = 0;
        double r_us = 0;
        handshake_batch(i_us, r_us);
        std::array<double, count> cost{};
        for (std::size_t k = 0; k < count; ++k) {
            const auto t0 = Clock::now();
            for (int i = 0; i < prims[k].batch; ++i)
                prims[k].op();
            cost[k] = micros(Clock::now() - t0) / prims[k].batch;
        }
        if (r == 0)
            continue;
        for (std::size_t k = 0; k < count; ++k)
            prims[k].rounds.push_back(cost[k]);
        // Initiator signs 128 bytes and verifies 160; the responder the reverse.
        const double common = cost[keygen] + 3 * cost[agree] + 2 * cost[hkdf32] + cost[hkdf64] +
                              cost[sha160] + cost[sha320] + cost[seal] + cost[open];
        init_hs.push_back(i_us);
        resp_hs.push_back(r_us);
        init_ratio.push_back(i_us / (common + cost[sign_i_] + cost[verify_r_]));
        resp_ratio.push_back(r_us / (common + cost[sign_r_] + cost[verify_i_]));
    }

    std::printf("suite %d (%.*s): medians of %d rounds\n", static_cast<int>(suite.id),
                static_cast<int>(suite.name.size()), suite.name.data(), k_runs);
    std::printf("  primitives (us):");
    for (std::size_t k = 0; k < count; ++k) {
        std::printf("%s %s %.2f", k == 6 ? "\n                  " : "", prims[k].name,
                    prims[k].value());
    }
    const auto v = [&](std::size_t k) { return prims[k].value(); };
    const double common = v(keygen) + 3 * v(agree) + 2 * v(hkdf32) + v(hkdf64) + v(sha160) +
                          v(sha320) + v(seal) + v(open);
    std::printf("\n  initiator: handshake %.1f us  primitive sum %.1f us  ratio %.3f\n",
                median(init_hs), common + v(sign_i_) + v(verify_r_), median(init_ratio));
    std::printf("  responder: handshake %.1f us  primitive sum %.1f us  ratio %.3f\n",
                median(resp_hs), common + v(sign_r_) + v(verify_i_), median(resp_ratio));
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
