// Incoming records (protocol.md §5): the strict reverse of RecordSealer. Sans-IO: the
// driver writes socket bytes into `prepare()`/`commit()` and pulls payloads with `next()`.
// Every error is fatal for the connection (close without `nope`, protocol.md §5.6).
#pragma once

#include <memory>
#include <system_error>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/protocol/record_limits.hpp"

namespace sdmp::protocol {

class RecordOpener {
  public:
    RecordOpener(crypto::CryptoProvider& provider, crypto::AeadAlgorithm aead,
                 const crypto::SecretBytes& key, RecordLimits limits = {});
    RecordOpener(RecordOpener&&) noexcept;
    RecordOpener& operator=(RecordOpener&&) noexcept;
    ~RecordOpener();

    // Writable space of at least `min_size` bytes at the end of the input buffer. Between
    // records it also gives back buffers a large record left behind (input and output), so a
    // session that received one large record does not keep its size.
    MutableByteView prepare(std::size_t min_size = 64 * 1024);
    // Marks `n` bytes of the space from prepare() as received.
    void commit(std::size_t n);
    // Convenience: copies bytes in (the handshake's leftover, tests).
    void feed(ByteView bytes);

    // Opens the next complete record and replaces `payload` with its inflated contents.
    // errc::need_more_data when no whole record is buffered yet (not fatal). Fatal:
    // limit_exceeded (length prefix, or inflated payload above max_payload_size),
    // authentication_failed (tag), decompression_failed, bad_padding, malformed (empty
    // payload), counter_exhausted. After a fatal error every call returns the same error and
    // later input is discarded.
    std::error_code next(Bytes& payload);
    // The same, without a copy: `payload` views the opener's own output buffer and stays valid
    // until the next call of next(), next_view(), prepare(), commit() or feed(). Empty on error.
    std::error_code next_view(ByteView& payload);

    // How many more bytes complete the record being received (a read-size hint; >= 1).
    std::size_t bytes_wanted() const noexcept;
    // Bytes received and not yet consumed by an opened record (0 between records).
    std::size_t buffered() const noexcept;

    std::uint64_t key_generation() const noexcept;
    std::uint64_t records_opened() const noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sdmp::protocol
