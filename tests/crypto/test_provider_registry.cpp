// Providers by name (find_provider, provider_names): the names this build has, one
// process-wide instance per name, and nullptr for anything else.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "sdmp/crypto/crypto_provider.hpp"

using namespace sdmp;
using namespace sdmp::crypto;

TEST_CASE("provider names list what this build has, the default first", "[crypto][provider]") {
    const std::vector<std::string> names = provider_names();
#if defined(SDMP_HAVE_OPENSSL)
    CHECK(names == std::vector<std::string>{"botan", "openssl"});
#else
    CHECK(names == std::vector<std::string>{"botan"});
#endif
    for (const std::string& name : names) {
        INFO(name);
        CHECK(find_provider(name) != nullptr);
    }
}

TEST_CASE("find_provider returns process-wide instances by exact name", "[crypto][provider]") {
    CHECK(find_provider("botan") == &default_provider());
#if defined(SDMP_HAVE_OPENSSL)
    CryptoProvider* openssl = find_provider("openssl");
    REQUIRE(openssl != nullptr);
    CHECK(openssl->name() == "openssl-3");
    CHECK(find_provider("openssl") == openssl);
    CHECK(openssl->sha256(as_bytes("abc")) == default_provider().sha256(as_bytes("abc")));
#else
    CHECK(find_provider("openssl") == nullptr);
#endif
    for (const char* unknown :
         {"", "Botan", "OPENSSL", "botan-2", "openssl-3", " botan", "libsodium"})
        CHECK(find_provider(unknown) == nullptr);
}

TEST_CASE("find_provider gives every thread the same instance", "[crypto][provider][threads]") {
    // The first use of each instance may race: all threads must still see one instance.
    const std::vector<std::string> names = provider_names();
    std::vector<std::vector<CryptoProvider*>> seen(4);
    std::vector<std::thread> threads;
    for (auto& list : seen) {
        threads.emplace_back([&names, &list] {
            for (const std::string& name : names)
                list.push_back(find_provider(name));
        });
    }
    for (auto& thread : threads)
        thread.join();
    for (const auto& list : seen) {
        CHECK(list == seen.front());
        CHECK(std::find(list.begin(), list.end(), nullptr) == list.end());
    }
}
