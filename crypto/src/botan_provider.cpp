// The Botan 2 implementation of CryptoProvider. Botan headers stay inside crypto/src (DESIGN §3).
//
// Thread safety: the provider itself holds no mutable state. Hash and KDF objects are stateful
// in Botan, so each thread keeps its own (thread_local); the OS RNG is thread-safe. Sealers and
// openers are owned by one connection direction and are not shared.
#include <botan/aead.h>
#include <botan/curve25519.h>
#include <botan/exceptn.h>
#include <botan/hash.h>
#include <botan/kdf.h>
#include <botan/mem_ops.h>
#include <botan/sodium.h>
#include <botan/system_rng.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <system_error>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/error.hpp"

namespace sdmp::crypto {
namespace {

constexpr std::size_t k_hkdf_max_output = 255 * k_hash_size;  // RFC 5869 §2.3

[[noreturn]] void throw_crypto_failure(const char* what, const std::exception& e) {
    throw std::system_error(make_error_code(errc::crypto_failure),
                            std::string(what) + ": " + e.what());
}

void require_size(std::size_t actual, std::size_t expected, const char* what) {
    if (actual != expected) {
        throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(expected) +
                                    " bytes, got " + std::to_string(actual));
    }
}

const char* botan_aead_name(AeadAlgorithm algorithm) {
    switch (algorithm) {
        case AeadAlgorithm::aes_256_gcm:
            return "AES-256/GCM";
        case AeadAlgorithm::chacha20_poly1305:
            return "ChaCha20Poly1305";
    }
    throw std::invalid_argument("unknown AEAD algorithm");
}

std::unique_ptr<Botan::AEAD_Mode> make_mode(AeadAlgorithm algorithm, ByteView key,
                                            Botan::Cipher_Dir direction) {
    require_size(key.size(), k_aead_key_size, "AEAD key");
    const char* name = botan_aead_name(algorithm);
    std::unique_ptr<Botan::AEAD_Mode> mode;
    try {
        mode = Botan::AEAD_Mode::create(name, direction);
        if (mode)
            mode->set_key(key.data(), key.size());
    } catch (const Botan::Exception& e) {
        throw_crypto_failure(name, e);
    }
    if (!mode) {
        throw std::system_error(make_error_code(errc::crypto_failure),
                                std::string("AEAD not available in Botan: ") + name);
    }
    if (mode->tag_size() != k_aead_tag_size) {
        throw std::system_error(make_error_code(errc::crypto_failure), "unexpected AEAD tag size");
    }
    return mode;
}

// The bulk of each record is processed in place with process(); only the tail shorter than
// the mode's granularity (plus the tag) goes through finish()'s secure_vector, so the record
// layer never copies a large payload. `tail_` keeps its capacity across calls.
class BotanSealer final : public AeadSealer {
  public:
    BotanSealer(AeadAlgorithm algorithm, ByteView key)
        : mode_(make_mode(algorithm, key, Botan::ENCRYPTION)),
          granularity_(std::max<std::size_t>(mode_->update_granularity(), 1)) {}

    void seal(const Nonce& nonce, ByteView aad, MutableByteView inout, Tag& tag_out) override {
        try {
            mode_->set_associated_data(aad.data(), aad.size());
            mode_->start(nonce.data(), nonce.size());
            const std::size_t bulk = inout.size() - inout.size() % granularity_;
            if (bulk != 0)
                mode_->process(inout.data(), bulk);
            tail_.assign(inout.begin() + static_cast<std::ptrdiff_t>(bulk), inout.end());
            mode_->finish(tail_);
        } catch (const Botan::Exception& e) {
            throw_crypto_failure("AEAD seal", e);
        }
        const std::size_t rest = inout.size() - (inout.size() - inout.size() % granularity_);
        if (tail_.size() != rest + k_aead_tag_size) {
            throw std::system_error(make_error_code(errc::crypto_failure),
                                    "AEAD seal produced an unexpected length");
        }
        std::copy_n(tail_.begin(), rest, inout.end() - static_cast<std::ptrdiff_t>(rest));
        std::copy_n(tail_.begin() + static_cast<std::ptrdiff_t>(rest), k_aead_tag_size,
                    tag_out.begin());
    }

  private:
    std::unique_ptr<Botan::AEAD_Mode> mode_;
    std::size_t granularity_;
    Botan::secure_vector<std::uint8_t> tail_;
};

class BotanOpener final : public AeadOpener {
  public:
    BotanOpener(AeadAlgorithm algorithm, ByteView key)
        : mode_(make_mode(algorithm, key, Botan::DECRYPTION)),
          granularity_(std::max<std::size_t>(mode_->update_granularity(), 1)) {}

