// Record layer against hand-crafted hostile records (protocol.md §5.3, §5.6).
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/error.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"

using namespace sdmp;
using namespace sdmp::protocol;
using crypto::AeadAlgorithm;

namespace {

crypto::SecretBytes adversarial_key() {
    crypto::SecretBytes key(32);
    for (std::size_t i = 0; i < key.size(); ++i)
        key.data()[i] = static_cast<std::uint8_t>(0xa0 ^ i);
    return key;
}

// Seals `plaintext` (already padded by the caller, or deliberately not) as record number
// `counter` with the provider's raw AEAD, exactly as protocol.md §5 describes.
Bytes seal_raw(const Bytes& plaintext, std::uint64_t counter = 0,
               AeadAlgorithm aead = AeadAlgorithm::aes_256_gcm) {
    auto& provider = crypto::default_provider();
    const auto n = static_cast<std::uint32_t>(plaintext.size() + 16);
    Bytes frame = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                   static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
    crypto::Nonce nonce{};
    for (std::size_t i = 0; i < 8; ++i)
        nonce[11 - i] = static_cast<std::uint8_t>(counter >> (8 * i));
    Bytes body = plaintext;
    crypto::Tag tag{};
    provider.make_sealer(aead, adversarial_key().view())
        ->seal(nonce, ByteView{frame.data(), 4}, body, tag);
    frame.insert(frame.end(), body.begin(), body.end());
    frame.insert(frame.end(), tag.begin(), tag.end());
    return frame;
}

// BFINAL=1, BTYPE=00 (stored) block holding `data`, then zeros up to `padded`.
Bytes stored_final(std::string_view data, std::size_t padded = 256) {
    Bytes p = {0x01, static_cast<std::uint8_t>(data.size()),
               static_cast<std::uint8_t>(data.size() >> 8), static_cast<std::uint8_t>(~data.size()),
               static_cast<std::uint8_t>(~data.size() >> 8)};
    p.insert(p.end(), data.begin(), data.end());
    p.resize(padded, 0);
    return p;
}

OpenResult open_one(const Bytes& frame, Bytes& payload, RecordLimits limits = {}) {
    RecordOpener opener(crypto::default_provider(), AeadAlgorithm::aes_256_gcm, adversarial_key(),
                        limits);
    opener.feed(frame);
    return opener.next(payload);
}

}  // namespace

TEST_CASE("a hand-crafted valid record opens (control)", "[record][adversarial]") {
    Bytes payload;
    REQUIRE(open_one(seal_raw(stored_final("hello")), payload).opened());
    REQUIRE(as_string_view(payload) == "hello");
    // The DEFLATE stream may end exactly at the end of the plaintext (no padding bytes).
    REQUIRE(open_one(seal_raw(stored_final(std::string(251, 'z'))), payload).opened());
    REQUIRE(payload == Bytes(251, 'z'));
    // Several stored blocks, only the last one final.
    Bytes two = {0x00, 0x02, 0x00, 0xfd, 0xff, 'a', 'b', 0x01, 0x01, 0x00, 0xfe, 0xff, 'c'};
    two.resize(256, 0);
    REQUIRE(open_one(seal_raw(two), payload).opened());
    REQUIRE(as_string_view(payload) == "abc");
}

TEST_CASE("non-zero padding is rejected", "[record][adversarial]") {
    const std::size_t positions[] = {10, 100, 255, 256, 511};
    for (std::size_t pos : positions) {
        CAPTURE(pos);
        Bytes plain = stored_final("hello", pos < 256 ? 256 : 512);
        plain[pos] = 0x01;
        Bytes payload;
        REQUIRE(open_one(seal_raw(plain), payload).error == errc::bad_padding);
    }
    // 0x80 right after the stream, the byte most likely to be mistaken for stream bits.
    Bytes plain = stored_final("hello");
    plain[10] = 0x80;
    Bytes payload;
    REQUIRE(open_one(seal_raw(plain), payload).error == errc::bad_padding);
}

