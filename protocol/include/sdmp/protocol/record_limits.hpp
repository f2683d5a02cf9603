// Limits of the record layer (protocol.md §5.5). Both peers must use the same key-update
// limits; the size limits are local policy.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sdmp::protocol {

struct RecordLimits {
    // Largest ciphertext length a prefix may announce (padded plaintext + tag).
    std::size_t max_record_size = (17u << 20) + 16;
    // Largest inflated payload of one record (decompression-bomb limit).
    std::size_t max_payload_size = (16u << 20) + (64u << 10);
    // A key is ratcheted after this many records or this many padded-plaintext bytes,
    // whichever comes first (protocol.md §5.4). Deterministic on both sides: no signal.
    std::uint64_t records_per_key = std::uint64_t{1} << 24;
    std::uint64_t bytes_per_key = std::uint64_t{1} << 34;
};

}  // namespace sdmp::protocol
