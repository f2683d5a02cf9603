// The interface every crypto backend implements. Botan and OpenSSL headers never leave
// crypto/src.
//
// Failure contract: functions returning std::error_code leave their outputs unspecified on
// failure and never throw; functions returning values only fail on programmer error (wrong
// sizes), which they report by throwing std::invalid_argument.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "sdmp/crypto/bytes.hpp"
#include "sdmp/crypto/secret_bytes.hpp"
#include "sdmp/crypto/suite.hpp"

namespace sdmp::crypto {

using DhPublic = std::array<std::uint8_t, k_dh_public_size>;
using SignPublic = std::array<std::uint8_t, k_sign_public_size>;
using Signature = std::array<std::uint8_t, k_signature_size>;
using Digest = std::array<std::uint8_t, k_hash_size>;
using Nonce = std::array<std::uint8_t, k_aead_nonce_size>;
using Tag = std::array<std::uint8_t, k_aead_tag_size>;

struct DhKeyPair {
    SecretBytes private_key;  // 32 bytes
    DhPublic public_key{};
};

struct SignKeyPair {
    SecretBytes seed;  // 32-byte Ed25519 private seed
    SignPublic public_key{};
};

// A keyed AEAD in one direction. Keyed once; each call takes its own nonce.
// Works in place so the record layer never copies a payload.
class AeadSealer {
  public:
    virtual ~AeadSealer() = default;
    // Encrypts `inout` in place and writes the tag. Never fails for valid sizes.
    virtual void seal(const Nonce& nonce, ByteView aad, MutableByteView inout, Tag& tag_out) = 0;
};

class AeadOpener {
  public:
    virtual ~AeadOpener() = default;
    // Decrypts `inout` in place. On a bad tag returns errc::authentication_failed and the
    // contents of `inout` are unspecified (callers must discard them).
    [[nodiscard]] virtual std::error_code open(const Nonce& nonce, ByteView aad,
                                               MutableByteView inout, const Tag& tag) = 0;
};

class CryptoProvider {
  public:
    virtual ~CryptoProvider() = default;

    virtual std::string_view name() const noexcept = 0;

    // Secure random bytes from the OS generator.
    virtual void random(MutableByteView out) = 0;

    // --- X25519 ---
    virtual DhKeyPair dh_generate() = 0;
    // Derives the public value from a 32-byte private key (used for fixed test-vector keys).
    [[nodiscard]] virtual std::error_code dh_from_private(ByteView private_key, DhKeyPair& out) = 0;
    // Fails with errc::low_order_point when the result is all zero, errc::invalid_key on sizes.
    [[nodiscard]] virtual std::error_code dh_agree(const SecretBytes& private_key,
                                                   ByteView peer_public,
                                                   SecretBytes& shared_out) = 0;

    // --- Ed25519 ---
    virtual SignKeyPair sign_generate() = 0;
    [[nodiscard]] virtual std::error_code sign_from_seed(ByteView seed, SignKeyPair& out) = 0;
    virtual Signature sign(const SignKeyPair& key, ByteView message) = 0;
    // Returns false for any malformed key or signature as well as a wrong one.
    [[nodiscard]] virtual bool verify(const SignPublic& public_key, ByteView message,
                                      const Signature& signature) = 0;

    // --- SHA-256 and HKDF-SHA-256 (RFC 5869) ---
    virtual Digest sha256(ByteView data) = 0;
    // Hash of several parts, as if concatenated.
    virtual Digest sha256(std::span<const ByteView> parts) = 0;
    // Extract-then-expand; writes out.size() bytes (at most 255 * 32).
    virtual void hkdf(ByteView salt, ByteView ikm, ByteView info, MutableByteView out) = 0;

    // --- AEAD ---
    virtual std::unique_ptr<AeadSealer> make_sealer(AeadAlgorithm algorithm, ByteView key) = 0;
    virtual std::unique_ptr<AeadOpener> make_opener(AeadAlgorithm algorithm, ByteView key) = 0;

    // Constant-time equality (sizes are public).
    [[nodiscard]] virtual bool equal(ByteView a, ByteView b) const noexcept = 0;
};

// The default provider (Botan 2). Thread-safe: may be shared by every connection.
CryptoProvider& default_provider();
std::unique_ptr<CryptoProvider> make_botan_provider();

#if defined(SDMP_HAVE_OPENSSL)
// The OpenSSL 3 (libcrypto) provider, built when SDMP_WITH_OPENSSL is on. The same outputs
// and error codes as the Botan one, and thread-safe in the same way; one exception: hkdf()
// throws std::system_error (errc::crypto_failure) for an info longer than 32 KiB, which
// OpenSSL 3.0 refuses. Throws that error too if libcrypto lacks SHA-256 or HKDF.
std::unique_ptr<CryptoProvider> make_openssl_provider();
#endif

// Providers by name, for choosing one at run time (a configuration file, a command line):
// "botan" is default_provider() itself; "openssl" is one process-wide OpenSSL provider, made on
// first use (only in a build with SDMP_WITH_OPENSSL). The instances live until the process
// exits and are thread-safe like every provider, so any number of servers and connections may
// share them. Names are exact and lower-case. Returns nullptr, and never throws, for a name
// that is unknown or not built into this library, and for "openssl" when libcrypto cannot make
// the provider (it lacks SHA-256 or HKDF).
CryptoProvider* find_provider(std::string_view name);

// The names find_provider() knows in this build, the default first: {"botan"}, or
// {"botan", "openssl"} with SDMP_WITH_OPENSSL.
std::vector<std::string> provider_names();

}  // namespace sdmp::crypto
