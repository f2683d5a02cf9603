// Outgoing records (protocol.md §5): raw DEFLATE at a chosen level, zero padding to a
// multiple of 256 bytes, AEAD with the 4-byte length prefix as AAD and a counter nonce.
#pragma once

#include <memory>
#include <span>
#include <system_error>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/protocol/record_limits.hpp"

namespace sdmp::protocol {

class RecordSealer {
  public:
    RecordSealer(crypto::CryptoProvider& provider, crypto::AeadAlgorithm aead,
                 const crypto::SecretBytes& key, RecordLimits limits = {});
    RecordSealer(RecordSealer&&) noexcept;
    RecordSealer& operator=(RecordSealer&&) noexcept;
    ~RecordSealer();

    // Seals `payload` (one or more framed messages) and appends the whole frame to `out`.
    // `level` 0..12 (0 = stored blocks, a plain copy). Fails with errc::limit_exceeded when the
    // payload is larger than the limits allow (nothing appended), errc::counter_exhausted when
    // no nonce is left (the connection must close). `payload` must not point into `out`.
    [[nodiscard]] std::error_code seal(ByteView payload, int level, Bytes& out);

    // Largest frame seal_into() can write for a payload of `payload_size` bytes at `level`.
    std::size_t sealed_size_bound(std::size_t payload_size, int level);
    // Like seal(), into caller-provided space (at least sealed_size_bound() bytes: throws
    // std::invalid_argument otherwise), so a reused buffer need not be zero-filled per record.
    // Sets `written` to the frame size (0 on failure). When `fallback_above` is nonzero and
    // `level` > 0 produced more than that many DEFLATE bytes, the record goes out at level 0
    // instead (still one record, one nonce): trying a level costs one compression, not two.
    // `level_used`, when given, receives the level actually used.
    [[nodiscard]] std::error_code seal_into(ByteView payload, int level, std::size_t fallback_above,
                                            MutableByteView out, std::size_t& written,
                                            int* level_used = nullptr);
    // The same for a payload given as consecutive `parts` (e.g. a message head and its body,
    // which then need not be copied together): at level 0 the parts are copied once, straight
    // into the record; at other levels they are concatenated first.
    [[nodiscard]] std::error_code seal_into(std::span<const ByteView> parts, int level,
                                            std::size_t fallback_above, MutableByteView out,
                                            std::size_t& written, int* level_used = nullptr);

    // Raw DEFLATE size of `sample` at `level` (1..12), or 0 when it would exceed `limit` bytes.
    // Seals nothing and uses no nonce: for choosing a record's level cheaply (protocol.md §5.1
    // leaves the level to the sender), e.g. by compressing a few KiB of a large payload.
    std::size_t compressed_size(ByteView sample, int level, std::size_t limit);

    std::uint64_t key_generation() const noexcept;
    std::uint64_t records_sealed() const noexcept;  // in total, across key updates

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sdmp::protocol
