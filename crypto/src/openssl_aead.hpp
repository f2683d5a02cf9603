// AES-256-GCM and ChaCha20-Poly1305 sealers and openers on OpenSSL's EVP_CIPHER_CTX, for the
// OpenSSL provider. Private to crypto/src.
#pragma once

#include <openssl/evp.h>

#include <memory>

#include "sdmp/crypto/crypto_provider.hpp"

namespace sdmp::crypto::openssl {

// `cipher` is a fetched AEAD with a 32-byte key and a 12-byte default nonce; the returned
// object keeps its own reference. The key is copied into the cipher context, which libcrypto
// wipes when it is freed. Throws std::invalid_argument for a key of the wrong size and
// std::system_error (errc::crypto_failure) if libcrypto refuses the key.
std::unique_ptr<AeadSealer> make_sealer(EVP_CIPHER* cipher, ByteView key);
std::unique_ptr<AeadOpener> make_opener(EVP_CIPHER* cipher, ByteView key);

}  // namespace sdmp::crypto::openssl
