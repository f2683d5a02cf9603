// Internal helpers shared by RecordSealer and RecordOpener (protocol.md §5). Not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/protocol/record_limits.hpp"
#include "sdmp/protocol/wire.hpp"

namespace sdmp::protocol::detail {

inline constexpr std::size_t k_record_tag_size = crypto::k_aead_tag_size;
// protocol.md §5.3: the smallest record is one padding block plus the tag.
inline constexpr std::size_t k_min_record_size = k_padding_block + k_record_tag_size;

inline void store_u32_be(std::uint8_t* p, std::uint32_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

inline std::uint32_t load_u32_be(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

// protocol.md §5.2: nonce = 4 zero bytes || u64 BE counter.
inline crypto::Nonce record_nonce(std::uint64_t counter) noexcept {
    crypto::Nonce nonce{};
    for (std::size_t i = 0; i < 8; ++i) {
        nonce[nonce.size() - 1 - i] = static_cast<std::uint8_t>(counter >> (8 * i));
    }
    return nonce;
}

// protocol.md §5.1: a positive multiple of 256. Callers keep n far below SIZE_MAX.
inline constexpr std::size_t padded_size(std::size_t n) noexcept {
    if (n == 0)
        return k_padding_block;
    return (n + k_padding_block - 1) / k_padding_block * k_padding_block;
}

inline constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    return a > max - b ? max : a + b;
}

// Usage of one direction's traffic key (protocol.md §5.2, §5.4). Sealer and opener run the
// same bookkeeping so that both sides ratchet after exactly the same record.
class KeyUsage {
  public:
    // The nonce counter for the next record.
    std::uint64_t counter() const noexcept { return counter_; }
    std::uint64_t generation() const noexcept { return generation_; }
    std::uint64_t total_records() const noexcept { return total_records_; }
    // True once no further key generation is available; the connection must close.
    bool exhausted() const noexcept { return exhausted_; }

    // Accounts one record of `padded` plaintext bytes. Returns true when the key must be
    // replaced now (protocol.md §5.4: after the record that reaches a limit).
    bool record_done(std::size_t padded, const RecordLimits& limits) noexcept {
        ++counter_;  // cannot wrap: it is reset at records_per_key <= 2^64 - 1
        bytes_ = saturating_add(bytes_, padded);
        total_records_ = saturating_add(total_records_, 1);
        return counter_ >= limits.records_per_key || bytes_ >= limits.bytes_per_key;
    }

    // True when no further key generation exists (protocol.md §5.4: the u64 generation
    // counter must not wrap); the caller then marks the direction exhausted instead.
    bool last_generation() const noexcept {
        return generation_ == std::numeric_limits<std::uint64_t>::max();
    }

    // Call after the next key is installed.
    void key_updated() noexcept {
        counter_ = 0;
        bytes_ = 0;
        ++generation_;
    }

    // Marks the direction unusable (the nonce space of the current key is used up).
    void mark_exhausted() noexcept { exhausted_ = true; }

  private:
    std::uint64_t counter_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t generation_ = 0;
    std::uint64_t total_records_ = 0;
    bool exhausted_ = false;
};

}  // namespace sdmp::protocol::detail
