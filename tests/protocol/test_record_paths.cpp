// The record layer's allocation- and copy-saving entry points (protocol.md §5): seal_into with
// gathered parts and a level-0 fallback, compressed_size, next_view, encode_message_head. Each
// must produce exactly what the plain path produces, or a record the plain opener accepts.
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/error.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"

using namespace sdmp;
using namespace sdmp::protocol;

namespace {

crypto::SecretBytes key_of(std::uint8_t seed) {
    crypto::SecretBytes key(32);
    for (std::size_t i = 0; i < key.size(); ++i)
        key.data()[i] = static_cast<std::uint8_t>(seed * 3 + i);
    return key;
}

RecordSealer make_sealer(std::uint8_t seed = 1) {
    return RecordSealer(crypto::default_provider(), crypto::AeadAlgorithm::aes_256_gcm,
                        key_of(seed));
}

RecordOpener make_opener(std::uint8_t seed = 1) {
    return RecordOpener(crypto::default_provider(), crypto::AeadAlgorithm::aes_256_gcm,
                        key_of(seed));
}

Bytes noise(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    Bytes b(n);
    for (auto& x : b)
        x = static_cast<std::uint8_t>(rng());
    return b;
}

Bytes text(std::size_t n) {
    static const std::string words = "alpha beta gamma delta record payload session ";
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = static_cast<std::uint8_t>(words[(i * 7 + i / 13) % words.size()]);
    return b;
}

// Seals `parts` with seal_into into a fresh buffer; returns the frame.
Bytes seal_parts(RecordSealer& sealer, std::span<const ByteView> parts, int level,
                 std::size_t fallback_above = 0, int* level_used = nullptr) {
    std::size_t total = 0;
    for (const ByteView p : parts)
        total += p.size();
    Bytes out(sealer.sealed_size_bound(total, level));
    std::size_t written = 0;
    REQUIRE_FALSE(sealer.seal_into(parts, level, fallback_above, out, written, level_used));
    REQUIRE(written > 0);
    REQUIRE(written <= out.size());
    out.resize(written);
    return out;
}

Bytes open_one(RecordOpener& opener, const Bytes& frame) {
    opener.feed(frame);
    Bytes payload;
    REQUIRE(opener.next(payload).opened());
    return payload;
}

}  // namespace

TEST_CASE("gathered level-0 records are byte-identical to contiguous ones", "[record][gather]") {
    // Sizes around the 65535-byte stored-block limit, split at awkward places (and with empty
    // parts), so block boundaries fall inside and between parts.
    const std::size_t size = GENERATE(1u, 300u, 65535u, 65536u, 65537u, 200001u);
    const std::size_t per_mille = GENERATE(0u, 10u, 500u, 999u);
    CAPTURE(size, per_mille);
    const Bytes payload = noise(size, static_cast<std::uint32_t>(size));
    const std::size_t at = size * per_mille / 1000;
    const ByteView whole(payload);
    const ByteView parts[4] = {whole.subspan(0, at), ByteView{}, whole.subspan(at), ByteView{}};

    RecordSealer plain = make_sealer();
    RecordSealer gathered = make_sealer();
    for (int round = 0; round < 2; ++round) {  // the nonce counters advance alike
        Bytes expected;
        REQUIRE_FALSE(plain.seal(payload, 0, expected));
        const Bytes frame = seal_parts(gathered, parts, 0);
        CHECK(frame == expected);
    }
    CHECK(gathered.records_sealed() == 2);
}

TEST_CASE("gathered records at a compressing level open to the concatenation", "[record][gather]") {
    const Bytes head = text(1000);
    const Bytes body = text(150000);
    const ByteView parts[2] = {head, body};
    RecordSealer sealer = make_sealer();
    int used = -1;
    const Bytes frame = seal_parts(sealer, parts, 6, 0, &used);
    CHECK(used == 6);
    CHECK(frame.size() < (head.size() + body.size()) / 4);
    RecordOpener opener = make_opener();
    Bytes expected = head;
    expected.insert(expected.end(), body.begin(), body.end());
    CHECK(open_one(opener, frame) == expected);
}

TEST_CASE("seal_into falls back to stored blocks when compression does not pay",
          "[record][compression]") {
    RecordSealer sealer = make_sealer();
    RecordOpener opener = make_opener();

    SECTION("incompressible payload: level 0, one nonce, same bytes as a level-0 seal") {
        const Bytes payload = noise(20000, 5);
        int used = -1;
        const ByteView part(payload);
        const Bytes frame = seal_parts(sealer, std::span<const ByteView>(&part, 1), 1,
                                       payload.size() - payload.size() / 10, &used);
        CHECK(used == 0);
        CHECK(sealer.records_sealed() == 1);
        RecordSealer reference = make_sealer();
        Bytes expected;
        REQUIRE_FALSE(reference.seal(payload, 0, expected));
        CHECK(frame == expected);
        CHECK(open_one(opener, frame) == payload);
    }
    SECTION("compressible payload: the level asked for") {
        const Bytes payload = text(20000);
        int used = -1;
        const ByteView part(payload);
        const Bytes frame = seal_parts(sealer, std::span<const ByteView>(&part, 1), 1,
                                       payload.size() - payload.size() / 10, &used);
        CHECK(used == 1);
        CHECK(frame.size() < payload.size() / 2);
        CHECK(open_one(opener, frame) == payload);
    }
    SECTION("gathered incompressible parts fall back too") {
        const Bytes a = noise(5000, 1);
        const Bytes b = noise(70000, 2);
        const ByteView parts[2] = {a, b};
        int used = -1;
        const Bytes frame = seal_parts(sealer, parts, 1, 75000 - 7500, &used);
        CHECK(used == 0);
        Bytes expected = a;
        expected.insert(expected.end(), b.begin(), b.end());
        CHECK(open_one(opener, frame) == expected);
    }
}

