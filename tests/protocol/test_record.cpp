// Record layer (protocol.md §5): round trips, framing, tampering, ordering, key update.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/error.hpp"
#include "sdmp/protocol/key_schedule.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"

using namespace sdmp;
using namespace sdmp::protocol;
using crypto::AeadAlgorithm;

namespace {

crypto::SecretBytes test_key(std::uint8_t seed) {
    crypto::SecretBytes key(32);
    for (std::size_t i = 0; i < key.size(); ++i) {
        key.data()[i] = static_cast<std::uint8_t>(seed + 7 * i);
    }
    return key;
}

Bytes random_bytes(std::size_t n, std::mt19937& rng) {
    Bytes b(n);
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& x : b)
        x = static_cast<std::uint8_t>(byte(rng));
    return b;
}

// Compressible, text-like bytes: words from a small vocabulary.
Bytes text_bytes(std::size_t n, std::mt19937& rng) {
    static const char* const words[] = {"record ", "payload ", "deflate ", "session ", "the ",
                                        "key ",    "nonce ",   "padding ", "sdmp ",    "\n"};
    std::uniform_int_distribution<std::size_t> pick(0, std::size(words) - 1);
    std::string s;
    while (s.size() < n)
        s += words[pick(rng)];
    s.resize(n);
    return Bytes(s.begin(), s.end());
}

std::uint32_t prefix_of(const Bytes& frame, std::size_t at = 0) {
    return (std::uint32_t{frame[at]} << 24) | (std::uint32_t{frame[at + 1]} << 16) |
           (std::uint32_t{frame[at + 2]} << 8) | std::uint32_t{frame[at + 3]};
}

Bytes prefix_bytes(std::uint32_t n) {
    return {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
            static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
}

crypto::Nonce nonce_for(std::uint64_t counter) {
    crypto::Nonce nonce{};
    for (std::size_t i = 0; i < 8; ++i) {
        nonce[11 - i] = static_cast<std::uint8_t>(counter >> (8 * i));
    }
    return nonce;
}

// A frame built by hand from protocol.md §5 with the provider's raw AEAD.
Bytes hand_built_record(AeadAlgorithm aead, const crypto::SecretBytes& key, std::uint64_t counter,
                        Bytes plaintext) {
    auto& provider = crypto::default_provider();
    const auto n = static_cast<std::uint32_t>(plaintext.size() + 16);
    Bytes frame = prefix_bytes(n);
    auto sealer = provider.make_sealer(aead, key.view());
    crypto::Tag tag{};
    sealer->seal(nonce_for(counter), ByteView{frame.data(), 4}, plaintext, tag);
    frame.insert(frame.end(), plaintext.begin(), plaintext.end());
    frame.insert(frame.end(), tag.begin(), tag.end());
    return frame;
}

// protocol.md §5.1 with a single stored DEFLATE block (BFINAL=1, BTYPE=00).
Bytes stored_block_plaintext(std::string_view data, std::size_t padded) {
    Bytes p = {0x01, static_cast<std::uint8_t>(data.size()),
               static_cast<std::uint8_t>(data.size() >> 8), static_cast<std::uint8_t>(~data.size()),
               static_cast<std::uint8_t>(~data.size() >> 8)};
    p.insert(p.end(), data.begin(), data.end());
    p.resize(padded, 0);
    return p;
}

}  // namespace

TEST_CASE("record round trip for every level, size and suite", "[record]") {
    const auto aead = GENERATE(AeadAlgorithm::aes_256_gcm, AeadAlgorithm::chacha20_poly1305);
    const int level = GENERATE(0, 1, 6, 12);
    const bool compressible = GENERATE(false, true);
    auto& provider = crypto::default_provider();
    const auto key = test_key(1);
    RecordSealer sealer(provider, aead, key);
    RecordOpener opener(provider, aead, key);
    std::mt19937 rng(42);

    const std::size_t sizes[] = {1,    2,     200,   255,   256,     257,           1000,
                                 4096, 65535, 65536, 65537, 1 << 20, (1 << 20) + 17};
    Bytes payload;
    for (std::size_t size : sizes) {
        CAPTURE(level, compressible, size);
        const Bytes in = compressible ? text_bytes(size, rng) : random_bytes(size, rng);
        Bytes frame;
        REQUIRE_FALSE(sealer.seal(in, level, frame));
        // protocol.md §5: u32 length, then (multiple of 256) + 16 bytes.
        const std::uint32_t n = prefix_of(frame);
        REQUIRE(frame.size() == 4 + std::size_t{n});
        REQUIRE(n >= 272);
        REQUIRE((n - 16) % 256 == 0);
        if (!compressible && level == 0)
            REQUIRE(n - 16 >= size);

        opener.feed(frame);
        REQUIRE(opener.next(payload).opened());
        REQUIRE(payload == in);
        REQUIRE(opener.next(payload).need_more());
    }
    REQUIRE(sealer.records_sealed() == std::size(sizes));
    REQUIRE(opener.records_opened() == std::size(sizes));
}

