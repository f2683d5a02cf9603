// Node identities: an Ed25519 signing key pair plus an X25519 static key pair
// (protocol.md §1). File formats are in protocol.md §7.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "sdmp/crypto/crypto_provider.hpp"

namespace sdmp::crypto {

// SHA-256 of the public identity's canonical bytes.
class Fingerprint {
  public:
    Fingerprint() = default;
    explicit Fingerprint(const Digest& digest) : digest_(digest) {}

    // Parses exactly 64 hex characters (upper case accepted, shown lower case).
    static std::optional<Fingerprint> parse(std::string_view hex);

    const Digest& bytes() const noexcept { return digest_; }
    std::string hex() const;
    // First 16 hex characters, for logs.
    std::string short_hex() const;

    friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
    friend auto operator<=>(const Fingerprint&, const Fingerprint&) = default;

  private:
    Digest digest_{};
};

struct FingerprintHash {
    std::size_t operator()(const Fingerprint& f) const noexcept;
};

// The two public keys. Canonical bytes: sign_public (32) || dh_public (32).
struct PublicIdentity {
    SignPublic sign_public{};
    DhPublic dh_public{};

    std::array<std::uint8_t, 64> canonical_bytes() const;
    Fingerprint fingerprint(CryptoProvider& provider) const;
    // protocol.md §1: an empty string when both keys may be trusted, otherwise what is wrong with
    // the first bad one, e.g. "Ed25519 public key is a point of small order". Refused: an Ed25519
    // key that is of small order, not canonically encoded or not on the curve; an X25519 key of
    // low order or not canonically encoded. Public identity files (§7.2) and trust stores (§7.3)
    // apply it; keys derived from private keys always pass.
    std::string key_problem() const;

    friend bool operator==(const PublicIdentity&, const PublicIdentity&) = default;
};

class Identity {
  public:
    Identity() = default;
    Identity(SignKeyPair sign, DhKeyPair dh, CryptoProvider& provider);

    static Identity generate(CryptoProvider& provider);
    // From the two 32-byte private values (test vectors, file loading).
    [[nodiscard]] static std::error_code from_private(CryptoProvider& provider, ByteView sign_seed,
                                                      ByteView dh_private, Identity& out);

    const SignKeyPair& sign_key() const noexcept { return sign_; }
    const DhKeyPair& dh_key() const noexcept { return dh_; }
    const PublicIdentity& public_identity() const noexcept { return public_; }
    const Fingerprint& fingerprint() const noexcept { return fingerprint_; }

  private:
    SignKeyPair sign_;
    DhKeyPair dh_;
    PublicIdentity public_;
    Fingerprint fingerprint_;
};

// A file-level error: the code plus a message that names the file and the problem. Every
// function returning one reports failure only through it, so it must not be ignored.
struct [[nodiscard]] FileError {
    std::error_code code;
    std::string message;
    explicit operator bool() const noexcept { return static_cast<bool>(code); }
};

// Private identity file: written with mode 0600; loading refuses a file readable by group or
// others. Text: "sdmp-private-v1 <64 hex sign seed> <64 hex dh private>\n".
FileError save_identity(const Identity& identity, const std::filesystem::path& path);
FileError load_identity(CryptoProvider& provider, const std::filesystem::path& path, Identity& out);

// Public identity file / line: "sdmp-public-v1 <128 hex canonical bytes>[ name=NAME][
// address=HOST:PORT]".
std::string format_public_identity(const PublicIdentity& identity);
FileError save_public_identity(const PublicIdentity& identity, const std::filesystem::path& path);
// Accepts a public file or a private file (deriving the public part). A public file whose keys
// PublicIdentity::key_problem refuses fails with errc::file_malformed and that problem.
FileError load_public_identity(CryptoProvider& provider, const std::filesystem::path& path,
                               PublicIdentity& out);

}  // namespace sdmp::crypto
