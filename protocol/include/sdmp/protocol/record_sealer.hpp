// Outgoing records (protocol.md §5): raw DEFLATE at a chosen level, zero padding to a
// multiple of 256 bytes, AEAD with the 4-byte length prefix as AAD and a counter nonce.
#pragma once

#include <memory>
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
    std::error_code seal(ByteView payload, int level, Bytes& out);

    std::uint64_t key_generation() const noexcept;
    std::uint64_t records_sealed() const noexcept;  // in total, across key updates

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sdmp::protocol