TEST_CASE("invalid DEFLATE streams are rejected", "[record][adversarial]") {
    Bytes payload;
    SECTION("all zeros: a non-final stored block with LEN != ~NLEN") {
        REQUIRE(open_one(seal_raw(Bytes(256, 0)), payload).error == errc::decompression_failed);
    }
    SECTION("reserved block type 3") {
        Bytes plain(256, 0);
        plain[0] = 0x07;
        REQUIRE(open_one(seal_raw(plain), payload).error == errc::decompression_failed);
    }
    SECTION("stream without a final block runs off the end") {
        Bytes plain = {0x00, 0xfb, 0x00, 0x04, 0xff};  // stored, not final, 251 bytes
        plain.resize(256, 'q');
        REQUIRE(open_one(seal_raw(plain), payload).error == errc::decompression_failed);
    }
    SECTION("stored length running past the plaintext") {
        Bytes plain = {0x01, 0xff, 0x00, 0x00, 0xff};  // 255 bytes claimed, 251 present
        plain.resize(256, 'q');
        REQUIRE(open_one(seal_raw(plain), payload).error == errc::decompression_failed);
    }
    SECTION("empty payload") {
        REQUIRE(open_one(seal_raw(stored_final("")), payload).error == errc::malformed);
    }
    SECTION("errors are sticky") {
        RecordOpener opener(crypto::default_provider(), AeadAlgorithm::aes_256_gcm,
                            adversarial_key());
        opener.feed(seal_raw(Bytes(256, 0)));
        opener.feed(seal_raw(stored_final("fine"), 1));
        REQUIRE(opener.next(payload).error == errc::decompression_failed);
        REQUIRE(opener.next(payload).error == errc::decompression_failed);
        REQUIRE(opener.bytes_wanted() >= 1);
    }
}

TEST_CASE("decompression bomb hits max_payload_size without over-allocating",
          "[record][adversarial]") {
    auto& provider = crypto::default_provider();
    // A sender with relaxed limits can produce what a default receiver must refuse.
    RecordLimits loose;
    loose.max_payload_size = 32u << 20;
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, adversarial_key(), loose);
    const Bytes zeros(20u << 20, 0);
    Bytes frame;
    REQUIRE_FALSE(sealer.seal(zeros, 12, frame));
    REQUIRE(frame.size() < 64 * 1024);

    const RecordLimits defaults;
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, adversarial_key());
    opener.feed(frame);
    Bytes payload;
    REQUIRE(opener.next(payload).error == errc::limit_exceeded);
    REQUIRE(payload.capacity() <= defaults.max_payload_size);
    REQUIRE(payload.empty());
    REQUIRE(opener.next(payload).error == errc::limit_exceeded);
}

TEST_CASE("max_payload_size is an exact boundary", "[record][adversarial]") {
    auto& provider = crypto::default_provider();
    RecordLimits loose;
    loose.max_payload_size = 4u << 20;
    RecordLimits tight;
    tight.max_payload_size = 1u << 20;
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, adversarial_key(), loose);
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, adversarial_key(), tight);
    Bytes frames;
    REQUIRE_FALSE(sealer.seal(Bytes(tight.max_payload_size, 'a'), 9, frames));
    REQUIRE_FALSE(sealer.seal(Bytes(tight.max_payload_size + 1, 'a'), 9, frames));
    opener.feed(frames);
    Bytes payload;
    REQUIRE(opener.next(payload).opened());
    REQUIRE(payload.size() == tight.max_payload_size);
    Bytes fresh;
    REQUIRE(opener.next(fresh).error == errc::limit_exceeded);
    REQUIRE(fresh.capacity() <= tight.max_payload_size);
}

