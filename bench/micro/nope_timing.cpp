// How long the responder works on an initiator message before it answers `nope`, per cause,
// against the work on a message it accepts (protocol.md §3.5: "avoid making causes
// distinguishable by timing where it is cheap to do so").
//
// Timed: HandshakeState::feed(message) + next() on a fresh responder, i.e. exactly the work
// between the last byte of the message arriving and `nope` (or the responder's own message)
// being ready to write. Every message is built beforehand; every cause is checked to fail for
// the intended reason. Rounds interleave the causes, so drift hits them alike. Figures are
// medians (and p10/p90) of single measurements.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake.hpp"
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
    const crypto::Identity impostor = crypto::Identity::generate(p);

    // Every initiator knows the server.
    crypto::TrustStore knows_server;
    if (knows_server.add({server.public_identity(), server.fingerprint(), "server", {}}))
        throw std::runtime_error("trust store");
    // The server knows the client; a second responder store files the client's fingerprint
    // under another key pair, so the client's signature cannot verify (bad_signature).
    crypto::TrustStore server_trust;
    crypto::TrustStore mixed_up_trust;
    if (server_trust.add({client.public_identity(), client.fingerprint(), "client", {}}) ||
        mixed_up_trust.add({impostor.public_identity(), client.fingerprint(), "client", {}})) {
        throw std::runtime_error("trust store");
    }
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

    using E = protocol::HandshakeError;
    std::vector<Cause> causes;
    causes.push_back({"accepted (reply built)", E::none, valid, {}, {}});
    causes.push_back({"bad magic",
                      E::bad_magic,
                      [&] {
                          Bytes m = valid();
                          m[0] ^= 0x01;
                          return m;
                      },
                      {},
                      {}});
    causes.push_back({"low-order ephemeral",
                      E::low_order_point,
                      [&] {
                          Bytes m = valid();
                          std::fill(m.begin() + 8, m.begin() + 40, 0);
                          return m;
                      },
                      {},
                      {}});
    causes.push_back({"seal does not open",
                      E::seal_failed,
                      [&] {
                          Bytes m = valid();
                          m[protocol::k_header_size + 10] ^= 0x01;
                          return m;
                      },
                      {},
                      {}});
    causes.push_back(
        {"unknown peer", E::unknown_peer, [&] { return hello(stranger, {}); }, {}, {}});
    causes.push_back({"bad signature", E::bad_signature, valid, {}, {}});
    causes.push_back(
        {"clock skew (+10 min)",
         E::clock_skew,
         [&] { return hello(client, [] { return protocol::system_clock_ms() + 10 * 60 * 1000; }); },
         {},
         {}});
    causes.push_back({"replay",
                      E::replay,
                      valid,
                      [&](const Bytes& m) {
                          auto first = responder(&server_trust);
                          first.feed(m);
                          if (!std::holds_alternative<protocol::action::Send>(first.next()))
                              throw std::runtime_error("first delivery of the replay refused");
                      },
                      {}});

    for (int round = 0; round < k_warmup + k_rounds; ++round) {
        for (Cause& cause : causes) {
            const Bytes message = cause.make();
            if (cause.prepare)
                cause.prepare(message);
            auto state =
                responder(cause.expected == E::bad_signature ? &mixed_up_trust : &server_trust);
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
