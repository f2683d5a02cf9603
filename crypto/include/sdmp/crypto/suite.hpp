// Cipher suites: plain descriptors naming the primitives a connection uses (protocol.md §2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace sdmp::crypto {

enum class AeadAlgorithm : std::uint8_t { aes_256_gcm, chacha20_poly1305 };

enum class SuiteId : std::uint8_t {
    x25519_ed25519_aes256gcm_sha256 = 1,
    x25519_ed25519_chacha20poly1305_sha256 = 2,
};

struct Suite {
    SuiteId id;
    AeadAlgorithm aead;
    std::string_view name;
};

inline constexpr std::size_t k_dh_public_size = 32;  // X25519
inline constexpr std::size_t k_dh_private_size = 32;
inline constexpr std::size_t k_dh_shared_size = 32;
inline constexpr std::size_t k_sign_public_size = 32;  // Ed25519
inline constexpr std::size_t k_sign_seed_size = 32;
inline constexpr std::size_t k_signature_size = 64;
inline constexpr std::size_t k_hash_size = 32;  // SHA-256
inline constexpr std::size_t k_aead_key_size = 32;
inline constexpr std::size_t k_aead_nonce_size = 12;
inline constexpr std::size_t k_aead_tag_size = 16;

// All suites this build knows, in order of preference (the first is the default).
std::span<const Suite> all_suites() noexcept;
std::optional<Suite> find_suite(std::uint8_t id) noexcept;
// The ids of all_suites(), in the same order: the default for "accept every suite". A function
// rather than a braced list in default member initialisers, because GCC 12 rejects such a list
// when the enclosing options struct is a defaulted argument inside a co_await expression.
std::vector<SuiteId> all_suite_ids();
const Suite& default_suite() noexcept;

}  // namespace sdmp::crypto
