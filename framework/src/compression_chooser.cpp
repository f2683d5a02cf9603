#include "detail/compression_chooser.hpp"

#include <algorithm>

namespace sdmp::detail {

namespace {

// Bytes of a large record compressed to estimate whether it compresses.
constexpr std::size_t k_probe_window = 4096;
constexpr std::uint32_t k_max_probe_backoff = 64;

}  // namespace

LevelChoice CompressionChooser::choose(const Segment& segment, bool link_backlogged,
                                       protocol::RecordSealer& sealer) {
    const SessionOptions& o = options_;
    if (segment.no_compress || (segment.exchanges > 1 && !o.compress_across_messages))
        return {};
    switch (o.compression) {
        case CompressionPolicy::never:
            return {};
        case CompressionPolicy::always:
            return {o.compression_level, 0};
        case CompressionPolicy::automatic:
        case CompressionPolicy::when_smaller: {
            // automatic: while the socket takes every write at once, bytes are not what limits
            // this session and compressing would only spend CPU (on a fast network it costs
            // more time than the bytes it saves); once a write had to wait, compress.
            if (o.compression == CompressionPolicy::automatic && !link_backlogged)
                return {};
            const std::size_t size = segment.bytes.size() + segment.tail.size();
            if (size < o.compress_threshold || o.compression_level <= 0)
                return {};
            if (probe_skip_ > 0) {
                --probe_skip_;
                return {};
            }
            // A record must shrink by at least a tenth, or it goes out at level 0 (decided
            // inside the sealer, before any nonce is spent). A large record is first judged
            // by compressing a window from its middle (past any headers), so incompressible
            // traffic (media, encrypted data) costs a few KiB of DEFLATE per probe.
            const std::size_t fallback_above = size - size / 10;
            if (size <= 2 * k_probe_window)
                return {o.compression_level, fallback_above};
            const std::size_t window = k_probe_window;
            // A gathered segment is its head and a body of at least 64 KiB.
            const Bytes& sampled = segment.tail.size() >= window ? segment.tail : segment.bytes;
            const ByteView sample(sampled.data() + (sampled.size() - window) / 2, window);
            if (sealer.compressed_size(sample, o.compression_level, window - window / 10) != 0)
                return {o.compression_level, fallback_above};
            note(false);
            return {};
        }
    }
    return {};
}

void CompressionChooser::note(bool compressed) noexcept {
    if (compressed) {
        probe_backoff_ = 0;
        return;
    }
    probe_backoff_ = std::clamp<std::uint32_t>(probe_backoff_ * 2, 1, k_max_probe_backoff);
    probe_skip_ = probe_backoff_;
}

}  // namespace sdmp::detail
