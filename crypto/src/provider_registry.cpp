// Providers by name (crypto_provider.hpp, find_provider): a table of the providers this build
// has, each a process-wide instance made on first use.
#include <array>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"

namespace sdmp::crypto {
namespace {

CryptoProvider* botan_instance() {
    return &default_provider();
}

#if defined(SDMP_HAVE_OPENSSL)
CryptoProvider* openssl_instance() {
    // A function-local static: made once, even when several threads ask at the same time. A
    // libcrypto without SHA-256 or HKDF (make_openssl_provider() throws) leaves it null for
    // good: that libcrypto will not change while the process runs.
    static const std::unique_ptr<CryptoProvider> instance =
        []() noexcept -> std::unique_ptr<CryptoProvider> {
        try {
            return make_openssl_provider();
        } catch (const std::exception&) {
            return nullptr;
        }
    }();
    return instance.get();
}
#endif

struct Entry {
    std::string_view name;
    CryptoProvider* (*instance)();
};

// The default first: provider_names() lists them in this order.
#if defined(SDMP_HAVE_OPENSSL)
constexpr std::array<Entry, 2> k_providers{{
    {"botan", &botan_instance},
    {"openssl", &openssl_instance},
}};
#else
constexpr std::array<Entry, 1> k_providers{{
    {"botan", &botan_instance},
}};
#endif

}  // namespace

CryptoProvider* find_provider(std::string_view name) {
    for (const Entry& entry : k_providers) {
        if (entry.name == name)
            return entry.instance();
    }
    return nullptr;
}

std::vector<std::string> provider_names() {
    std::vector<std::string> names;
    for (const Entry& entry : k_providers)
        names.emplace_back(entry.name);
    return names;
}

}  // namespace sdmp::crypto
