// The choice of each record's DEFLATE level (framework/src/compression_chooser.cpp,
// protocol.md §5.1) on its own: policies, the rule that messages of different calls never share
// a compressed record, and the probe of large records with its back-off. No sockets.
#include <catch2/catch.hpp>
#include <random>

#include "detail/compression_chooser.hpp"
#include "sdmp/crypto/crypto_provider.hpp"

using sdmp::CompressionPolicy;
using sdmp::detail::CompressionChooser;
using sdmp::detail::LevelChoice;
using sdmp::detail::Segment;

namespace {

sdmp::protocol::RecordSealer test_sealer() {
    return sdmp::protocol::RecordSealer(sdmp::crypto::default_provider(),
                                        sdmp::crypto::AeadAlgorithm::aes_256_gcm,
                                        sdmp::crypto::SecretBytes(32));
}

Segment segment_of(std::size_t size, bool compressible, std::size_t exchanges = 1) {
    Segment segment;
    segment.exchanges = exchanges;
    segment.bytes.resize(size);
    std::mt19937 random(5);
    for (std::size_t i = 0; i < size; ++i)
        segment.bytes[i] = compressible ? static_cast<std::uint8_t>('a' + i % 3)
                                        : static_cast<std::uint8_t>(random());
    return segment;
}

sdmp::SessionOptions options_with(CompressionPolicy policy) {
    sdmp::SessionOptions o;
    o.compression = policy;
    o.compression_level = 6;
    o.compress_threshold = 1024;
    return o;
}

}  // namespace

TEST_CASE("never, always and no_compress decide alone", "[framework][compression]") {
    auto sealer = test_sealer();
    const Segment text = segment_of(2000, true);

    const auto never = options_with(CompressionPolicy::never);
    CHECK(CompressionChooser(never).choose(text, true, sealer).level == 0);

    const auto always = options_with(CompressionPolicy::always);
    CompressionChooser always_chooser(always);
    const LevelChoice c = always_chooser.choose(segment_of(10, true), false, sealer);
    CHECK(c.level == 6);
    CHECK(c.fallback_above == 0);

    Segment private_segment = text;
    private_segment.no_compress = true;
    CHECK(always_chooser.choose(private_segment, true, sealer).level == 0);
}

TEST_CASE("messages of different calls share a compressed record only when allowed",
          "[framework][compression]") {
    auto sealer = test_sealer();
    auto o = options_with(CompressionPolicy::always);
    const Segment mixed = segment_of(2000, true, /*exchanges=*/2);
    CHECK(CompressionChooser(o).choose(mixed, true, sealer).level == 0);
    o.compress_across_messages = true;
    CHECK(CompressionChooser(o).choose(mixed, true, sealer).level == 6);
}

TEST_CASE("automatic compresses only once the link is backlogged, above the threshold",
          "[framework][compression]") {
    auto sealer = test_sealer();
    const auto o = options_with(CompressionPolicy::automatic);
    CompressionChooser chooser(o);
    const Segment text = segment_of(2000, true);
    CHECK(chooser.choose(text, false, sealer).level == 0);
    const LevelChoice backlogged = chooser.choose(text, true, sealer);
    CHECK(backlogged.level == 6);
    CHECK(backlogged.fallback_above == 2000 - 200);  // must shrink by a tenth
    CHECK(chooser.choose(segment_of(500, true), true, sealer).level == 0);  // below threshold
}

TEST_CASE("large records are probed and incompressible ones back off exponentially",
          "[framework][compression]") {
    auto sealer = test_sealer();
    const auto o = options_with(CompressionPolicy::when_smaller);
    CompressionChooser chooser(o);
    const Segment noise = segment_of(64 * 1024, false);
    const Segment text = segment_of(64 * 1024, true);

    // The probe of a compressible record passes.
    CHECK(chooser.choose(text, false, sealer).level == 6);
    // Random bytes fail the probe: level 0, then the next record goes unprobed.
    CHECK(chooser.choose(noise, false, sealer).level == 0);
    CHECK(chooser.choose(text, false, sealer).level == 0);   // skipped (1)
    CHECK(chooser.choose(noise, false, sealer).level == 0);  // probed, fails again
    CHECK(chooser.choose(text, false, sealer).level == 0);   // skipped (2)
    CHECK(chooser.choose(text, false, sealer).level == 0);
    CHECK(chooser.choose(text, false, sealer).level == 6);  // probed again, passes
    // A record that was compressed resets the back-off.
    chooser.note(true);
    CHECK(chooser.choose(noise, false, sealer).level == 0);
    CHECK(chooser.choose(text, false, sealer).level == 0);  // skipped (1) again
    CHECK(chooser.choose(text, false, sealer).level == 6);
}

TEST_CASE("the back-off is capped at 64 unprobed records", "[framework][compression]") {
    auto sealer = test_sealer();
    const auto o = options_with(CompressionPolicy::when_smaller);
    CompressionChooser chooser(o);
    for (int i = 0; i < 10; ++i)
        chooser.note(false);  // 1, 2, 4, ... capped at 64
    const Segment text = segment_of(64 * 1024, true);
    int skipped = 0;
    while (chooser.choose(text, false, sealer).level == 0)
        ++skipped;
    CHECK(skipped == 64);
}