TEST_CASE("compression shrinks compressible records and padding stays minimal", "[record]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(2);
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key);
    std::mt19937 rng(7);
    const Bytes text = text_bytes(64 * 1024, rng);
    Bytes stored;
    Bytes compressed;
    REQUIRE_FALSE(sealer.seal(text, 0, stored));
    REQUIRE_FALSE(sealer.seal(text, 6, compressed));
    REQUIRE(compressed.size() * 3 < stored.size());
    // Level 0 only adds a 5-byte header per stored block: the padding is the next multiple.
    const std::size_t stored_blocks = (text.size() + 65534) / 65535;
    const std::size_t expected = (text.size() + 5 * stored_blocks + 255) / 256 * 256 + 16;
    REQUIRE(prefix_of(stored) == expected);
}

TEST_CASE("record bytes match a frame built from the spec", "[record]") {
    // protocol.md §5: prefix as AAD, counter nonce, stored DEFLATE and zero padding.
    const auto aead = GENERATE(AeadAlgorithm::aes_256_gcm, AeadAlgorithm::chacha20_poly1305);
    auto& provider = crypto::default_provider();
    const auto key = test_key(3);
    RecordSealer sealer(provider, aead, key);
    for (std::uint64_t counter = 0; counter < 3; ++counter) {
        Bytes frame;
        REQUIRE_FALSE(sealer.seal(as_bytes("hi"), 0, frame));
        REQUIRE(frame == hand_built_record(aead, key, counter, stored_block_plaintext("hi", 256)));
    }
}

TEST_CASE("several framed messages share one record", "[record][message]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(4);
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key);
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);

    Request request;
    request.id = 1;
    request.method = "echo";
    request.timeout_ms = 1500;
    request.metadata = {{"trace", "abc"}};
    request.body = Bytes(300, 0x5a);
    Ping ping{0x0102030405060708};
    GoAway goaway{17, "draining"};
    Bytes payload;
    REQUIRE_FALSE(encode_message(request, payload));
    REQUIRE_FALSE(encode_message(ping, payload));
    REQUIRE_FALSE(encode_message(goaway, payload));

    Bytes frame;
    REQUIRE_FALSE(sealer.seal(payload, 1, frame));
    opener.feed(frame);
    Bytes opened;
    REQUIRE(opener.next(opened).opened());
    std::vector<Message> messages;
    REQUIRE_FALSE(decode_messages(opened, messages));
    REQUIRE(messages.size() == 3);
    const auto& r = std::get<Request>(messages[0]);
    REQUIRE(r.id == 1);
    REQUIRE(r.method == "echo");
    REQUIRE(r.timeout_ms == 1500);
    REQUIRE(r.metadata == request.metadata);
    REQUIRE(r.body == request.body);
    REQUIRE(std::get<Ping>(messages[1]).opaque == ping.opaque);
    REQUIRE(std::get<GoAway>(messages[2]).last_request_id == 17);
    REQUIRE(std::get<GoAway>(messages[2]).reason == "draining");
}

