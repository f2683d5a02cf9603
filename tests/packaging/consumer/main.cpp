// Links every layer through the installed package: an identity (crypto), a connection message
// (protocol) and a router (framework).
#include <sdmp/protocol/handshake.hpp>
#include <sdmp/sdmp.hpp>

#include <iostream>
#include <variant>

int main() {
    auto& provider = sdmp::crypto::default_provider();
    auto self = sdmp::crypto::Identity::generate(provider);
    auto peer = sdmp::crypto::Identity::generate(provider);
    sdmp::crypto::TrustStore trust;
    if (trust.add({peer.public_identity(), peer.fingerprint(), "peer", ""}))
        return 1;

    sdmp::protocol::HandshakeConfig config;
    config.provider = &provider;
    config.self = &self;
    config.trust = &trust;
    auto handshake = sdmp::protocol::HandshakeState::initiator(config, peer.fingerprint());
    auto action = handshake.next();
    auto* send = std::get_if<sdmp::protocol::action::Send>(&action);

    sdmp::Router router;
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> boost::asio::awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::move(body));
    });
    if (send == nullptr || router.find("echo") == nullptr)
        return 1;
    std::cout << "consumer ok " << send->bytes.size() << "\n";
    return 0;
}
