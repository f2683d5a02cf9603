// Handshake round trips between two in-memory state machines (protocol.md §3, §4).
#include "test_handshake_support.hpp"

#include "sdmp/protocol/key_schedule.hpp"

using namespace sdmp;
using namespace sdmp::test;

namespace {

void check_matching(const Pair& p, const World& w) {
    CHECK(p.initiator.keys.send_key.view().size() == 32);
    CHECK(p.initiator.keys.receive_key.view().size() == 32);
    CHECK(provider().equal(p.initiator.keys.send_key.view(), p.responder.keys.receive_key.view()));
    CHECK(provider().equal(p.initiator.keys.receive_key.view(), p.responder.keys.send_key.view()));
    CHECK_FALSE(
        provider().equal(p.initiator.keys.send_key.view(), p.initiator.keys.receive_key.view()));
    CHECK(p.initiator.keys.transcript_hash == p.responder.keys.transcript_hash);

    // The transcript hash is SHA-256(initiator message || responder message), protocol.md §4.
    Bytes both = p.hello;
    both.insert(both.end(), p.reply.begin(), p.reply.end());
    CHECK(p.initiator.keys.transcript_hash == provider().sha256(both));

    CHECK(p.initiator.peer == w.bob.public_identity());
    CHECK(p.initiator.peer_fingerprint == w.bob.fingerprint());
    CHECK(p.initiator.peer_name == "bob");
    CHECK(p.responder.peer == w.alice.public_identity());
    CHECK(p.responder.peer_fingerprint == w.alice.fingerprint());
    CHECK(p.responder.peer_name == "alice");
    CHECK(p.initiator.leftover.empty());
    CHECK(p.responder.leftover.empty());
}

}  // namespace

TEST_CASE("handshake round trip, both suites", "[handshake]") {
    World w;
    const auto suite = GENERATE(crypto::SuiteId::x25519_ed25519_aes256gcm_sha256,
                                crypto::SuiteId::x25519_ed25519_chacha20poly1305_sha256);
    auto icfg = w.config(w.alice, w.alice_trust);
    icfg.suites = {suite};
    auto initiator = HandshakeState::initiator(std::move(icfg), w.bob.fingerprint());
    auto responder = w.bob_responder();
    const Pair p = run(initiator, responder);

    check_matching(p, w);
    CHECK(p.initiator.suite.id == suite);
    CHECK(p.responder.suite.id == suite);
    CHECK(p.hello[5] == static_cast<std::uint8_t>(suite));
    CHECK(p.reply[5] == static_cast<std::uint8_t>(suite));
    CHECK(p.hello[6] == 1);
    CHECK(p.reply[6] == 2);

    // After Done, the state machine is spent.
    const auto after = expect<action::Failed>(initiator.next());
    CHECK(after.reason == HandshakeError::internal);
    CHECK(after.reply.empty());
    CHECK(expect<action::Failed>(responder.next()).reason == HandshakeError::internal);
}

TEST_CASE("handshake keys differ between sessions", "[handshake]") {
    World w;
    auto i1 = w.alice_to(w.bob);
    auto r1 = w.bob_responder();
    auto i2 = w.alice_to(w.bob);
    auto r2 = w.bob_responder();
    const Pair a = run(i1, r1);
    const Pair b = run(i2, r2);
    CHECK(a.hello != b.hello);
    CHECK_FALSE(
        provider().equal(a.initiator.keys.send_key.view(), b.initiator.keys.send_key.view()));
    CHECK(a.initiator.keys.transcript_hash != b.initiator.keys.transcript_hash);
}

TEST_CASE("handshake with carol uses carol's trust-store entry", "[handshake]") {
    World w;
    auto initiator = w.alice_to(w.carol);
    auto responder = HandshakeState::responder(w.config(w.carol, w.carol_trust));
    const Pair p = run(initiator, responder);
    CHECK(p.initiator.peer_fingerprint == w.carol.fingerprint());
    CHECK(p.initiator.peer_name == "carol");
    CHECK(p.responder.peer_name == "alice");
}