    std::error_code open(const Nonce& nonce, ByteView aad, MutableByteView inout,
                         const Tag& tag) override {
        const std::size_t bulk = inout.size() - inout.size() % granularity_;
        const std::size_t rest = inout.size() - bulk;
        try {
            mode_->set_associated_data(aad.data(), aad.size());
            mode_->start(nonce.data(), nonce.size());
            if (bulk != 0)
                mode_->process(inout.data(), bulk);
            tail_.assign(inout.begin() + static_cast<std::ptrdiff_t>(bulk), inout.end());
            tail_.insert(tail_.end(), tag.begin(), tag.end());
            mode_->finish(tail_);
        } catch (const Botan::Invalid_Authentication_Tag&) {
            // The mode resets itself in finish(). process() already decrypted the bulk into
            // `inout`: unauthenticated plaintext must not outlive the call, even in a buffer
            // the caller is told to discard.
            secure_wipe(inout.data(), inout.size());
            return errc::authentication_failed;
        } catch (const Botan::Exception&) {
            reset();
            secure_wipe(inout.data(), inout.size());
            return errc::crypto_failure;
        }
        if (tail_.size() != rest)
            return errc::crypto_failure;
        std::copy_n(tail_.begin(), rest, inout.begin() + static_cast<std::ptrdiff_t>(bulk));
        return {};
    }

  private:
    void reset() noexcept {
        try {
            mode_->reset();
        } catch (const Botan::Exception&) {
            // reset() only clears per-message state; nothing more can be done here, and the
            // next start() re-initialises the message state anyway.
            return;
        }
    }

