#include "trust_reload.hpp"

#include <utility>

namespace sdmp::apps {
namespace {

// The framework hook this needs is Server::update_trust(crypto::TrustStore) (docs/apps.md
// "Trust reload"); until the framework has it, new handshakes keep using the store the server
// started with, and the gate (ServerOptions::on_session) closes sessions of removed peers
// right after their handshake. Detected at compile time so the hook is used once it exists.
template <typename S>
bool update_server_trust(S& server, crypto::TrustStore& store) {
    if constexpr (requires { server.update_trust(std::move(store)); }) {
        server.update_trust(std::move(store));
        return true;
    } else {
        return false;
    }
}

}  // namespace

bool TrustGate::trusts(const crypto::Fingerprint& fingerprint) const {
    std::lock_guard lock(mutex_);
    return store_.find(fingerprint) != nullptr;
}

void TrustGate::replace(crypto::TrustStore store) {
    std::lock_guard lock(mutex_);
    store_ = std::move(store);
}

TrustReload reload_trust(const std::filesystem::path& path, Server& server, TrustGate& gate,
                         SessionSet& sessions) {
    TrustReload result;
    crypto::TrustStore fresh;
    if (auto error = crypto::TrustStore::load(crypto::default_provider(), path, fresh)) {
        result.error = error.message;
        return result;
    }
    result.peers = fresh.size();
    gate.replace(fresh);
    result.closed = sessions.abort_if(
        [&](const PeerInfo& peer) { return fresh.find(peer.fingerprint) == nullptr; });
    result.handshakes_updated = update_server_trust(server, fresh);
    return result;
}

}  // namespace sdmp::apps
