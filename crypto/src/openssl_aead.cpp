// The OpenSSL provider's AEADs (openssl_aead.hpp). One EVP_CIPHER_CTX per direction is keyed
// once; each message only sets a new nonce, so the key schedule is not redone per record.
#include "openssl_aead.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <system_error>

#include "openssl_support.hpp"
#include "sdmp/error.hpp"

namespace sdmp::crypto::openssl {
namespace {

CipherCtxPtr keyed_context(EVP_CIPHER* cipher, ByteView key, int encrypt) {
    if (key.size() != k_aead_key_size) {
        throw std::invalid_argument("AEAD key: expected " + std::to_string(k_aead_key_size) +
                                    " bytes, got " + std::to_string(key.size()));
    }
    if (EVP_CIPHER_get_key_length(cipher) != static_cast<int>(k_aead_key_size) ||
        EVP_CIPHER_get_iv_length(cipher) != static_cast<int>(k_aead_nonce_size)) {
        throw std::system_error(make_error_code(errc::crypto_failure),
                                "unexpected AEAD key or nonce size in OpenSSL");
    }
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx || EVP_CipherInit_ex2(ctx.get(), cipher, key.data(), nullptr, encrypt, nullptr) != 1)
        throw_failure("AEAD key setup");
    return ctx;
}

// Sets the nonce for the next message and feeds the associated data; the key stays.
bool start(EVP_CIPHER_CTX* ctx, const Nonce& nonce, ByteView aad) {
    if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), -1, nullptr) != 1)
        return false;
    for (std::size_t done = 0; done < aad.size();) {
        const std::size_t n = std::min(aad.size() - done, k_max_update);
        int produced = 0;
        if (EVP_CipherUpdate(ctx, nullptr, &produced, aad.data() + done, static_cast<int>(n)) != 1)
            return false;
        done += n;
    }
    return true;
}

// Both AEADs are stream ciphers underneath: each update returns exactly what it was given,
// which is what lets the record layer work in place.
bool crypt_in_place(EVP_CIPHER_CTX* ctx, MutableByteView inout) {
    for (std::size_t done = 0; done < inout.size();) {
        const std::size_t n = std::min(inout.size() - done, k_max_update);
        int produced = 0;
        std::uint8_t* p = inout.data() + done;
        if (EVP_CipherUpdate(ctx, p, &produced, p, static_cast<int>(n)) != 1 ||
            produced != static_cast<int>(n)) {
            return false;
        }
        done += n;
    }
    return true;
}

class OpenSslSealer final : public AeadSealer {
  public:
    OpenSslSealer(EVP_CIPHER* cipher, ByteView key) : ctx_(keyed_context(cipher, key, 1)) {}

    void seal(const Nonce& nonce, ByteView aad, MutableByteView inout, Tag& tag_out) override {
        std::array<std::uint8_t, 16> no_output{};
        int final_size = 0;
        if (!start(ctx_.get(), nonce, aad) || !crypt_in_place(ctx_.get(), inout) ||
            EVP_CipherFinal_ex(ctx_.get(), no_output.data(), &final_size) != 1 || final_size != 0 ||
            EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(tag_out.size()),
                                tag_out.data()) != 1) {
            throw_failure("AEAD seal");
        }
    }

  private:
    CipherCtxPtr ctx_;
};

class OpenSslOpener final : public AeadOpener {
  public:
    OpenSslOpener(EVP_CIPHER* cipher, ByteView key) : ctx_(keyed_context(cipher, key, 0)) {}

    std::error_code open(const Nonce& nonce, ByteView aad, MutableByteView inout,
                         const Tag& tag) override {
        // The tag parameter is written through a non-const pointer, hence the copy.
        Tag expected = tag;
        if (!start(ctx_.get(), nonce, aad) ||
            EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_AEAD_SET_TAG,
                                static_cast<int>(expected.size()), expected.data()) != 1 ||
            !crypt_in_place(ctx_.get(), inout)) {
            return fail(inout, errc::crypto_failure);
        }
        std::array<std::uint8_t, 16> no_output{};
        int final_size = 0;
        // The tag is only checked here, after the whole message was decrypted into `inout`.
        if (EVP_CipherFinal_ex(ctx_.get(), no_output.data(), &final_size) != 1)
            return fail(inout, errc::authentication_failed);
        if (final_size != 0)
            return fail(inout, errc::crypto_failure);
        return {};
    }

  private:
    // Unauthenticated plaintext must not outlive the call, even in a buffer the caller is told
    // to discard.
    static std::error_code fail(MutableByteView inout, errc code) noexcept {
        secure_wipe(inout.data(), inout.size());
        clear_errors();
        return code;
    }

    CipherCtxPtr ctx_;
};

}  // namespace

std::unique_ptr<AeadSealer> make_sealer(EVP_CIPHER* cipher, ByteView key) {
    return std::make_unique<OpenSslSealer>(cipher, key);
}

std::unique_ptr<AeadOpener> make_opener(EVP_CIPHER* cipher, ByteView key) {
    return std::make_unique<OpenSslOpener>(cipher, key);
}

}  // namespace sdmp::crypto::openssl