TEST_CASE("handshake session keys follow protocol.md §4", "[handshake]") {
    World w;
    auto initiator = HandshakeState::initiator(w.fixed_config(w.alice, w.alice_trust, 0x21),
                                               w.bob.fingerprint());
    auto responder = HandshakeState::responder(w.fixed_config(w.bob, w.bob_trust, 0x22));
    const Pair p = run(initiator, responder);

    crypto::DhKeyPair ei;
    crypto::DhKeyPair er;
    REQUIRE_FALSE(provider().dh_from_private(fixed_secret(0x21).view(), ei));
    REQUIRE_FALSE(provider().dh_from_private(fixed_secret(0x22).view(), er));
    CHECK(std::equal(ei.public_key.begin(), ei.public_key.end(), p.hello.begin() + 8));
    CHECK(std::equal(er.public_key.begin(), er.public_key.end(), p.reply.begin() + 8));

    crypto::SecretBytes ee;
    REQUIRE_FALSE(provider().dh_agree(ei.private_key, er.public_key, ee));
    Bytes both = p.hello;
    both.insert(both.end(), p.reply.begin(), p.reply.end());
    const auto th = provider().sha256(both);
    crypto::SecretBytes okm(64);
    const std::string_view info = "sdmp/1 session keys";
    provider().hkdf(th, ee.view(), as_bytes(info), okm.span());
    CHECK(provider().equal(okm.view().first(32), p.initiator.keys.send_key.view()));
    CHECK(provider().equal(okm.view().subspan(32), p.initiator.keys.receive_key.view()));
    CHECK(provider().equal(okm.view().first(32), p.responder.keys.receive_key.view()));
}

TEST_CASE("handshake keeps bytes fed after the connection message", "[handshake]") {
    World w;
    auto initiator = w.alice_to(w.bob);
    auto responder = w.bob_responder();
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;

    SECTION("initiator: reply and first records in one call") {
        const Bytes reply = expect<action::Send>(respond(responder, hello)).bytes;
        Bytes wire = reply;
        const Bytes records = {0x00, 0x00, 0x01, 0x10, 0xaa, 0xbb, 0xcc};
        wire.insert(wire.end(), records.begin(), records.end());
        CHECK(std::holds_alternative<action::Need>(initiator.next()));
        initiator.feed(wire);
        const auto done = expect<action::Done>(initiator.next());
        CHECK(done.result.leftover == records);
    }
    SECTION("responder: extra bytes with the hello and after it") {
        Bytes wire = hello;
        wire.push_back(0x42);
        CHECK(std::holds_alternative<action::Need>(responder.next()));
        responder.feed(wire);
        const Bytes reply = expect<action::Send>(responder.next()).bytes;
        responder.feed(Bytes{0x43, 0x44});
        const auto done = expect<action::Done>(responder.next());
        CHECK(done.result.leftover == Bytes{0x42, 0x43, 0x44});
        initiator.feed(reply);
        CHECK(expect<action::Done>(initiator.next()).result.leftover.empty());
    }
}

TEST_CASE("handshake fed one byte at a time", "[handshake]") {
    World w;
    auto initiator = w.alice_to(w.bob);
    auto responder = w.bob_responder();
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;

    // Responder: Need(8 - k) during the prefix, then Need(160 - k).
    for (std::size_t k = 0; k < hello.size(); ++k) {
        const auto need = expect<action::Need>(responder.next());
        const std::size_t want = k < 8 ? 8 - k : 160 - k;
        CHECK(need.count == want);
        responder.feed(ByteView(hello).subspan(k, 1));
    }
    const Bytes reply = expect<action::Send>(responder.next()).bytes;
    expect<action::Done>(responder.next());

    for (std::size_t k = 0; k < reply.size(); ++k) {
        const auto need = expect<action::Need>(initiator.next());
        CHECK(need.count == (k < 8 ? 8 - k : 160 - k));
        initiator.feed(ByteView(reply).subspan(k, 1));
    }
    const auto done = expect<action::Done>(initiator.next());
    CHECK(done.result.peer_name == "bob");
}

TEST_CASE("handshake initiator with an unknown responder sends nothing", "[handshake]") {
    World w;
    auto initiator = w.alice_to(w.mallory);
    const auto f = expect<action::Failed>(initiator.next());
    CHECK(f.reason == HandshakeError::unknown_peer);
    CHECK(f.reply.empty());
}

TEST_CASE("handshake refuses a suite the responder does not accept", "[handshake]") {
    World w;
    auto icfg = w.config(w.alice, w.alice_trust);
    icfg.suites = {crypto::SuiteId::x25519_ed25519_chacha20poly1305_sha256};
    auto initiator = HandshakeState::initiator(std::move(icfg), w.bob.fingerprint());
    auto rcfg = w.config(w.bob, w.bob_trust);
    rcfg.suites = {crypto::SuiteId::x25519_ed25519_aes256gcm_sha256};
    auto responder = HandshakeState::responder(std::move(rcfg));
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    CHECK(hello[5] == 2);
    // The prefix alone decides: 8 bytes are enough for the refusal.
    CHECK(std::holds_alternative<action::Need>(responder.next()));
    responder.feed(ByteView(hello).first(8));
    expect_refusal(responder, HandshakeError::unsupported_suite);
}

