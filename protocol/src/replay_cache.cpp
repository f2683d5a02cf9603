// Bounded, thread-safe memory of initiator ephemerals (protocol.md §3.5 step 6).
#include "sdmp/protocol/replay_cache.hpp"

#include <cstring>
#include <random>

namespace sdmp::protocol {

namespace {

// A per-process random key, so nobody can precompute ephemerals that collide in the table.
std::uint64_t hash_key() noexcept {
    static const std::uint64_t key = [] {
        std::random_device rd;
        return (std::uint64_t{rd()} << 32) ^ std::uint64_t{rd()};
    }();
    return key;
}

}  // namespace

std::size_t ReplayCache::KeyHash::operator()(const crypto::DhPublic& k) const noexcept {
    // Only signed messages from trusted peers reach the cache (protocol.md §3.5 step 6), so a
    // keyed multiply-xorshift mix of all 32 bytes is plenty; no cryptographic hash is needed.
    std::uint64_t h = hash_key();
    for (std::size_t i = 0; i < k.size(); i += 8) {
        std::uint64_t w = 0;
        std::memcpy(&w, k.data() + i, sizeof w);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    return static_cast<std::size_t>(h);
}

ReplayCache::ReplayCache(std::uint64_t window_ms, std::size_t capacity)
    : window_ms_(window_ms), capacity_(capacity == 0 ? 1 : capacity) {}

bool ReplayCache::seen_before(const crypto::DhPublic& ephemeral, std::uint64_t now_ms) {
    const std::lock_guard lock(mutex_);
    expire(now_ms);
    if (set_.contains(ephemeral))
        return true;
    while (order_.size() >= capacity_) {
        set_.erase(order_.front().first);
        order_.pop_front();
    }
    set_.insert(ephemeral);
    order_.emplace_back(ephemeral, now_ms);
    return false;
}

std::size_t ReplayCache::size() const {
    const std::lock_guard lock(mutex_);
    return order_.size();
}

void ReplayCache::expire(std::uint64_t now_ms) {
    // Entries are in insertion order; a clock that steps backwards only delays expiry.
    while (!order_.empty()) {
        const std::uint64_t inserted = order_.front().second;
        if (now_ms < inserted || now_ms - inserted <= window_ms_)
            break;
        set_.erase(order_.front().first);
        order_.pop_front();
    }
}

}  // namespace sdmp::protocol