TEST_CASE("sealer rejects empty and oversized payloads without appending", "[record]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(5);
    RecordLimits limits;
    limits.max_payload_size = 4096;
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key, limits);
    Bytes out = {1, 2, 3};
    REQUIRE(sealer.seal(ByteView{}, 0, out) == errc::limit_exceeded);
    REQUIRE(sealer.seal(Bytes(4097, 1), 0, out) == errc::limit_exceeded);
    REQUIRE(out == Bytes{1, 2, 3});
    REQUIRE(sealer.records_sealed() == 0);

    // A payload within max_payload_size whose record would exceed max_record_size.
    RecordLimits small_record;
    small_record.max_record_size = 512 + 16;
    RecordSealer sealer2(provider, AeadAlgorithm::aes_256_gcm, key, small_record);
    std::mt19937 rng(1);
    REQUIRE(sealer2.seal(random_bytes(600, rng), 0, out) == errc::limit_exceeded);
    REQUIRE(out == Bytes{1, 2, 3});
    // Compressed at level 6, the same size fits.
    REQUIRE_FALSE(sealer2.seal(Bytes(600, 'a'), 6, out));
    REQUIRE(out.size() == 3 + 4 + 256 + 16);
    REQUIRE(std::equal(out.begin(), out.begin() + 3, Bytes{1, 2, 3}.begin()));

    // Out-of-range levels are clamped rather than rejected.
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key, small_record);
    Bytes frames;
    REQUIRE_FALSE(sealer2.seal(as_bytes("low"), -5, frames));
    REQUIRE_FALSE(sealer2.seal(as_bytes("high"), 99, frames));
    opener.feed(ByteView(out).subspan(3));
    opener.feed(frames);
    Bytes payload;
    REQUIRE(opener.next(payload).opened());
    REQUIRE(payload == Bytes(600, 'a'));
    REQUIRE(opener.next(payload).opened());
    REQUIRE(as_string_view(payload) == "low");
    REQUIRE(opener.next(payload).opened());
    REQUIRE(as_string_view(payload) == "high");
}

TEST_CASE("the largest payload fits the largest record at level 0", "[record]") {
    // protocol.md §5.5: max_payload_size stored (5 bytes per 64 KiB block) and padded stays
    // within max_record_size, so a sender can always fall back to level 0.
    auto& provider = crypto::default_provider();
    const auto key = test_key(30);
    const RecordLimits defaults;
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key);
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
    std::mt19937 rng(31);
    const Bytes in = random_bytes(defaults.max_payload_size, rng);
    Bytes frame;
    REQUIRE_FALSE(sealer.seal(in, 0, frame));
    REQUIRE(prefix_of(frame) <= defaults.max_record_size);
    opener.feed(frame);
    Bytes payload;
    REQUIRE(opener.next(payload).opened());
    REQUIRE(payload == in);
    REQUIRE(payload.capacity() <= defaults.max_payload_size);
    frame.clear();
    REQUIRE(sealer.seal(random_bytes(defaults.max_payload_size + 1, rng), 0, frame) ==
            errc::limit_exceeded);
    REQUIRE(frame.empty());
}

TEST_CASE("every flipped bit of a record is detected", "[record][adversarial]") {
    const auto aead = GENERATE(AeadAlgorithm::aes_256_gcm, AeadAlgorithm::chacha20_poly1305);
    auto& provider = crypto::default_provider();
    const auto key = test_key(6);
    RecordSealer sealer(provider, aead, key);
    Bytes frame;
    REQUIRE_FALSE(sealer.seal(as_bytes("hello, record"), 0, frame));
    REQUIRE(frame.size() == 4 + 272);

    for (std::size_t i = 0; i < frame.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            CAPTURE(i, bit);
            Bytes bad = frame;
            bad[i] = static_cast<std::uint8_t>(bad[i] ^ (1u << bit));
            RecordOpener opener(provider, aead, key);
            opener.feed(bad);
            Bytes payload;
            const OpenResult r = opener.next(payload);
            if (i >= 4) {
                REQUIRE(r.error == errc::authentication_failed);
                continue;
            }
            // A changed prefix is either an invalid length or a valid one that no longer
            // matches the body; completing the longer frame must then fail the tag.
            if (r.need_more()) {
                const std::uint32_t n = prefix_of(bad);
                REQUIRE(n > 272);
                REQUIRE(opener.bytes_wanted() == n + 4 - bad.size());
                opener.feed(Bytes(opener.bytes_wanted(), 0));
                REQUIRE(opener.next(payload).error == errc::authentication_failed);
            } else {
                REQUIRE(r.error == errc::limit_exceeded);
            }
        }
    }
}

