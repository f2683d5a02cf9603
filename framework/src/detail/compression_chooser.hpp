// Which DEFLATE level each outgoing record gets (protocol.md §5.1 leaves it to the sender).
// Level 0 (stored blocks) is a copy; level 1 costs ~10 µs per record before it has compressed
// anything, more than the AEAD of a small record, so it is spent only where it shrinks the
// record. Messages of different calls never share a compressed record unless the application
// asked for it (SessionOptions::compress_across_messages, docs/security.md).
//
// Sans-IO: the writer tells it whether the link is backlogged and whether a record it meant to
// compress did shrink; it asks the sealer for the size of a sample, nothing else.
#pragma once

#include <cstddef>
#include <cstdint>

#include "detail/send_queue.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/protocol/record_sealer.hpp"

namespace sdmp::detail {

struct LevelChoice {
    int level = 0;
    // Nonzero: when DEFLATE output exceeds this many bytes the record goes out at level 0
    // instead (RecordSealer::seal_into), and the writer reports the outcome with note().
    std::size_t fallback_above = 0;
};

class CompressionChooser {
  public:
    explicit CompressionChooser(const SessionOptions& options) : options_(options) {}

    // `link_backlogged`: the last socket write could not be taken whole at once
    // (CompressionPolicy::automatic compresses only then).
    LevelChoice choose(const Segment& segment, bool link_backlogged,
                       protocol::RecordSealer& sealer);
    // After a record chosen with a fallback: whether it was compressed. Failures back off
    // exponentially: up to 64 large records then go out at level 0 unprobed.
    void note(bool compressed) noexcept;

  private:
    const SessionOptions& options_;
    std::uint32_t probe_skip_ = 0;
    std::uint32_t probe_backoff_ = 0;
};

}  // namespace sdmp::detail
