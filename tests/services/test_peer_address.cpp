// Naming a peer on the command line: FP@HOST:PORT or a trust-store entry.
#include <catch2/catch.hpp>

#include "sdmp/services/peer_address.hpp"

using namespace sdmp;
using namespace sdmp::services;

namespace {

crypto::TrustedPeer peer(std::uint8_t seed, std::string name, std::string address) {
    crypto::PublicIdentity identity;
    identity.sign_public.fill(seed);
    identity.dh_public.fill(static_cast<std::uint8_t>(seed + 1));
    return {identity, identity.fingerprint(crypto::default_provider()), std::move(name),
            std::move(address)};
}

}  // namespace

TEST_CASE("peer addresses parse from FP@HOST:PORT and from the trust store") {
    crypto::TrustStore trust;
    const auto alpha = peer(1, "alpha", "127.0.0.1:7000");
    const auto beta = peer(3, "beta", "");
    REQUIRE_FALSE(trust.add(alpha));
    REQUIRE_FALSE(trust.add(beta));
    std::string error;

    auto direct = parse_peer_address(alpha.fingerprint.hex() + "@[::1]:9", trust, error);
    REQUIRE(direct);
    CHECK(direct->fingerprint == alpha.fingerprint);
    CHECK(direct->endpoint == "[::1]:9");
    CHECK(direct->name == "alpha");

    auto named = parse_peer_address("alpha", trust, error);
    REQUIRE(named);
    CHECK(named->endpoint == "127.0.0.1:7000");
    auto by_fingerprint = parse_peer_address(alpha.fingerprint.hex(), trust, error);
    REQUIRE(by_fingerprint);
    CHECK(by_fingerprint->fingerprint == alpha.fingerprint);

    for (const std::string& bad :
         {std::string("beta"), std::string("gamma"), std::string("12@127.0.0.1:1"),
          alpha.fingerprint.hex() + "@127.0.0.1", alpha.fingerprint.hex() + "@127.0.0.1:0",
          peer(9, "", "").fingerprint.hex() + "@127.0.0.1:1"}) {
        error.clear();
        INFO(bad);
        CHECK_FALSE(parse_peer_address(bad, trust, error));
        CHECK_FALSE(error.empty());
        CHECK(error.find('\n') == std::string::npos);
    }
}
