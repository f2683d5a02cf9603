// The OpenSSL 3 (libcrypto) implementation of CryptoProvider. It returns the same bytes and the
// same error codes as the Botan provider for every input, so either can serve a connection and
// the protocol vectors reproduce with both (tests/crypto/test_provider_cross.cpp).
//
// Thread safety: the provider holds only algorithms fetched at construction, which libcrypto
// lets any number of threads use at once; every operation makes its own context. Sealers and
// openers keep their own reference to the cipher, so they may outlive the provider.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/proverr.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <system_error>

#include "openssl_aead.hpp"
#include "openssl_support.hpp"
#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/error.hpp"

namespace sdmp::crypto {
namespace {

using namespace openssl;

constexpr std::size_t k_hkdf_max_output = 255 * k_hash_size;  // RFC 5869 §2.3

void require_size(std::size_t actual, std::size_t expected, const char* what) {
    if (actual != expected) {
        throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(expected) +
                                    " bytes, got " + std::to_string(actual));
    }
}

// Fills `out` from libcrypto's DRBG (seeded from the OS), in pieces it accepts.
template <int (*Generate)(unsigned char*, int)>
void generate_random(MutableByteView out, const char* what) {
    for (std::size_t done = 0; done < out.size();) {
        const std::size_t n = std::min(out.size() - done, k_max_update);
        if (Generate(out.data() + done, static_cast<int>(n)) != 1)
            throw_failure(what);
        done += n;
    }
}

PkeyPtr private_key(const char* type, ByteView raw) {
    return PkeyPtr(EVP_PKEY_new_raw_private_key_ex(nullptr, type, nullptr, raw.data(), raw.size()));
}

PkeyPtr public_key(const char* type, ByteView raw) {
    return PkeyPtr(EVP_PKEY_new_raw_public_key_ex(nullptr, type, nullptr, raw.data(), raw.size()));
}

bool raw_public(const EVP_PKEY* key, std::array<std::uint8_t, 32>& out) {
    std::size_t size = out.size();
    return EVP_PKEY_get_raw_public_key(key, out.data(), &size) == 1 && size == out.size();
}

bool all_zero_ct(const std::uint8_t* data, std::size_t size) noexcept {
    // Constant-time OR over the bytes: the DH output is secret (protocol.md §3.3).
    std::uint8_t acc = 0;
    for (std::size_t i = 0; i < size; ++i)
        acc = static_cast<std::uint8_t>(acc | data[i]);
    return acc == 0;
}

// libcrypto's X25519 refuses an all-zero result itself (RFC 7748 §6.1) and reports it with
// this reason; once both keys are built, nothing else makes the derivation fail that way.
bool last_error_is_zero_result() noexcept {
    const unsigned long code = ERR_peek_last_error();
    return ERR_GET_LIB(code) == ERR_LIB_PROV &&
           ERR_GET_REASON(code) == PROV_R_FAILED_DURING_DERIVATION;
}

// Octet-string parameters are only read, but OSSL_PARAM stores a non-const pointer.
OSSL_PARAM octets(const char* name, ByteView bytes) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<unsigned char*>(data_or_empty(bytes)),
                                             bytes.size());
}