TEST_CASE("reordered, replayed and truncated records", "[record][adversarial]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(7);
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key);
    Bytes r0;
    Bytes r1;
    REQUIRE_FALSE(sealer.seal(as_bytes("first"), 0, r0));
    REQUIRE_FALSE(sealer.seal(as_bytes("second"), 0, r1));
    Bytes payload;

    SECTION("reordered") {
        RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
        opener.feed(r1);
        opener.feed(r0);
        REQUIRE(opener.next(payload).error == errc::authentication_failed);
        // Fatal errors are sticky.
        REQUIRE(opener.next(payload).error == errc::authentication_failed);
    }
    SECTION("replayed") {
        RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
        opener.feed(r0);
        opener.feed(r0);
        REQUIRE(opener.next(payload).opened());
        REQUIRE(as_string_view(payload) == "first");
        REQUIRE(opener.next(payload).error == errc::authentication_failed);
        opener.feed(r1);  // even the right record is not accepted any more
        REQUIRE(opener.next(payload).error == errc::authentication_failed);
    }
    SECTION("truncated") {
        RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
        REQUIRE(opener.bytes_wanted() == 4);
        opener.feed(ByteView(r0).first(2));
        REQUIRE(opener.next(payload).need_more());
        REQUIRE(opener.bytes_wanted() == 2);
        opener.feed(ByteView(r0).subspan(2, r0.size() - 3));
        REQUIRE(opener.next(payload).need_more());
        REQUIRE(opener.bytes_wanted() == 1);
        opener.feed(ByteView(r0).last(1));
        REQUIRE(opener.next(payload).opened());
        REQUIRE(as_string_view(payload) == "first");
    }
    SECTION("wrong key") {
        RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, test_key(8));
        opener.feed(r0);
        REQUIRE(opener.next(payload).error == errc::authentication_failed);
    }
    SECTION("wrong suite") {
        RecordOpener opener(provider, AeadAlgorithm::chacha20_poly1305, key);
        opener.feed(r0);
        REQUIRE(opener.next(payload).error == errc::authentication_failed);
    }
}

TEST_CASE("needing more bytes is a status without an error, every error is fatal", "[record]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(7);
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key);
    Bytes frame;
    REQUIRE_FALSE(sealer.seal(as_bytes("whole"), 0, frame));
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
    Bytes payload = {'x'};

    // Between records: nothing to open, nothing wrong, the payload untouched.
    OpenResult r = opener.next(payload);
    CHECK(r.status == OpenStatus::need_more);
    CHECK((r.need_more() && !r.opened() && !r.failed()));
    CHECK_FALSE(r.error);
    CHECK(payload == Bytes{'x'});
    opener.feed(ByteView(frame).first(frame.size() - 1));
    CHECK(opener.next(payload) == OpenResult::need_more_bytes());

    opener.feed(ByteView(frame).last(1));
    r = opener.next(payload);
    CHECK((r.opened() && !r.need_more() && !r.failed()));
    CHECK_FALSE(r.error);
    CHECK(as_string_view(payload) == "whole");

    // protocol.md §5.6: a failure carries its error, and stays.
    opener.feed(prefix_bytes(16));
    r = opener.next(payload);
    CHECK(r.failed());
    CHECK(r.error == errc::limit_exceeded);
    CHECK(opener.next(payload) == r);
    opener.feed(frame);
    ByteView view;
    CHECK(opener.next_view(view) == OpenResult::fatal(errc::limit_exceeded));
}

TEST_CASE("length prefix is validated before the body is buffered", "[record][adversarial]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(9);
    RecordLimits limits;
    Bytes payload;

    SECTION("bad lengths") {
        const std::uint32_t bad[] = {
            0,           16,
            256,         271,
            273,         272 + 255,
            528 + 1,     static_cast<std::uint32_t>(limits.max_record_size + 256),
            0xffffff10u, 0xffffffffu};
        for (std::uint32_t n : bad) {
            CAPTURE(n);
            RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
            opener.feed(prefix_bytes(n));  // the prefix alone
            REQUIRE(opener.next(payload).error == errc::limit_exceeded);
            REQUIRE(opener.bytes_wanted() >= 1);
            REQUIRE(opener.next(payload).error == errc::limit_exceeded);
        }
    }
    SECTION("a configured smaller max_record_size") {
        limits.max_record_size = 1024 + 16;
        RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key, limits);
        opener.feed(prefix_bytes(1280 + 16));
        REQUIRE(opener.next(payload).error == errc::limit_exceeded);
        RecordOpener opener2(provider, AeadAlgorithm::aes_256_gcm, key, limits);
        opener2.feed(prefix_bytes(1024 + 16));
        REQUIRE(opener2.next(payload).need_more());
        REQUIRE(opener2.bytes_wanted() == 1024 + 16);
    }
    SECTION("the largest default length is accepted as a length") {
        RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
        opener.feed(prefix_bytes(static_cast<std::uint32_t>(limits.max_record_size)));
        REQUIRE(opener.next(payload).need_more());
        REQUIRE(opener.bytes_wanted() == limits.max_record_size);
    }
}

