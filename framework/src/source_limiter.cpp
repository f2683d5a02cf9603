// Per-source handshake admission (see detail/source_limiter.hpp).
#include "detail/source_limiter.hpp"

#include <algorithm>

namespace sdmp::detail {

SourceLimiter::SourceLimiter(const SourceLimits& limits)
    : rate_(limits.handshake_rate > 0 ? limits.handshake_rate : 0.0),
      burst_(std::max(1.0, limits.handshake_burst)),
      max_active_(limits.max_handshakes_per_source),
      max_sources_(std::max<std::size_t>(1, limits.max_sources)),
      exempt_loopback_(limits.exempt_loopback) {}

SourceLimiter::Verdict SourceLimiter::admit(asio::ip::address address, Key& key) {
    if (rate_ == 0.0 && max_active_ == 0)
        return Verdict::unlimited;
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    if (exempt_loopback_ && address.is_loopback())
        return Verdict::unlimited;
    key = key_of(address);

    const auto now = SteadyClock::now();
    const std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
        evict(max_sources_ - 1);  // make room first: the new entry must stay
        it = entries_.emplace(key, Entry{burst_, now, 0, lru_.end()}).first;
        it->second.lru = lru_.insert(lru_.begin(), key);
    } else if (it->second.lru != lru_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.lru);  // most recently seen
    }
    Entry& entry = it->second;
    if (rate_ > 0.0) {
        const double elapsed = std::chrono::duration<double>(now - entry.refilled).count();
        entry.tokens = std::min(burst_, entry.tokens + elapsed * rate_);
        entry.refilled = now;
        if (entry.tokens < 1.0)
            return Verdict::rate_limited;
        entry.tokens -= 1.0;
    }
    if (max_active_ != 0 && entry.active >= max_active_)
        return Verdict::too_many_handshakes;
    if (entry.active++ == 0) {
        // In progress: pinned (out of the eviction order) until its last handshake ends,
        // so the count cannot be lost.
        lru_.erase(entry.lru);
        entry.lru = lru_.end();
    }
    return Verdict::admitted;
}

void SourceLimiter::release(const Key& key) {
    const std::lock_guard lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end() || it->second.active == 0)
        return;
    if (--it->second.active == 0) {
        it->second.lru = lru_.insert(lru_.begin(), key);
        evict(max_sources_);
    }
}

SourceLimiter::Key SourceLimiter::key_of(const asio::ip::address& address) {
    Key key{};
    if (address.is_v4()) {
        key[0] = 4;
        const auto bytes = address.to_v4().to_bytes();
        std::copy(bytes.begin(), bytes.end(), key.begin() + 1);
    } else {
        key[0] = 6;
        const auto bytes = address.to_v6().to_bytes();
        std::copy(bytes.begin(), bytes.begin() + 8, key.begin() + 1);  // the /64 prefix
    }
    return key;
}

void SourceLimiter::evict(std::size_t bound) {
    while (entries_.size() > bound && !lru_.empty()) {
        entries_.erase(lru_.back());
        lru_.pop_back();
    }
}

}  // namespace sdmp::detail