class OpenSslProvider final : public CryptoProvider {
  public:
    OpenSslProvider()
        : sha256_(EVP_MD_fetch(nullptr, "SHA2-256", nullptr)),
          hkdf_(EVP_KDF_fetch(nullptr, "HKDF", nullptr)),
          aes_256_gcm_(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr)),
          chacha20_poly1305_(EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr)) {
        if (!sha256_ || !hkdf_)
            throw_failure("OpenSSL lacks SHA-256 or HKDF");
        // A missing AEAD only fails when a connection asks for it, as with Botan.
        clear_errors();
    }

    std::string_view name() const noexcept override { return "openssl-3"; }

    void random(MutableByteView out) override { generate_random<RAND_bytes>(out, "RAND_bytes"); }

    DhKeyPair dh_generate() override {
        SecretBytes secret(k_dh_private_size);
        generate_random<RAND_priv_bytes>(secret.span(), "RAND_priv_bytes");
        // X25519 clamps the scalar itself (RFC 7748 §5), so any 32 random bytes are a key.
        DhKeyPair pair;
        if (dh_from_private(secret.view(), pair))
            throw_failure("X25519 key generation");
        return pair;
    }

    std::error_code dh_from_private(ByteView private_key_bytes, DhKeyPair& out) override {
        if (private_key_bytes.size() != k_dh_private_size)
            return errc::invalid_key;
        const PkeyPtr key = private_key("X25519", private_key_bytes);
        if (!key || !raw_public(key.get(), out.public_key)) {
            clear_errors();
            return errc::crypto_failure;
        }
        out.private_key = SecretBytes(private_key_bytes);
        return {};
    }

    std::error_code dh_agree(const SecretBytes& own, ByteView peer_public,
                             SecretBytes& shared_out) override {
        if (own.size() != k_dh_private_size || peer_public.size() != k_dh_public_size)
            return errc::invalid_key;
        const PkeyPtr key = private_key("X25519", own.view());
        const PkeyPtr peer = public_key("X25519", peer_public);
        const PkeyCtxPtr ctx(key ? EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr)
                                 : nullptr);
        // No peer validation: X25519 takes any 32 bytes as a u-coordinate (RFC 7748 §5), as
        // Botan does; the low-order case is caught on the result below.
        if (!peer || !ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
            EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 0) != 1) {
            clear_errors();
            return errc::crypto_failure;
        }
        SecretBytes shared(k_dh_shared_size);
        std::size_t size = shared.size();
        if (EVP_PKEY_derive(ctx.get(), shared.data(), &size) != 1) {
            const bool zero = last_error_is_zero_result();
            clear_errors();
            return zero ? errc::low_order_point : errc::crypto_failure;
        }
        if (size != k_dh_shared_size)
            return errc::crypto_failure;
        // protocol.md §3.3; kept although libcrypto checks too, so the rule does not rest on
        // a library detail.
        if (all_zero_ct(shared.data(), shared.size()))
            return errc::low_order_point;
        shared_out = std::move(shared);
        return {};
    }

    SignKeyPair sign_generate() override {
        SecretBytes seed(k_sign_seed_size);
        generate_random<RAND_priv_bytes>(seed.span(), "RAND_priv_bytes");
        SignKeyPair pair;
        if (sign_from_seed(seed.view(), pair))
            throw_failure("Ed25519 key generation");
        return pair;
    }

    std::error_code sign_from_seed(ByteView seed, SignKeyPair& out) override {
        if (seed.size() != k_sign_seed_size)
            return errc::invalid_key;
        const PkeyPtr key = private_key("ED25519", seed);
        if (!key || !raw_public(key.get(), out.public_key)) {
            clear_errors();
            return errc::crypto_failure;
        }
        out.seed = SecretBytes(seed);
        return {};
    }

    Signature sign(const SignKeyPair& key, ByteView message) override {
        require_size(key.seed.size(), k_sign_seed_size, "Ed25519 seed");
        // libcrypto recomputes the public key from the seed; `key.public_key` is not read.
        // Pairs only come from sign_from_seed, so it is the same key.
        const PkeyPtr pkey = private_key("ED25519", key.seed.view());
        const MdCtxPtr ctx(EVP_MD_CTX_new());
        Signature signature{};
        std::size_t size = signature.size();
        if (!pkey || !ctx ||
            EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pkey.get(),
                                  nullptr) != 1 ||
            EVP_DigestSign(ctx.get(), signature.data(), &size, data_or_empty(message),
                           message.size()) != 1 ||
            size != signature.size()) {
            throw_failure("Ed25519 sign");
        }
        return signature;
    }

    bool verify(const SignPublic& public_key_bytes, ByteView message,
                const Signature& signature) override {
        const PkeyPtr key = public_key("ED25519", public_key_bytes);
        const MdCtxPtr ctx(EVP_MD_CTX_new());
        const bool ok = key && ctx &&
                        EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr,
                                                key.get(), nullptr) == 1 &&
                        EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                                         data_or_empty(message), message.size()) == 1;
        // Contract: any malformed key or signature is just "does not verify".
        if (!ok)
            clear_errors();
        return ok;
    }

    Digest sha256(ByteView data) override {
        const ByteView parts[] = {data};
        return sha256(std::span<const ByteView>(parts));
    }

    Digest sha256(std::span<const ByteView> parts) override {
        const MdCtxPtr ctx(EVP_MD_CTX_new());
        if (!ctx || EVP_DigestInit_ex2(ctx.get(), sha256_.get(), nullptr) != 1)
            throw_failure("SHA-256");
        for (ByteView part : parts) {
            if (!part.empty() && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1)
                throw_failure("SHA-256");
        }
        Digest digest{};
        unsigned int size = 0;
        if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &size) != 1 || size != digest.size())
            throw_failure("SHA-256");
        return digest;
    }

    void hkdf(ByteView salt, ByteView ikm, ByteView info, MutableByteView out) override {
        if (out.size() > k_hkdf_max_output) {
            throw std::invalid_argument("HKDF output longer than 255 * 32 bytes");
        }
        if (out.empty())
            return;
        // libcrypto copies the key into the context and wipes that copy when it is freed.
        char digest[] = "SHA2-256";
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
            octets(OSSL_KDF_PARAM_KEY, ikm),
            octets(OSSL_KDF_PARAM_SALT, salt),
            octets(OSSL_KDF_PARAM_INFO, info),
            OSSL_PARAM_construct_end(),
        };
        const KdfCtxPtr ctx(EVP_KDF_CTX_new(hkdf_.get()));
        // OpenSSL 3.0 refuses an info longer than 32 KiB, which Botan accepts: that case
        // throws here (no sdmp label comes near it).
        if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1)
            throw_failure("HKDF");
    }

    std::unique_ptr<AeadSealer> make_sealer(AeadAlgorithm algorithm, ByteView key) override {
        require_size(key.size(), k_aead_key_size, "AEAD key");
        return openssl::make_sealer(&cipher(algorithm), key);
    }

    std::unique_ptr<AeadOpener> make_opener(AeadAlgorithm algorithm, ByteView key) override {
        require_size(key.size(), k_aead_key_size, "AEAD key");
        return openssl::make_opener(&cipher(algorithm), key);
    }

    bool equal(ByteView a, ByteView b) const noexcept override {
        if (a.size() != b.size())
            return false;
        if (a.empty())
            return true;
        return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
    }

  private:
    EVP_CIPHER& cipher(AeadAlgorithm algorithm) const {
        switch (algorithm) {
            case AeadAlgorithm::aes_256_gcm:
                return available(aes_256_gcm_, "AES-256-GCM");
            case AeadAlgorithm::chacha20_poly1305:
                return available(chacha20_poly1305_, "ChaCha20-Poly1305");
        }
        throw std::invalid_argument("unknown AEAD algorithm");
    }

    static EVP_CIPHER& available(const CipherPtr& cipher, const char* name) {
        if (!cipher) {
            throw std::system_error(make_error_code(errc::crypto_failure),
                                    std::string("AEAD not available in OpenSSL: ") + name);
        }
        return *cipher;
    }

    MdPtr sha256_;
    KdfPtr hkdf_;
    CipherPtr aes_256_gcm_;
    CipherPtr chacha20_poly1305_;
};

}  // namespace

std::unique_ptr<CryptoProvider> make_openssl_provider() {
    return std::make_unique<OpenSslProvider>();
}

}  // namespace sdmp::crypto