TEST_CASE("fed byte by byte through prepare and commit", "[record]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(10);
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key);
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
    std::mt19937 rng(11);
    std::vector<Bytes> sent;
    std::vector<std::size_t> frame_sizes;
    Bytes stream;
    for (std::size_t size : {1u, 300u, 5000u, 70000u, 12u}) {
        sent.push_back(text_bytes(size, rng));
        const std::size_t before = stream.size();
        REQUIRE_FALSE(sealer.seal(sent.back(), static_cast<int>(size % 2), stream));
        frame_sizes.push_back(stream.size() - before);
    }

    std::vector<Bytes> received;
    Bytes payload;
    std::size_t fed = 0;  // bytes of the current record so far
    for (std::uint8_t byte : stream) {
        auto space = opener.prepare(1);
        REQUIRE(space.size() >= 1);
        space[0] = byte;
        opener.commit(1);
        ++fed;
        const OpenResult r = opener.next(payload);
        if (r.need_more()) {
            // Before the prefix is complete the hint covers the prefix, then the frame.
            const std::size_t frame = frame_sizes[received.size()];
            REQUIRE(opener.bytes_wanted() == (fed < 4 ? 4 - fed : frame - fed));
            continue;
        }
        REQUIRE(r.opened());
        REQUIRE(fed == frame_sizes[received.size()]);
        received.push_back(payload);
        fed = 0;
        REQUIRE(opener.bytes_wanted() == 4);
    }
    REQUIRE(received == sent);
}

TEST_CASE("a long stream in random chunks keeps the buffer bounded", "[record]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(12);
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key);
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key);
    std::mt19937 rng(13);
    std::uniform_int_distribution<std::size_t> record_size(1, 100000);
    std::uniform_int_distribution<std::size_t> chunk_size(1, 150000);

    std::vector<Bytes> sent;
    Bytes stream;
    for (int i = 0; i < 120; ++i) {
        sent.push_back(random_bytes(record_size(rng), rng));
        REQUIRE_FALSE(sealer.seal(sent.back(), i % 3 == 0 ? 1 : 0, stream));
    }
    std::vector<Bytes> received;
    Bytes payload;
    std::size_t pos = 0;
    std::size_t largest_space = 0;
    while (pos < stream.size()) {
        const std::size_t n = std::min(chunk_size(rng), stream.size() - pos);
        auto space = opener.prepare(n);
        REQUIRE(space.size() >= n);
        largest_space = std::max(largest_space, space.size());
        std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(pos), n, space.begin());
        opener.commit(n);
        pos += n;
        while (opener.next(payload).opened())
            received.push_back(payload);
        REQUIRE(opener.next(payload).need_more());
    }
    REQUIRE(received == sent);
    // Live data never exceeds one record plus one chunk; the buffer stays within a small
    // multiple of that instead of growing with the stream.
    REQUIRE(largest_space < 1200000);
}

TEST_CASE("commit beyond the prepared space is a programmer error", "[record]") {
    auto& provider = crypto::default_provider();
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, test_key(14));
    const auto space = opener.prepare(10);
    REQUIRE_THROWS_AS(opener.commit(space.size() + 1), std::invalid_argument);
    opener.commit(0);
    REQUIRE(opener.bytes_wanted() == 4);
}

TEST_CASE("key update after records_per_key records", "[record][key-update]") {
    const auto aead = GENERATE(AeadAlgorithm::aes_256_gcm, AeadAlgorithm::chacha20_poly1305);
    auto& provider = crypto::default_provider();
    const auto key = test_key(15);
    RecordLimits limits;
    limits.records_per_key = 3;
    RecordSealer sealer(provider, aead, key, limits);
    RecordOpener opener(provider, aead, key, limits);
    Bytes payload;
    for (std::uint64_t i = 0; i < 10; ++i) {
        Bytes frame;
        const std::string text = "record " + std::to_string(i);
        REQUIRE(sealer.key_generation() == i / 3);
        REQUIRE_FALSE(sealer.seal(as_bytes(text), 0, frame));
        REQUIRE(sealer.key_generation() == (i + 1) / 3);
        opener.feed(frame);
        REQUIRE(opener.next(payload).opened());
        REQUIRE(as_string_view(payload) == text);
        REQUIRE(opener.key_generation() == sealer.key_generation());
    }

    // protocol.md §5.4: the fourth record is sealed under HKDF(key, "sdmp/1 key update")
    // with the counter back at 0.
    RecordSealer fresh(provider, aead, key, limits);
    Bytes frames;
    for (int i = 0; i < 4; ++i)
        REQUIRE_FALSE(fresh.seal(as_bytes("x"), 0, frames));
    const auto next = next_traffic_key(provider, key);
    const Bytes fourth(frames.begin() + 3 * (4 + 272), frames.end());
    REQUIRE(fourth == hand_built_record(aead, next, 0, stored_block_plaintext("x", 256)));
}

