// Per-source handshake admission (ServerOptions::source_limits): a token bucket and a count of
// handshakes in progress per source, in a bounded table. Thread-safe (connections of every
// strand consult it); each call is O(log n) under one short lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>

#include "detail/asio.hpp"
#include "sdmp/framework/options.hpp"

namespace sdmp::detail {

class SourceLimiter {
  public:
    // Family byte, then the IPv4 address or the IPv6 /64 prefix.
    using Key = std::array<std::uint8_t, 9>;
    enum class Verdict { admitted, unlimited, rate_limited, too_many_handshakes };

    explicit SourceLimiter(const SourceLimits& limits);

    // `admitted`: the caller must call release(key) when the handshake ends. `unlimited`:
    // nothing to release (limits off or an exempt source).
    Verdict admit(asio::ip::address address, Key& key);
    void release(const Key& key);

  private:
    struct Entry {
        double tokens;
        SteadyClock::time_point refilled;
        std::size_t active;            // handshakes in progress
        std::list<Key>::iterator lru;  // lru_.end() while pinned
    };

    static Key key_of(const asio::ip::address& address);
    // Forgets the sources seen least recently while the table holds more than `bound`. Pinned
    // entries are not in lru_, so they are never forgotten.
    void evict(std::size_t bound);

    const double rate_;
    const double burst_;
    const std::size_t max_active_;
    const std::size_t max_sources_;
    const bool exempt_loopback_;

    std::mutex mutex_;
    // An ordered map: its cost cannot be driven up by sources chosen to collide.
    std::map<Key, Entry> entries_;
    std::list<Key> lru_;  // unpinned entries, most recently seen first
};

// Holds a source's handshake slot (SourceLimiter::admit) until the handshake ends.
struct SourceSlot {
    SourceLimiter* limiter = nullptr;
    SourceLimiter::Key key{};
    SourceSlot() = default;
    SourceSlot(const SourceSlot&) = delete;
    SourceSlot& operator=(const SourceSlot&) = delete;
    ~SourceSlot() { release(); }
    void release() {
        if (limiter != nullptr)
            limiter->release(key);
        limiter = nullptr;
    }
};

}  // namespace sdmp::detail