    std::unique_ptr<Botan::AEAD_Mode> mode_;
    std::size_t granularity_;
    Botan::secure_vector<std::uint8_t> tail_;
};

// Per-thread Botan objects: HashFunction and KDF carry state between calls.
Botan::HashFunction& thread_sha256() {
    thread_local std::unique_ptr<Botan::HashFunction> hash =
        Botan::HashFunction::create_or_throw("SHA-256");
    return *hash;
}

Botan::KDF& thread_hkdf() {
    thread_local std::unique_ptr<Botan::KDF> kdf = [] {
        auto created = Botan::KDF::create("HKDF(SHA-256)");
        if (!created)
            throw std::runtime_error("Botan lacks HKDF(SHA-256)");
        return created;
    }();
    return *kdf;
}

bool all_zero_ct(const std::uint8_t* data, std::size_t size) noexcept {
    // Constant-time OR over the bytes: the DH output is secret (protocol.md §3.3).
    std::uint8_t acc = 0;
    for (std::size_t i = 0; i < size; ++i)
        acc = static_cast<std::uint8_t>(acc | data[i]);
    return acc == 0;
}

// RFC 8032 §5.1.7 requires S < L. Botan 2 checks only the top three bits of S, which lets
// S + L, a second encoding of the same signature, verify too; OpenSSL (and Botan 3) refuse it,
// and the providers must give the same verdicts.
bool s_below_group_order(const Signature& signature) noexcept {
    static constexpr std::array<std::uint8_t, 32> k_order_le = {
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
        0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
    // Public data: no need for a constant-time comparison.
    for (std::size_t i = k_order_le.size(); i-- > 0;) {
        const std::uint8_t s = signature[k_signature_size / 2 + i];
        if (s != k_order_le[i])
            return s < k_order_le[i];
    }
    return false;
}

class BotanProvider final : public CryptoProvider {
  public:
    std::string_view name() const noexcept override { return "botan-2"; }

    void random(MutableByteView out) override {
        if (out.empty())
            return;
        try {
            Botan::system_rng().randomize(out.data(), out.size());
        } catch (const Botan::Exception& e) {
            throw_crypto_failure("system RNG", e);
        }
    }

    DhKeyPair dh_generate() override {
        DhKeyPair pair;
        pair.private_key = SecretBytes(k_dh_private_size);
        random(pair.private_key.span());
        // X25519 clamps the scalar itself (RFC 7748 §5), so any 32 random bytes are a key.
        Botan::curve25519_basepoint(pair.public_key.data(), pair.private_key.data());
        return pair;
    }

    std::error_code dh_from_private(ByteView private_key, DhKeyPair& out) override {
        if (private_key.size() != k_dh_private_size)
            return errc::invalid_key;
        out.private_key = SecretBytes(private_key);
        Botan::curve25519_basepoint(out.public_key.data(), out.private_key.data());
        return {};
    }

    std::error_code dh_agree(const SecretBytes& private_key, ByteView peer_public,
                             SecretBytes& shared_out) override {
        if (private_key.size() != k_dh_private_size || peer_public.size() != k_dh_public_size) {
            return errc::invalid_key;
        }
        SecretBytes shared(k_dh_shared_size);
        Botan::curve25519_donna(shared.data(), private_key.data(), peer_public.data());
        // protocol.md §3.3: a low-order peer value gives an all-zero result; reject it.
        if (all_zero_ct(shared.data(), shared.size()))
            return errc::low_order_point;
        shared_out = std::move(shared);
        return {};
    }

    SignKeyPair sign_generate() override {
        SecretBytes seed(k_sign_seed_size);
        random(seed.span());
        SignKeyPair pair;
        // Cannot fail: the seed has the right size.
        (void)sign_from_seed(seed.view(), pair);
        return pair;
    }

    std::error_code sign_from_seed(ByteView seed, SignKeyPair& out) override {
        if (seed.size() != k_sign_seed_size)
            return errc::invalid_key;
        SecretBytes expanded(64);
        Botan::Sodium::crypto_sign_ed25519_seed_keypair(out.public_key.data(), expanded.data(),
                                                        seed.data());
        out.seed = SecretBytes(seed);
        return {};
    }

    Signature sign(const SignKeyPair& key, ByteView message) override {
        require_size(key.seed.size(), k_sign_seed_size, "Ed25519 seed");
        // Botan's expanded secret key is seed || public key (RFC 8032 §5.1.5 keeps the public
        // key beside the seed). The pair is only ever built by sign_from_seed, so the public
        // half matches the seed.
        SecretBytes expanded(64);
        std::copy_n(key.seed.data(), k_sign_seed_size, expanded.data());
        std::copy_n(key.public_key.data(), k_sign_public_size, expanded.data() + k_sign_seed_size);
        Signature signature{};
        try {
            unsigned long long signature_size = 0;
            Botan::Sodium::crypto_sign_ed25519_detached(
                signature.data(), &signature_size, message.data(), message.size(), expanded.data());
        } catch (const Botan::Exception& e) {
            throw_crypto_failure("Ed25519 sign", e);
        }
        return signature;
    }

    bool verify(const SignPublic& public_key, ByteView message,
                const Signature& signature) override {
        if (!s_below_group_order(signature))
            return false;
        try {
            return Botan::Sodium::crypto_sign_ed25519_verify_detached(
                       signature.data(), message.data(), message.size(), public_key.data()) == 0;
        } catch (const Botan::Exception&) {
            // Contract: any malformed key or signature is just "does not verify".
            return false;
        }
    }

    Digest sha256(ByteView data) override {
        const ByteView parts[] = {data};
        return sha256(std::span<const ByteView>(parts));
    }

    Digest sha256(std::span<const ByteView> parts) override {
        Digest digest{};
        try {
            Botan::HashFunction& hash = thread_sha256();
            for (ByteView part : parts)
                hash.update(part.data(), part.size());
            hash.final(digest.data());
        } catch (const Botan::Exception& e) {
            throw_crypto_failure("SHA-256", e);
        }
        return digest;
    }

    void hkdf(ByteView salt, ByteView ikm, ByteView info, MutableByteView out) override {
        if (out.size() > k_hkdf_max_output) {
            throw std::invalid_argument("HKDF output longer than 255 * 32 bytes");
        }
        if (out.empty())
            return;
        try {
            // Botan's argument order: kdf(out, secret, salt, label) = HKDF(salt, ikm, info).
            thread_hkdf().kdf(out.data(), out.size(), ikm.data(), ikm.size(), salt.data(),
                              salt.size(), info.data(), info.size());
        } catch (const Botan::Exception& e) {
            throw_crypto_failure("HKDF", e);
        }
    }

    std::unique_ptr<AeadSealer> make_sealer(AeadAlgorithm algorithm, ByteView key) override {
        return std::make_unique<BotanSealer>(algorithm, key);
    }

    std::unique_ptr<AeadOpener> make_opener(AeadAlgorithm algorithm, ByteView key) override {
        return std::make_unique<BotanOpener>(algorithm, key);
    }

    bool equal(ByteView a, ByteView b) const noexcept override {
        if (a.size() != b.size())
            return false;
        if (a.empty())
            return true;
        return Botan::constant_time_compare(a.data(), b.data(), a.size());
    }
};

}  // namespace

std::unique_ptr<CryptoProvider> make_botan_provider() {
    return std::make_unique<BotanProvider>();
}

CryptoProvider& default_provider() {
    static BotanProvider provider;
    return provider;
}

}  // namespace sdmp::crypto
