// Remembers ephemeral values seen inside the clock-skew window (protocol.md §3.5).
// Bounded in memory; thread-safe so one cache can serve every listener of a node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_set>

#include "sdmp/crypto/crypto_provider.hpp"

namespace sdmp::protocol {

class ReplayCache {
  public:
    // `window_ms`: entries older than this (by insertion time) are forgotten. Must be at least
    // twice the handshake's max_clock_skew: a message passes the clock check for that long
    // (protocol.md §3.5 step 6). The default matches the default skew of 2 minutes.
    // `capacity`: at most this many entries; the oldest are evicted first.
    explicit ReplayCache(std::uint64_t window_ms = 4 * 60 * 1000, std::size_t capacity = 1 << 16);

    // Returns true if `ephemeral` was already seen (a replay); otherwise records it at `now_ms`.
    [[nodiscard]] bool seen_before(const crypto::DhPublic& ephemeral, std::uint64_t now_ms);

    std::size_t size() const;
    std::uint64_t window_ms() const noexcept { return window_ms_; }

  private:
    void expire(std::uint64_t now_ms);

    std::uint64_t window_ms_;
    std::size_t capacity_;
    mutable std::mutex mutex_;
    std::deque<std::pair<crypto::DhPublic, std::uint64_t>> order_;
    struct KeyHash {
        std::size_t operator()(const crypto::DhPublic& k) const noexcept;
    };
    std::unordered_set<crypto::DhPublic, KeyHash> set_;
};

}  // namespace sdmp::protocol
