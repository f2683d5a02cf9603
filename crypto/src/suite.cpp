// Suite descriptors (protocol.md §2).
#include "sdmp/crypto/suite.hpp"

#include <array>

namespace sdmp::crypto {
namespace {

// Order of preference: suite 1 (AES-256-GCM, hardware-accelerated here) is the default.
constexpr std::array<Suite, 2> k_suites{{
    {SuiteId::x25519_ed25519_aes256gcm_sha256, AeadAlgorithm::aes_256_gcm,
     "X25519-Ed25519-AES256GCM-SHA256"},
    {SuiteId::x25519_ed25519_chacha20poly1305_sha256, AeadAlgorithm::chacha20_poly1305,
     "X25519-Ed25519-CHACHA20POLY1305-SHA256"},
}};

}  // namespace

std::span<const Suite> all_suites() noexcept {
    return k_suites;
}

std::vector<SuiteId> all_suite_ids() {
    std::vector<SuiteId> ids;
    for (const Suite& s : all_suites())
        ids.push_back(s.id);
    return ids;
}

std::optional<Suite> find_suite(std::uint8_t id) noexcept {
    for (const Suite& suite : k_suites) {
        if (static_cast<std::uint8_t>(suite.id) == id)
            return suite;
    }
    return std::nullopt;
}

const Suite& default_suite() noexcept {
    return k_suites.front();
}

}  // namespace sdmp::crypto
