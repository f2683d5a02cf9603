// Small shared pieces of the OpenSSL provider: owning handles for libcrypto objects, error
// reporting that keeps the thread's error queue clean, and the pointer and length adapters
// libcrypto's C interface needs. Private to crypto/src.
#pragma once

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "sdmp/crypto/bytes.hpp"

namespace sdmp::crypto::openssl {

template <auto Free>
struct FreeWith {
    template <typename T>
    void operator()(T* p) const noexcept {
        Free(p);
    }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, FreeWith<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, FreeWith<EVP_PKEY_CTX_free>>;
using MdPtr = std::unique_ptr<EVP_MD, FreeWith<EVP_MD_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, FreeWith<EVP_MD_CTX_free>>;
using CipherPtr = std::unique_ptr<EVP_CIPHER, FreeWith<EVP_CIPHER_free>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, FreeWith<EVP_CIPHER_CTX_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, FreeWith<EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, FreeWith<EVP_KDF_CTX_free>>;

// Empties this thread's OpenSSL error queue. Every failure path calls it (directly or through
// throw_failure): a stale entry would otherwise be read as the cause of a later, unrelated
// failure by the next OpenSSL user on the thread, such as Asio's TLS streams.
void clear_errors() noexcept;

// Throws std::system_error(errc::crypto_failure) naming `what` and the first queued OpenSSL
// error, and clears the queue.
[[noreturn]] void throw_failure(const char* what);

// libcrypto treats a null pointer as "parameter absent" in places (an HKDF key or salt given as
// null with length 0 fails), while an empty std::span may well have a null data(). Empty
// inputs therefore get a pointer to a static byte that is never read.
const unsigned char* data_or_empty(ByteView bytes) noexcept;

// EVP update calls take an int length; this is the most one call is given, so a larger buffer
// is fed in pieces.
inline constexpr std::size_t k_max_update = std::size_t{1} << 30;
static_assert(k_max_update <= INT_MAX);

}  // namespace sdmp::crypto::openssl
