// Reloading a serving node's trust store at runtime (SIGHUP): key rotation and revocation
// without downtime. Peers still trusted keep their sessions; sessions of removed peers are
// closed at once.
#pragma once

#include <cstddef>
#include <filesystem>
#include <mutex>
#include <string>

#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/framework/server.hpp"
#include "sdmp/framework/session_set.hpp"

namespace sdmp::apps {

// The trust store the node currently accepts. Thread-safe.
class TrustGate {
  public:
    explicit TrustGate(crypto::TrustStore store) : store_(std::move(store)) {}
    bool trusts(const crypto::Fingerprint& fingerprint) const;
    void replace(crypto::TrustStore store);

  private:
    mutable std::mutex mutex_;
    crypto::TrustStore store_;
};

struct TrustReload {
    std::string error;                // set when the store could not be loaded (nothing changed)
    std::size_t peers = 0;            // peers in the new store
    std::size_t closed = 0;           // sessions closed because their peer was removed
    bool handshakes_updated = false;  // the server's handshakes use the new store too
};

// Loads `path`; on success makes it the gate's store, closes the sessions of peers that are
// not in it, and hands it to the server for new handshakes when the framework supports it.
TrustReload reload_trust(const std::filesystem::path& path, Server& server, TrustGate& gate,
                         SessionSet& sessions);

}  // namespace sdmp::apps