TEST_CASE("seal_into refuses space below the bound and empty payloads", "[record]") {
    RecordSealer sealer = make_sealer();
    const Bytes payload = noise(1000, 9);
    Bytes out(sealer.sealed_size_bound(payload.size(), 0) - 1);
    std::size_t written = 7;
    CHECK_THROWS_AS(sealer.seal_into(payload, 0, 0, out, written), std::invalid_argument);
    Bytes enough(sealer.sealed_size_bound(1, 0));
    CHECK(sealer.seal_into(ByteView{}, 0, 0, enough, written) == errc::limit_exceeded);
    CHECK(written == 0);
    CHECK(sealer.records_sealed() == 0);
}

TEST_CASE("compressed_size estimates without sealing", "[record][compression]") {
    RecordSealer sealer = make_sealer();
    const Bytes compressible = text(4096);
    const std::size_t n = sealer.compressed_size(compressible, 1, 4096 - 409);
    CHECK(n > 0);
    CHECK(n < 4096 / 2);
    CHECK(sealer.compressed_size(noise(4096, 3), 1, 4096 - 409) == 0);
    CHECK(sealer.records_sealed() == 0);
}

TEST_CASE("next_view yields what next yields and reports the same errors", "[record][view]") {
    RecordSealer sealer = make_sealer();
    Bytes wire;
    std::vector<Bytes> payloads;
    for (std::size_t i = 0; i < 6; ++i) {
        payloads.push_back(i % 2 == 0 ? text(100 + i * 40000)
                                      : noise(1 + i * 30000, static_cast<std::uint32_t>(i)));
        REQUIRE_FALSE(sealer.seal(payloads.back(), i % 3 == 0 ? 0 : 6, wire));
    }
    RecordOpener by_copy = make_opener();
    RecordOpener by_view = make_opener();
    by_copy.feed(wire);
    by_view.feed(wire);
    for (const Bytes& expected : payloads) {
        Bytes copied;
        ByteView viewed;
        REQUIRE(by_copy.next(copied).opened());
        REQUIRE(by_view.next_view(viewed).opened());
        CHECK(copied == expected);
        CHECK(Bytes(viewed.begin(), viewed.end()) == expected);
    }
    ByteView viewed{wire.data(), 1};
    CHECK(by_view.next_view(viewed).need_more());
    CHECK(viewed.empty());

    // A tampered record: the same fatal error, and nothing to view.
    Bytes bad;
    REQUIRE_FALSE(sealer.seal(text(500), 0, bad));
    bad[bad.size() / 2] ^= 0x40;
    by_view.feed(bad);
    CHECK(by_view.next_view(viewed).error == errc::authentication_failed);
    CHECK(viewed.empty());
    CHECK(by_view.next_view(viewed).error == errc::authentication_failed);
}

TEST_CASE("encode_message_head is encode_message without the body", "[message]") {
    const Bytes body = noise(70000, 4);
    const std::vector<Message> messages = {
        Request{7, "echo", 2500, {{"k", "v"}}, body},
        Response{7, Status::ok, {}, body},
        Notification{"log", {}, body},
        Request{8, "empty", 0, {}, {}},
        Cancel{9},
        Ping{42},
        GoAway{3, "bye"},
    };
    for (const Message& m : messages) {
        CAPTURE(m.index());
        Bytes full;
        REQUIRE_FALSE(encode_message(m, full));
        Bytes head;
        REQUIRE_FALSE(encode_message_head(m, head));
        const std::size_t body_size = std::visit(
            [](const auto& x) -> std::size_t {
                if constexpr (requires { x.body; })
                    return x.body.size();
                else
                    return 0;
            },
            m);
        REQUIRE(head.size() + body_size == full.size());
        CHECK(std::equal(head.begin(), head.end(), full.begin()));
        CHECK(std::equal(full.begin() + static_cast<std::ptrdiff_t>(head.size()), full.end(),
                         std::visit(
                             [&](const auto& x) -> const std::uint8_t* {
                                 if constexpr (requires { x.body; })
                                     return x.body.data();
                                 else
                                     return nullptr;
                             },
                             m)));
        CHECK(encoded_size(m) == full.size());
    }
    // Same validation: a request without a method is refused either way, nothing appended.
    Bytes out;
    CHECK(encode_message_head(Request{1, "", 0, {}, body}, out) == errc::malformed);
    CHECK(out.empty());
    MessageLimits small;
    small.max_message_size = 1000;
    CHECK(encode_message_head(Request{1, "m", 0, {}, body}, out, small) == errc::limit_exceeded);
    CHECK(out.empty());
}
