// Incoming records (protocol.md §5): the strict reverse of RecordSealer. Sans-IO: the
// driver writes socket bytes into `prepare()`/`commit()` and pulls payloads with `next()`.
// Every error is fatal for the connection (close without `nope`, protocol.md §5.6).
#pragma once

#include <memory>
#include <system_error>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/protocol/record_limits.hpp"

namespace sdmp::protocol {

// What one call of RecordOpener::next()/next_view() did. A stream is between records most of
// the time, so "no whole record buffered yet" is an ordinary outcome that tells the driver to
// read (like HandshakeState's Need action), not an error: keeping it out of the error code
// means every error a caller sees is fatal and nobody has to remember which one is not.
enum class OpenStatus : unsigned char {
    opened,     // a record was opened; the payload is set
    need_more,  // no whole record is buffered: read (bytes_wanted() is a hint), then call again
    failed,     // a fatal error (OpenResult::error); the connection must close (§5.6)
};

struct [[nodiscard]] OpenResult {
    OpenStatus status = OpenStatus::need_more;
    std::error_code error;  // set exactly when status == failed

    static OpenResult opened_record() noexcept { return {OpenStatus::opened, {}}; }
    static OpenResult need_more_bytes() noexcept { return {OpenStatus::need_more, {}}; }
    static OpenResult fatal(std::error_code ec) noexcept { return {OpenStatus::failed, ec}; }

    bool opened() const noexcept { return status == OpenStatus::opened; }
    bool need_more() const noexcept { return status == OpenStatus::need_more; }
    bool failed() const noexcept { return status == OpenStatus::failed; }

    bool operator==(const OpenResult&) const noexcept = default;
};

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

    // Opens the next complete record and replaces `payload` with its inflated contents
    // (opened), or reports that no whole record is buffered yet (need_more; nothing changes).
    // Fatal errors (failed): limit_exceeded (length prefix, or inflated payload above
    // max_payload_size), authentication_failed (tag), decompression_failed, bad_padding,
    // malformed (empty payload), counter_exhausted. After a fatal error every call returns the
    // same error and later input is discarded.
    OpenResult next(Bytes& payload);
    // The same, without a copy: `payload` views the opener's own output buffer and stays valid
    // until the next call of next(), next_view(), prepare(), commit() or feed(). Empty unless
    // opened.
    OpenResult next_view(ByteView& payload);

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
