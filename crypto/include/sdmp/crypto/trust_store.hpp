// The set of peers a node knows in advance, like authorized_keys / known_hosts
// (protocol.md §7.3). Lookups are O(1) by fingerprint.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sdmp/crypto/identity.hpp"

namespace sdmp::crypto {

struct TrustedPeer {
    PublicIdentity identity;
    Fingerprint fingerprint;  // must be identity's fingerprint (protocol.md §1)
    std::string name;         // may be empty; never 16+ hex digits only (see peer_name_problem)
    std::string address;      // HOST:PORT, may be empty

    // An entry for `identity` with its fingerprint derived (protocol.md §1, with
    // default_provider(), as TrustStore::add checks it), so a caller who has only the public
    // identity cannot pair it with a wrong fingerprint. Checks nothing else: TrustStore::add
    // still refuses bad keys, names and addresses.
    static TrustedPeer from_identity(const PublicIdentity& identity, std::string name = {},
                                     std::string address = {});
};

// protocol.md §7.2: an empty string when `name` may name a peer, otherwise why not (a phrase for
// messages). Besides the character set and length, a name of 16 or more characters that are all
// hex digits is refused: it could be read as a fingerprint or a fingerprint prefix, and would
// let an entry answer a lookup meant for another peer's fingerprint. TrustStore::add and the
// file and folder loaders apply the same rule.
std::string peer_name_problem(std::string_view name);

class TrustStore {
  public:
    // Loads a store from a file (one peer per line, '#' comments) or a folder (every
    // regular file ending in ".pub", one peer each). A missing file is an error;
    // use TrustStore{} for an empty store.
    [[nodiscard]] static FileError load(CryptoProvider& provider, const std::filesystem::path& path,
                                        TrustStore& out);
    // Writes the store as a single file (atomically: temp file + rename). If `path` is an
    // existing folder, updates its ".pub" files instead (protocol.md §7.3).
    [[nodiscard]] FileError save(const std::filesystem::path& path) const;

    // Checks the entry, then the store, in this order:
    // - errc::malformed if the name (peer_name_problem) or the address does not match
    //   protocol.md §7.2;
    // - errc::invalid_key if a key is refused by PublicIdentity::key_problem (protocol.md §1);
    // - errc::malformed if `fingerprint` is not SHA-256 of the identity's canonical bytes
    //   (protocol.md §1; recomputed with default_provider());
    // - errc::duplicate_peer if the fingerprint or a non-empty name is already present.
    [[nodiscard]] std::error_code add(TrustedPeer peer);
    // Removes what find(string_view) finds; errc::unknown_peer when absent.
    [[nodiscard]] std::error_code remove(std::string_view fingerprint_or_name);

    const TrustedPeer* find(const Fingerprint& fingerprint) const noexcept;
    const TrustedPeer* find_by_name(std::string_view name) const noexcept;
    // Exactly 64 hex digits (either case) are a fingerprint and match only the entry with that
    // fingerprint; any other text matches only the entry with that name. The two never
    // overlap: no name consists of 16 or more hex digits only (peer_name_problem).
    const TrustedPeer* find(std::string_view fingerprint_or_name) const noexcept;

    std::vector<const TrustedPeer*> peers() const;  // sorted by name, then fingerprint
    std::size_t size() const noexcept { return by_fingerprint_.size(); }

  private:
    std::unordered_map<Fingerprint, TrustedPeer, FingerprintHash> by_fingerprint_;
};

}  // namespace sdmp::crypto