TEST_CASE("key update after bytes_per_key padded bytes", "[record][key-update]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(16);
    RecordLimits limits;
    limits.bytes_per_key = 1024;  // four 256-byte records or two 512-byte ones
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key, limits);
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key, limits);
    std::mt19937 rng(17);
    Bytes payload;
    const auto send = [&](std::size_t size) {
        const Bytes in = random_bytes(size, rng);
        Bytes frame;
        REQUIRE_FALSE(sealer.seal(in, 0, frame));
        opener.feed(frame);
        REQUIRE(opener.next(payload).opened());
        REQUIRE(payload == in);
        REQUIRE(opener.key_generation() == sealer.key_generation());
    };
    for (int i = 0; i < 3; ++i)
        send(10);  // 768 padded bytes
    REQUIRE(sealer.key_generation() == 0);
    send(10);  // 1024: reaches the limit
    REQUIRE(sealer.key_generation() == 1);
    send(300);  // 512
    REQUIRE(sealer.key_generation() == 1);
    send(300);  // 1024
    REQUIRE(sealer.key_generation() == 2);
    send(2000);  // 2048 in one record: the limit is reached by this record alone
    REQUIRE(sealer.key_generation() == 3);
}

TEST_CASE("many records both ways across key updates", "[record][key-update]") {
    auto& provider = crypto::default_provider();
    RecordLimits limits;
    limits.records_per_key = 3;
    limits.bytes_per_key = 4096;
    const auto key_ab = test_key(20);
    const auto key_ba = test_key(21);
    RecordSealer a_send(provider, AeadAlgorithm::aes_256_gcm, key_ab, limits);
    RecordOpener b_recv(provider, AeadAlgorithm::aes_256_gcm, key_ab, limits);
    RecordSealer b_send(provider, AeadAlgorithm::aes_256_gcm, key_ba, limits);
    RecordOpener a_recv(provider, AeadAlgorithm::aes_256_gcm, key_ba, limits);
    std::mt19937 rng(22);
    std::uniform_int_distribution<std::size_t> size(1, 3000);
    Bytes payload;
    for (int i = 0; i < 300; ++i) {
        const Bytes ping = random_bytes(size(rng), rng);
        const Bytes pong = text_bytes(size(rng), rng);
        Bytes frame;
        REQUIRE_FALSE(a_send.seal(ping, i % 2, frame));
        b_recv.feed(frame);
        REQUIRE(b_recv.next(payload).opened());
        REQUIRE(payload == ping);
        frame.clear();
        REQUIRE_FALSE(b_send.seal(pong, i % 4, frame));
        a_recv.feed(frame);
        REQUIRE(a_recv.next(payload).opened());
        REQUIRE(payload == pong);
    }
    REQUIRE(a_send.key_generation() >= 100);
    REQUIRE(b_recv.key_generation() == a_send.key_generation());
    REQUIRE(a_recv.key_generation() == b_send.key_generation());
    REQUIRE(b_recv.records_opened() == 300);
}

TEST_CASE("sealer and opener that disagree on key-update limits fail", "[record][key-update]") {
    auto& provider = crypto::default_provider();
    const auto key = test_key(23);
    RecordLimits seal_limits;
    seal_limits.records_per_key = 3;
    RecordLimits open_limits;
    open_limits.records_per_key = 4;
    RecordSealer sealer(provider, AeadAlgorithm::aes_256_gcm, key, seal_limits);
    RecordOpener opener(provider, AeadAlgorithm::aes_256_gcm, key, open_limits);
    Bytes payload;
    for (int i = 0; i < 3; ++i) {
        Bytes frame;
        REQUIRE_FALSE(sealer.seal(as_bytes("same key"), 0, frame));
        opener.feed(frame);
        REQUIRE(opener.next(payload).opened());
    }
    Bytes frame;
    REQUIRE_FALSE(sealer.seal(as_bytes("new key"), 0, frame));
    opener.feed(frame);
    REQUIRE(opener.next(payload).error == errc::authentication_failed);
}