TEST_CASE("handshake clock check", "[handshake]") {
    World w;
    const std::uint64_t skew = 120'000;
    SECTION("responder clock behind or ahead by more than the skew") {
        const std::uint64_t responder_now = GENERATE(k_now - skew - 1, k_now + skew + 1);
        auto initiator = w.alice_to(w.bob);
        auto responder = w.bob_responder(responder_now);
        const Bytes hello = expect<action::Send>(initiator.next()).bytes;
        const auto f = expect<action::Failed>(respond(responder, hello));
        CHECK(f.reason == HandshakeError::clock_skew);
        CHECK(f.reply == nope_bytes());
    }
    SECTION("exactly at the limit is accepted") {
        const std::uint64_t responder_now = GENERATE(k_now - skew, k_now + skew);
        auto initiator = w.alice_to(w.bob);
        auto responder = w.bob_responder(responder_now);
        const Bytes hello = expect<action::Send>(initiator.next()).bytes;
        CHECK(std::holds_alternative<action::Send>(respond(responder, hello)));
    }
    SECTION("initiator rejects a responder clock off by more than the skew") {
        const std::uint64_t responder_now = GENERATE(k_now - 2 * skew, k_now + 2 * skew);
        auto initiator = w.alice_to(w.bob);
        auto rcfg = w.config(w.bob, w.bob_trust, responder_now);
        rcfg.max_clock_skew.reset();  // the responder accepts; the initiator must not
        auto responder = HandshakeState::responder(std::move(rcfg));
        const Bytes hello = expect<action::Send>(initiator.next()).bytes;
        const Bytes reply = expect<action::Send>(respond(responder, hello)).bytes;
        initiator.feed(reply);
        expect_refusal(initiator, HandshakeError::clock_skew);
    }
    SECTION("clock check off accepts any time") {
        auto icfg = w.config(w.alice, w.alice_trust, k_now - 3'600'000);
        icfg.max_clock_skew.reset();
        auto initiator = HandshakeState::initiator(std::move(icfg), w.bob.fingerprint());
        auto rcfg = w.config(w.bob, w.bob_trust, k_now + 3'600'000);
        rcfg.max_clock_skew.reset();
        auto responder = HandshakeState::responder(std::move(rcfg));
        const Pair p = run(initiator, responder);
        CHECK(p.initiator.keys.transcript_hash == p.responder.keys.transcript_hash);
    }
}

TEST_CASE("handshake replay cache refuses a second use of an initiator message", "[handshake]") {
    World w;
    protocol::ReplayCache cache(120'000, 16);
    auto initiator = w.alice_to(w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;

    auto rcfg1 = w.config(w.bob, w.bob_trust);
    rcfg1.replay_cache = &cache;
    auto first = HandshakeState::responder(std::move(rcfg1));
    CHECK(std::holds_alternative<action::Send>(respond(first, hello)));
    CHECK(cache.size() == 1);

    auto rcfg2 = w.config(w.bob, w.bob_trust, k_now + 1000);
    rcfg2.replay_cache = &cache;
    auto second = HandshakeState::responder(std::move(rcfg2));
    const auto f = expect<action::Failed>(respond(second, hello));
    CHECK(f.reason == HandshakeError::replay);
    CHECK(f.reply == nope_bytes());

    // Without a cache the replay gets an answer, which the replayer cannot use (§3.5).
    auto uncached = w.bob_responder();
    CHECK(std::holds_alternative<action::Send>(respond(uncached, hello)));
}

TEST_CASE("handshake rejected messages do not enter the replay cache", "[handshake]") {
    World w;
    protocol::ReplayCache cache(120'000, 16);
    auto c = hello_craft(w.alice, w.bob);
    c.corrupt_signature = true;
    auto rcfg = w.config(w.bob, w.bob_trust);
    rcfg.replay_cache = &cache;
    auto responder = HandshakeState::responder(std::move(rcfg));
    CHECK(std::holds_alternative<action::Failed>(respond(responder, craft(c))));
    CHECK(cache.size() == 0);
}

TEST_CASE("handshake default replay cache covers the whole clock-skew window", "[handshake]") {
    // A message passes the clock check from `timestamp - skew` to `timestamp + skew` of the
    // responder's time, so the cache must remember it for 2 * skew (protocol.md §3.5 step 6).
    World w;
    protocol::ReplayCache cache;  // defaults
    auto initiator = w.alice_to(w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;

    auto early_cfg = w.config(w.bob, w.bob_trust, k_now - 120'000);
    early_cfg.replay_cache = &cache;
    auto early = HandshakeState::responder(std::move(early_cfg));
    CHECK(std::holds_alternative<action::Send>(respond(early, hello)));

    auto late_cfg = w.config(w.bob, w.bob_trust, k_now + 120'000);
    late_cfg.replay_cache = &cache;
    auto late = HandshakeState::responder(std::move(late_cfg));
    const auto f = expect<action::Failed>(respond(late, hello));
    CHECK(f.reason == HandshakeError::replay);
    CHECK(cache.window_ms() >= 2 * 120'000);
}
