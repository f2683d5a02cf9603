// Every validation failure answers exactly `nope` and yields no keys (protocol.md §3.5, §3.6).
#include <random>

#include "test_handshake_support.hpp"

using namespace sdmp;
using namespace sdmp::test;

namespace {

// RFC 7748 §6.1 / curve25519 low-order points (the all-zero value, order 1, order 8, p - 1).
const std::array<crypto::DhPublic, 4> k_low_order_points = {
    crypto::DhPublic{},
    crypto::DhPublic{1},
    crypto::DhPublic{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
                     0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
                     0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    crypto::DhPublic{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

constexpr std::array<std::uint8_t, 3> k_flip_bits = {0x01, 0x80, 0xff};

HandshakeError responder_verdict(const World& w, ByteView hello) {
    auto responder = w.bob_responder();
    const auto a = respond(responder, hello);
    const auto* f = std::get_if<action::Failed>(&a);
    REQUIRE(f != nullptr);
    CHECK(f->reply == nope_bytes());
    return f->reason;
}

// The deterministic initiator (fixed ephemeral 0x31, fixed clock) and its matching responder
// (ephemeral 0x32): every instance produces the same bytes, so one reply can be replayed into
// fresh initiators.
HandshakeState fixed_initiator(const World& w, const crypto::Identity& target) {
    return HandshakeState::initiator(w.fixed_config(w.alice, w.alice_trust, 0x31),
                                     target.fingerprint());
}

Bytes fixed_reply(const World& w, ByteView hello) {
    auto responder = HandshakeState::responder(w.fixed_config(w.bob, w.bob_trust, 0x32));
    return expect<action::Send>(respond(responder, hello)).bytes;
}

// Feeds a fresh fixed initiator (that already sent its message) the given reply.
HandshakeAction initiator_verdict(const World& w, ByteView reply, const crypto::Identity& target) {
    auto initiator = fixed_initiator(w, target);
    expect<action::Send>(initiator.next());
    initiator.feed(reply);
    return initiator.next();
}

}  // namespace

TEST_CASE("responder refuses bad prefixes with nope", "[handshake][reject]") {
    World w;
    auto initiator = w.alice_to(w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    struct Case {
        std::size_t offset;
        std::uint8_t value;
        HandshakeError reason;
    };
    const auto c = GENERATE(
        Case{0, 'X', HandshakeError::bad_magic}, Case{3, 'Q', HandshakeError::bad_magic},
        Case{4, 0x02, HandshakeError::unsupported_version},
        Case{4, 0x00, HandshakeError::unsupported_version},
        Case{5, 0x03, HandshakeError::unsupported_suite},
        Case{5, 0x00, HandshakeError::unsupported_suite}, Case{6, 0x02, HandshakeError::bad_role},
        Case{6, 0x00, HandshakeError::bad_role}, Case{7, 0x01, HandshakeError::malformed},
        Case{7, 0x80, HandshakeError::malformed});
    Bytes bad = hello;
    bad[c.offset] = c.value;
    auto responder = w.bob_responder();
    CHECK(std::holds_alternative<action::Need>(responder.next()));
    responder.feed(ByteView(bad).first(8));  // decided on the prefix alone
    expect_refusal(responder, c.reason);
}

TEST_CASE("responder refuses a responder message (wrong role)", "[handshake][reject]") {
    World w;
    auto initiator = w.alice_to(w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    const Bytes reply = fixed_reply(w, hello);
    CHECK(responder_verdict(w, reply) == HandshakeError::bad_role);
}

TEST_CASE("responder validation failures", "[handshake][reject]") {
    World w;
    auto c = hello_craft(w.alice, w.bob);
    SECTION("the crafted message itself is accepted") {
        auto responder = w.bob_responder();
        const auto a = respond(responder, craft(c));
        CHECK(std::holds_alternative<action::Send>(a));
    }
    SECTION("sealed to another node's key") {
        c.seal_to = &w.carol.public_identity();
        CHECK(responder_verdict(w, craft(c)) == HandshakeError::seal_failed);
    }
    SECTION("a real message meant for carol") {
        auto initiator = w.alice_to(w.carol);
        const Bytes hello = expect<action::Send>(initiator.next()).bytes;
        CHECK(responder_verdict(w, hello) == HandshakeError::seal_failed);
    }
    SECTION("signer not in the trust store") {
        c.signer = &w.mallory;
        CHECK(responder_verdict(w, craft(c)) == HandshakeError::unknown_peer);
    }
    SECTION("fingerprint field that is no key at all (malformed body)") {
        crypto::Digest junk{};
        junk.fill(0xa5);
        c.body_fingerprint = junk;
        CHECK(responder_verdict(w, craft(c)) == HandshakeError::unknown_peer);
    }
    SECTION("signature by a different trusted key") {
        c.body_fingerprint = w.carol.fingerprint().bytes();  // claims carol, signed by alice
        CHECK(responder_verdict(w, craft(c)) == HandshakeError::bad_signature);
    }
    SECTION("corrupted signature") {
        c.corrupt_signature = true;
        CHECK(responder_verdict(w, craft(c)) == HandshakeError::bad_signature);
    }
    SECTION("signature over another responder's fingerprint") {
        c.signed_receiver_fp = w.carol.fingerprint().bytes();
        CHECK(responder_verdict(w, craft(c)) == HandshakeError::bad_signature);
    }
    SECTION("signed with the responder label") {
        c.initiator_hash = crypto::Digest{};
        CHECK(responder_verdict(w, craft(c)) == HandshakeError::bad_signature);
    }
    SECTION("timestamp too old / too new") {
        c.timestamp =
            GENERATE(k_now - 120'001, k_now + 120'001, std::uint64_t{0}, ~std::uint64_t{0});
        CHECK(responder_verdict(w, craft(c)) == HandshakeError::clock_skew);
    }
    SECTION("low-order ephemeral") {
        for (const auto& point : k_low_order_points) {
            c.raw_ephemeral = point;  // and seal with es = 0, as an attacker would
            CHECK(responder_verdict(w, craft(c)) == HandshakeError::low_order_point);
        }
    }
}

TEST_CASE("initiator validation failures", "[handshake][reject]") {
    World w;
    auto initiator = fixed_initiator(w, w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    const Bytes good_reply = fixed_reply(w, hello);
    const auto hello_hash = provider().sha256(hello);

    Craft c;
    c.role = 2;
    c.signer = &w.bob;
    c.signed_receiver_fp = w.alice.fingerprint().bytes();
    c.seal_to = &w.alice.public_identity();
    c.initiator_hash = hello_hash;
    c.ephemeral_private = fixed_secret(0x32);

    SECTION("the fixed reply and the crafted reply are identical and accepted") {
        CHECK(craft(c) == good_reply);
        CHECK(std::holds_alternative<action::Done>(initiator_verdict(w, good_reply, w.bob)));
    }
    SECTION("wrong intended responder: carol is trusted, but alice asked for bob") {
        c.signer = &w.carol;
        auto f = expect<action::Failed>(initiator_verdict(w, craft(c), w.bob));
        CHECK(f.reason == HandshakeError::wrong_responder);
        CHECK(f.reply == nope_bytes());
    }
    SECTION("wrong intended responder: bob answers a message meant for carol") {
        // Same ephemeral and clock, so bob's genuine reply opens at an initiator targeting carol.
        auto f = expect<action::Failed>(initiator_verdict(w, good_reply, w.carol));
        CHECK(f.reason == HandshakeError::wrong_responder);
        CHECK(f.reply == nope_bytes());
    }
    SECTION("reply bound to another initiator message") {
        c.initiator_hash = crypto::Digest{};
        auto f = expect<action::Failed>(initiator_verdict(w, craft(c), w.bob));
        CHECK(f.reason == HandshakeError::bad_signature);
    }
    SECTION("unknown responder") {
        c.signer = &w.mallory;
        auto f = expect<action::Failed>(initiator_verdict(w, craft(c), w.bob));
        CHECK(f.reason == HandshakeError::unknown_peer);
    }
    SECTION("sealed to someone else") {
        c.seal_to = &w.carol.public_identity();
        auto f = expect<action::Failed>(initiator_verdict(w, craft(c), w.bob));
        CHECK(f.reason == HandshakeError::seal_failed);
    }
    SECTION("other suite than offered") {
        c.suite = 2;
        auto f = expect<action::Failed>(initiator_verdict(w, craft(c), w.bob));
        CHECK(f.reason == HandshakeError::unsupported_suite);
        CHECK(f.reply == nope_bytes());
    }
    SECTION("initiator role in the reply") {
        c.role = 1;
        auto f = expect<action::Failed>(initiator_verdict(w, craft(c), w.bob));
        CHECK(f.reason == HandshakeError::bad_role);
    }
    SECTION("low-order ephemeral") {
        for (const auto& point : k_low_order_points) {
            c.raw_ephemeral = point;
            auto f = expect<action::Failed>(initiator_verdict(w, craft(c), w.bob));
            CHECK(f.reason == HandshakeError::low_order_point);
            CHECK(f.reply == nope_bytes());
        }
    }
    SECTION("skewed timestamp") {
        c.timestamp = k_now + 500'000;
        auto f = expect<action::Failed>(initiator_verdict(w, craft(c), w.bob));
        CHECK(f.reason == HandshakeError::clock_skew);
    }
}

TEST_CASE("flipping any byte of the initiator message is refused", "[handshake][reject]") {
    World w;
    auto initiator = w.alice_to(w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    std::size_t refused = 0;
    for (std::size_t i = 0; i < hello.size(); ++i) {
        for (const std::uint8_t bits : k_flip_bits) {
            Bytes bad = hello;
            bad[i] = static_cast<std::uint8_t>(bad[i] ^ bits);
            auto responder = w.bob_responder();
            const auto a = respond(responder, bad);
            const auto* f = std::get_if<action::Failed>(&a);
            INFO("byte " << i << " xor " << int{bits});
            REQUIRE(f != nullptr);
            CHECK(f->reply == nope_bytes());
            CHECK(f->reason != HandshakeError::none);
            ++refused;
        }
    }
    CHECK(refused == 3 * 160);
}

TEST_CASE("flipping any byte of the responder message is refused", "[handshake][reject]") {
    World w;
    auto initiator = fixed_initiator(w, w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    const Bytes reply = fixed_reply(w, hello);
    REQUIRE(std::holds_alternative<action::Done>(initiator_verdict(w, reply, w.bob)));
    for (std::size_t i = 0; i < reply.size(); ++i) {
        for (const std::uint8_t bits : k_flip_bits) {
            Bytes bad = reply;
            bad[i] = static_cast<std::uint8_t>(bad[i] ^ bits);
            const auto a = initiator_verdict(w, bad, w.bob);
            const auto* f = std::get_if<action::Failed>(&a);
            INFO("byte " << i << " xor " << int{bits});
            REQUIRE(f != nullptr);
            CHECK(f->reply == nope_bytes());
        }
    }
}

TEST_CASE("end of stream before a whole message is refused with nope", "[handshake][reject]") {
    // protocol.md §3.6: a connection message cut short by the peer's end of stream is a
    // validation failure like any other; the peer may still read after its half-close.
    World w;
    auto initiator = w.alice_to(w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    // Nothing; part of the prefix; the whole prefix and part of the body.
    const std::size_t cut = GENERATE(0, 1, 7, 8, 40, 100, 159);
    INFO("first " << cut << " bytes, then end of stream");

    SECTION("at the responder") {
        auto responder = w.bob_responder();
        CHECK(std::holds_alternative<action::Need>(responder.next()));
        responder.feed(ByteView(hello).first(cut));
        responder.feed_eof();
        expect_refusal(responder, HandshakeError::truncated);
        CHECK(expect<action::Failed>(responder.next()).reason == HandshakeError::internal);
    }
    SECTION("at the responder, end of stream before it asked for anything") {
        auto responder = w.bob_responder();
        responder.feed(ByteView(hello).first(cut));
        responder.feed_eof();
        expect_refusal(responder, HandshakeError::truncated);
    }
    SECTION("at the initiator") {
        const Bytes reply = fixed_reply(w, hello);  // any well-formed prefix will do
        initiator.feed(ByteView(reply).first(cut));
        initiator.feed_eof();
        expect_refusal(initiator, HandshakeError::truncated);
        CHECK(expect<action::Failed>(initiator.next()).reason == HandshakeError::internal);
    }
    SECTION("at the initiator, byte by byte") {
        const Bytes reply = fixed_reply(w, hello);
        for (std::size_t i = 0; i < cut; ++i) {
            CHECK(std::holds_alternative<action::Need>(initiator.next()));
            initiator.feed(ByteView(reply).subspan(i, 1));
        }
        CHECK(std::holds_alternative<action::Need>(initiator.next()));
        initiator.feed_eof();
        expect_refusal(initiator, HandshakeError::truncated);
    }
}

TEST_CASE("a whole message then end of stream is validated, not truncated", "[handshake]") {
    // The initiator may half-close right after its message; the responder still answers it.
    World w;
    auto initiator = w.alice_to(w.bob);
    const Bytes hello = expect<action::Send>(initiator.next()).bytes;
    auto responder = w.bob_responder();
    CHECK(std::holds_alternative<action::Need>(responder.next()));
    responder.feed(hello);
    responder.feed_eof();
    const Bytes reply = expect<action::Send>(responder.next()).bytes;
    CHECK(expect<action::Done>(responder.next()).result.leftover.empty());
    initiator.feed(reply);
    initiator.feed_eof();
    CHECK(expect<action::Done>(initiator.next()).result.peer_fingerprint == w.bob.fingerprint());
}

TEST_CASE("initiator and nope", "[handshake][reject]") {
    World w;
    auto initiator = w.alice_to(w.bob);
    expect<action::Send>(initiator.next());
    const Bytes n = nope_bytes();

    SECTION("nope then end of stream is a refusal by the peer") {
        initiator.feed(n);
        // Four bytes are not enough to decide: more might follow.
        CHECK(expect<action::Need>(initiator.next()).count == 4);
        initiator.feed_eof();
        const auto f = expect<action::Failed>(initiator.next());
        CHECK(f.reason == HandshakeError::refused_by_peer);
        CHECK(f.reply.empty());
    }
    SECTION("nope byte by byte") {
        for (std::size_t i = 0; i < n.size(); ++i) {
            CHECK(std::holds_alternative<action::Need>(initiator.next()));
            initiator.feed(ByteView(n).subspan(i, 1));
        }
        initiator.feed_eof();
        CHECK(expect<action::Failed>(initiator.next()).reason == HandshakeError::refused_by_peer);
    }
    SECTION("nope followed by more bytes") {
        Bytes more = n;
        more.push_back(GENERATE(std::uint8_t{0}, std::uint8_t{'\n'}, std::uint8_t{'S'}));
        initiator.feed(more);
        expect_refusal(initiator, HandshakeError::unexpected_data);
    }
    SECTION("nope, then more bytes in a later read") {
        initiator.feed(n);
        CHECK(std::holds_alternative<action::Need>(initiator.next()));
        initiator.feed(Bytes{'!', '!', '!', '!'});
        expect_refusal(initiator, HandshakeError::unexpected_data);
    }
    SECTION("nope, end of stream, then junk") {
        initiator.feed(n);
        initiator.feed_eof();
        initiator.feed(Bytes{'x'});
        expect_refusal(initiator, HandshakeError::unexpected_data);
    }
    SECTION("a strict prefix of nope then end of stream is a truncation, answered nope") {
        // protocol.md §3.6: only exactly `nope` then end of stream is the peer's refusal.
        const std::size_t cut = GENERATE(0, 1, 2, 3);
        INFO("first " << cut << " bytes of nope");
        initiator.feed(ByteView(n).first(cut));
        initiator.feed_eof();
        expect_refusal(initiator, HandshakeError::truncated);
    }
    SECTION("bytes that are not nope and not SDMP") {
        initiator.feed(Bytes{'n', 'o', 'p', 'x', 1, 1, 2, 0});
        expect_refusal(initiator, HandshakeError::bad_magic);
    }
    SECTION("nope at a responder is just bad magic") {
        auto responder = w.bob_responder();
        CHECK(std::holds_alternative<action::Need>(responder.next()));
        responder.feed(Bytes{'n', 'o', 'p', 'e', 0, 0, 0, 0});
        expect_refusal(responder, HandshakeError::bad_magic);
    }
}

TEST_CASE("abort answers nope", "[handshake][reject]") {
    World w;
    SECTION("initiator before sending") {
        auto initiator = w.alice_to(w.bob);
        initiator.abort(HandshakeError::timeout);
        expect_refusal(initiator, HandshakeError::timeout);
        CHECK(expect<action::Failed>(initiator.next()).reason == HandshakeError::internal);
    }
    SECTION("initiator waiting for the reply") {
        auto initiator = w.alice_to(w.bob);
        expect<action::Send>(initiator.next());
        initiator.feed(Bytes{'S', 'D'});
        initiator.abort(HandshakeError::timeout);
        expect_refusal(initiator, HandshakeError::timeout);
    }
    SECTION("responder waiting for the hello") {
        auto responder = w.bob_responder();
        CHECK(std::holds_alternative<action::Need>(responder.next()));
        responder.abort(HandshakeError::timeout);
        expect_refusal(responder, HandshakeError::timeout);
    }
    SECTION("abort after Done changes nothing") {
        auto initiator = w.alice_to(w.bob);
        auto responder = w.bob_responder();
        run(initiator, responder);
        initiator.abort(HandshakeError::timeout);
        CHECK(expect<action::Failed>(initiator.next()).reason == HandshakeError::internal);
    }
}

TEST_CASE("random byte streams never crash the handshake", "[handshake][property]") {
    World w;
    std::mt19937_64 rng(20240601);
    auto initiator_proto = fixed_initiator(w, w.bob);
    const Bytes hello = expect<action::Send>(initiator_proto.next()).bytes;
    const Bytes good_prefix(hello.begin(), hello.begin() + 8);
    const Bytes reply = fixed_reply(w, hello);
    const Bytes reply_prefix(reply.begin(), reply.begin() + 8);

    auto random_stream = [&](const Bytes& prefix) {
        Bytes s;
        const std::size_t len = rng() % 400;
        // Half the streams start with a valid prefix to reach the seal and signature checks.
        if (rng() % 2 == 0)
            s = prefix;
        while (s.size() < len)
            s.push_back(static_cast<std::uint8_t>(rng()));
        return s;
    };
    auto drive = [&](HandshakeState& hs, const Bytes& stream) {
        std::size_t pos = 0;
        for (int steps = 0; steps < 1000; ++steps) {
            auto a = hs.next();
            if (std::holds_alternative<action::Failed>(a)) {
                const auto& f = std::get<action::Failed>(a);
                CHECK((f.reply.empty() || f.reply == nope_bytes()));
                return 1;
            }
            REQUIRE_FALSE(std::holds_alternative<action::Done>(a));
            if (std::holds_alternative<action::Send>(a))
                return 2;  // only on a valid hello
            if (pos >= stream.size())
                return 0;  // ended in Need
            const std::size_t chunk = std::min<std::size_t>(1 + rng() % 64, stream.size() - pos);
            hs.feed(ByteView(stream).subspan(pos, chunk));
            pos += chunk;
        }
        return 3;
    };
    int failed = 0;
    for (int i = 0; i < 400; ++i) {
        auto responder = w.bob_responder();
        const int r1 = drive(responder, random_stream(good_prefix));
        CHECK((r1 == 0 || r1 == 1));
        auto initiator = fixed_initiator(w, w.bob);
        expect<action::Send>(initiator.next());
        const int r2 = drive(initiator, random_stream(reply_prefix));
        CHECK((r2 == 0 || r2 == 1));
        failed += (r1 == 1) + (r2 == 1);
    }
    CHECK(failed > 0);
}