TEST_CASE("a small highly compressed record inflates without a huge first allocation", "[record]") {
    auto& provider = crypto::default_provider();
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, adversarial_key());
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, adversarial_key());
    Bytes frames;
    REQUIRE_FALSE(sealer.seal(as_bytes("tiny"), 1, frames));
    REQUIRE_FALSE(sealer.seal(Bytes(3u << 20, 'r'), 1, frames));  // ratio far above 4
    REQUIRE_FALSE(sealer.seal(as_bytes("tiny again"), 1, frames));
    opener.feed(frames);
    Bytes payload;
    REQUIRE(opener.next(payload).opened());
    REQUIRE(as_string_view(payload) == "tiny");
    REQUIRE(payload.capacity() <= 64 * 1024);  // bounded by the record size, not 16 MiB
    REQUIRE(opener.next(payload).opened());
    REQUIRE(payload == Bytes(3u << 20, 'r'));
    REQUIRE(opener.next(payload).opened());
    REQUIRE(as_string_view(payload) == "tiny again");
}

TEST_CASE("random bytes into RecordOpener never succeed or crash", "[record][property]") {
    auto& provider = crypto::default_provider();
    std::mt19937 rng(20240601);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<std::size_t> length(0, 1200);
    std::uniform_int_distribution<int> mode(0, 3);
    Bytes payload;
    int authentication_failures = 0;
    int limit_failures = 0;
    for (int iteration = 0; iteration < 4000; ++iteration) {
        Bytes input(length(rng));
        for (auto& b : input)
            b = static_cast<std::uint8_t>(byte(rng));
        // Half of the inputs get a plausible length prefix so the AEAD path is exercised.
        if (mode(rng) < 2 && input.size() >= 4) {
            const std::uint32_t blocks = 1 + static_cast<std::uint32_t>(input.size() % 4);
            const std::uint32_t n = 256 * blocks + 16;
            input[0] = 0;
            input[1] = 0;
            input[2] = static_cast<std::uint8_t>(n >> 8);
            input[3] = static_cast<std::uint8_t>(n);
        }
        RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, adversarial_key());
        // Split the input at a random point to vary the feeding pattern.
        const std::size_t split =
            input.empty() ? 0 : static_cast<std::size_t>(byte(rng)) % input.size();
        opener.feed(ByteView(input).first(split));
        REQUIRE_FALSE(opener.next(payload).opened());  // random bytes never authenticate
        opener.feed(ByteView(input).subspan(split));
        const OpenResult r = opener.next(payload);
        REQUIRE_FALSE(r.opened());
        const std::error_code ec = r.error;
        REQUIRE((r.need_more() || ec == errc::limit_exceeded || ec == errc::authentication_failed));
        authentication_failures += ec == errc::authentication_failed;
        limit_failures += ec == errc::limit_exceeded;
        REQUIRE(opener.bytes_wanted() >= 1);
    }
    REQUIRE(authentication_failures > 100);
    REQUIRE(limit_failures > 100);
}

TEST_CASE("random plaintexts behind valid tags never crash the inflater", "[record][property]") {
    // Past the AEAD the inflater sees attacker-chosen plaintext only from a peer that holds
    // the key; still, every outcome must be a clean error or a non-empty payload.
    std::mt19937 rng(99);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> blocks(1, 3);
    Bytes payload;
    int successes = 0;
    for (int iteration = 0; iteration < 1500; ++iteration) {
        Bytes plain(256 * static_cast<std::size_t>(blocks(rng)));
        const std::size_t noisy = static_cast<std::size_t>(byte(rng)) % 40;
        for (std::size_t i = 0; i < noisy && i < plain.size(); ++i) {
            plain[i] = static_cast<std::uint8_t>(byte(rng));
        }
        if (iteration % 3 == 0)
            plain[0] |= 0x01;  // BFINAL more often
        const OpenResult r = open_one(seal_raw(plain), payload);
        if (r.opened()) {
            ++successes;
            REQUIRE_FALSE(payload.empty());
            continue;
        }
        const std::error_code ec = r.error;
        REQUIRE((ec == errc::decompression_failed || ec == errc::bad_padding ||
                 ec == errc::malformed || ec == errc::limit_exceeded));
    }
    // Sanity: the loop is not vacuous in either direction.
    REQUIRE(successes < 1500);
}
