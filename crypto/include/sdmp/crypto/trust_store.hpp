// The set of peers a node knows in advance, like authorized_keys / known_hosts
// (protocol.md §7.3). Lookups are O(1) by fingerprint.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sdmp/crypto/identity.hpp"

namespace sdmp::crypto {

struct TrustedPeer {
    PublicIdentity identity;
    Fingerprint fingerprint;
    std::string name;     // may be empty
    std::string address;  // HOST:PORT, may be empty
};

class TrustStore {
  public:
    // Loads a store from a file (one peer per line, '#' comments) or a folder (every
    // regular file ending in ".pub", one peer each). A missing file is an error;
    // use TrustStore{} for an empty store.
    static FileError load(CryptoProvider& provider, const std::filesystem::path& path,
                          TrustStore& out);
    // Writes the store as a single file (atomically: temp file + rename). If `path` is an
    // existing folder, updates its ".pub" files instead (protocol.md §7.3).
    FileError save(const std::filesystem::path& path) const;

    // Fails with errc::duplicate_peer if the fingerprint or a non-empty name is present, and
    // with errc::malformed if the name or address does not match protocol.md §7.2.
    std::error_code add(TrustedPeer peer);
    // Removes by fingerprint hex or by name; errc::unknown_peer when absent.
    std::error_code remove(std::string_view fingerprint_or_name);

    const TrustedPeer* find(const Fingerprint& fingerprint) const noexcept;
    const TrustedPeer* find_by_name(std::string_view name) const noexcept;
    // A 64-hex fingerprint or a name.
    const TrustedPeer* find(std::string_view fingerprint_or_name) const noexcept;

    std::vector<const TrustedPeer*> peers() const;  // sorted by name, then fingerprint
    std::size_t size() const noexcept { return by_fingerprint_.size(); }

  private:
    std::unordered_map<Fingerprint, TrustedPeer, FingerprintHash> by_fingerprint_;
};

}  // namespace sdmp::crypto
