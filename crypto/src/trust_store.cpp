// The trust store: peers known in advance, from a file or a folder (protocol.md §7.3).
#include "sdmp/crypto/trust_store.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "file_util.hpp"
#include "sdmp/error.hpp"

namespace sdmp::crypto {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t k_max_store_file_size = std::size_t{16} * 1024 * 1024;
constexpr std::size_t k_max_peer_file_size = std::size_t{64} * 1024;
constexpr std::string_view k_peer_extension = ".pub";
constexpr mode_t k_public_mode = S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH;

bool is_peer_file(const fs::directory_entry& entry) {
    std::error_code ec;
    const std::string name = entry.path().filename().string();
    return name.size() > k_peer_extension.size() && name.ends_with(k_peer_extension) &&
           entry.is_regular_file(ec);
}

// The *.pub files of a folder store, sorted so that load errors are deterministic.
FileError list_peer_files(const fs::path& folder, std::vector<fs::path>& out) {
    std::error_code ec;
    fs::directory_iterator it(folder, ec);
    if (ec) {
        return detail::make_file_error(errc::file_io, folder,
                                       "cannot list folder: " + ec.message());
    }
    std::vector<fs::path> files;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec)
            break;
        if (is_peer_file(*it))
            files.push_back(it->path());
    }
    if (ec) {
        return detail::make_file_error(errc::file_io, folder,
                                       "cannot list folder: " + ec.message());
    }
    std::sort(files.begin(), files.end());
    out = std::move(files);
    return {};
}

// protocol.md §7.3: a folder file without name= is named by its file stem, when that is a
// valid name. A stem of 16 or more hex digits only is not (§7.2), which covers the
// "<fingerprint>.pub" files save() writes for unnamed peers: they stay unnamed.
void apply_stem_name(const fs::path& file, detail::PublicLine& line) {
    if (!line.name.empty())
        return;
    const std::string stem = file.stem().string();
    if (detail::valid_name(stem))
        line.name = stem;
}

std::string peer_file_content(const TrustedPeer& peer) {
    return detail::format_public_line(peer.identity, peer.name, peer.address) + "\n";
}

// Collects peers while loading and reports duplicates against where the first one came from.
class Loader {
  public:
    explicit Loader(CryptoProvider& provider) : provider_(provider) {}

    FileError add(const detail::PublicLine& line, const fs::path& path, std::string origin,
                  std::string_view where) {
        TrustedPeer peer{line.identity, line.identity.fingerprint(provider_), line.name,
                         line.address};
        if (const auto it = fingerprint_origin_.find(peer.fingerprint);
            it != fingerprint_origin_.end()) {
            return detail::make_file_error(errc::duplicate_peer, path,
                                           std::string(where) + "duplicate peer " +
                                               peer.fingerprint.short_hex() + " (already in " +
                                               it->second + ")");
        }
        if (!peer.name.empty()) {
            if (const auto it = name_origin_.find(peer.name); it != name_origin_.end()) {
                return detail::make_file_error(errc::duplicate_peer, path,
                                               std::string(where) + "duplicate name '" + peer.name +
                                                   "' (already in " + it->second + ")");
            }
            name_origin_.emplace(peer.name, origin);
        }
        fingerprint_origin_.emplace(peer.fingerprint, std::move(origin));
        // Cannot fail: the line's name, address and keys were checked when it was parsed, the
        // fingerprint was computed here, and duplicates were checked above with better messages.
        (void)store_.add(std::move(peer));
        return {};
    }

    TrustStore& store() noexcept { return store_; }

  private:
    CryptoProvider& provider_;
    TrustStore store_;
    std::map<Fingerprint, std::string> fingerprint_origin_;
    std::map<std::string, std::string, std::less<>> name_origin_;
};

FileError load_file(CryptoProvider& provider, const fs::path& path, TrustStore& out) {
    std::string content;
    if (FileError error = detail::read_file(path, k_max_store_file_size, false, content)) {
        return error;
    }
    Loader loader(provider);
    for (const detail::Line& line : detail::split_lines(content)) {
        if (detail::is_ignorable(line.text))
            continue;
        detail::PublicLine parsed;
        const std::string problem = detail::parse_public_line(line.text, parsed);
        if (!problem.empty()) {
            return detail::make_file_error(errc::file_malformed, path,
                                           detail::line_problem(line.number, problem));
        }
        const std::string where = detail::line_problem(line.number, "");
        if (FileError error =
                loader.add(parsed, path, "line " + std::to_string(line.number), where)) {
            return error;
        }
    }
    out = std::move(loader.store());
    return {};
}

FileError load_folder(CryptoProvider& provider, const fs::path& folder, TrustStore& out) {
    std::vector<fs::path> files;
    if (FileError error = list_peer_files(folder, files))
        return error;
    Loader loader(provider);
    for (const fs::path& file : files) {
        std::string content;
        if (FileError error = detail::read_file(file, k_max_peer_file_size, false, content)) {
            return error;
        }
        detail::PublicLine parsed;
        if (FileError error = detail::parse_public_file(file, content, parsed))
            return error;
        apply_stem_name(file, parsed);
        if (FileError error = loader.add(parsed, file, detail::display(file), ""))
            return error;
    }
    out = std::move(loader.store());
    return {};
}

// Folder save: keeps each peer in the file that already holds it (rewriting it only when the
// name or address changed), writes new peers to "<name>.pub" (or "<fingerprint>.pub"), and
// removes the files of peers no longer in the store. Files that do not parse are left alone.
FileError save_folder(const std::vector<const TrustedPeer*>& peers, const fs::path& folder) {
    using Key = std::array<std::uint8_t, 64>;
    struct Existing {
        fs::path file;
        detail::PublicLine line;
    };
    std::vector<fs::path> files;
    if (FileError error = list_peer_files(folder, files))
        return error;
    std::map<Key, Existing> existing;
    std::set<std::string> taken_names;
    for (const fs::path& file : files) {
        std::string content;
        detail::PublicLine parsed;
        if (detail::read_file(file, k_max_peer_file_size, false, content) ||
            detail::parse_public_file(file, content, parsed)) {
            taken_names.insert(file.filename().string());
            continue;
        }
        apply_stem_name(file, parsed);
        const Key key = parsed.identity.canonical_bytes();
        if (!existing.emplace(key, Existing{file, std::move(parsed)}).second) {
            // A second file for the same peer (load would refuse it): leave it alone.
            taken_names.insert(file.filename().string());
        }
    }

    std::set<Key> wanted;
    for (const TrustedPeer* peer : peers)
        wanted.insert(peer->identity.canonical_bytes());
    for (auto it = existing.begin(); it != existing.end();) {
        if (wanted.contains(it->first)) {
            taken_names.insert(it->second.file.filename().string());
            ++it;
            continue;
        }
        std::error_code ec;
        if (!fs::remove(it->second.file, ec) && ec) {
            return detail::make_file_error(errc::file_io, it->second.file,
                                           "cannot remove: " + ec.message());
        }
        it = existing.erase(it);
    }

    for (const TrustedPeer* peer : peers) {
        const auto it = existing.find(peer->identity.canonical_bytes());
        if (it != existing.end()) {
            if (it->second.line.name == peer->name && it->second.line.address == peer->address) {
                continue;
            }
            if (FileError error = detail::write_file_atomic(
                    it->second.file, peer_file_content(*peer), k_public_mode)) {
                return error;
            }
            continue;
        }
        std::string filename = (peer->name.empty() ? peer->fingerprint.hex() : peer->name) +
                               std::string(k_peer_extension);
        if (taken_names.contains(filename)) {
            filename = peer->fingerprint.hex() + std::string(k_peer_extension);
        }
        if (taken_names.contains(filename)) {
            return detail::make_file_error(errc::duplicate_peer, folder / filename,
                                           "file exists and holds another peer");
        }
        taken_names.insert(filename);
        if (FileError error = detail::write_file_atomic(folder / filename, peer_file_content(*peer),
                                                        k_public_mode)) {
            return error;
        }
    }
    return {};
}

}  // namespace

FileError TrustStore::load(CryptoProvider& provider, const fs::path& path, TrustStore& out) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (status.type() == fs::file_type::not_found) {
        return detail::make_file_error(errc::file_not_found, path, "no such file or folder");
    }
    if (ec)
        return detail::make_file_error(errc::file_io, path, "cannot stat: " + ec.message());
    if (status.type() == fs::file_type::directory)
        return load_folder(provider, path, out);
    return load_file(provider, path, out);
}

FileError TrustStore::save(const fs::path& path) const {
    std::error_code ec;
    if (fs::is_directory(path, ec))
        return save_folder(peers(), path);
    // protocol.md §7: the files are ASCII, so the header says "section", not the sign.
    std::string content =
        "# sdmp trust store (protocol.md section 7.3): one peer per line,\n"
        "# sdmp-public-v1 <128 hex> [name=NAME] [address=HOST:PORT]\n";
    for (const TrustedPeer* peer : peers())
        content += peer_file_content(*peer);
    return detail::write_file_atomic(path, content, k_public_mode);
}

std::string peer_name_problem(std::string_view name) {
    return detail::name_problem(name);
}

TrustedPeer TrustedPeer::from_identity(const PublicIdentity& identity, std::string name,
                                       std::string address) {
    return TrustedPeer{identity, identity.fingerprint(default_provider()), std::move(name),
                       std::move(address)};
}

std::error_code TrustStore::add(TrustedPeer peer) {
    if (!peer.name.empty() && !detail::valid_name(peer.name))
        return errc::malformed;
    if (!peer.address.empty() && !detail::valid_address(peer.address))
        return errc::malformed;
    if (!peer.identity.key_problem().empty())
        return errc::invalid_key;
    // protocol.md §1: lookups trust the fingerprint, so it must be the identity's own; a
    // mismatched entry would let one key answer for another's fingerprint.
    if (peer.identity.fingerprint(default_provider()) != peer.fingerprint)
        return errc::malformed;
    if (by_fingerprint_.contains(peer.fingerprint))
        return errc::duplicate_peer;
    if (!peer.name.empty() && find_by_name(peer.name) != nullptr)
        return errc::duplicate_peer;
    const Fingerprint key = peer.fingerprint;
    by_fingerprint_.emplace(key, std::move(peer));
    return {};
}

std::error_code TrustStore::remove(std::string_view fingerprint_or_name) {
    const TrustedPeer* peer = find(fingerprint_or_name);
    if (peer == nullptr)
        return errc::unknown_peer;
    by_fingerprint_.erase(peer->fingerprint);
    return {};
}

const TrustedPeer* TrustStore::find(const Fingerprint& fingerprint) const noexcept {
    const auto it = by_fingerprint_.find(fingerprint);
    return it == by_fingerprint_.end() ? nullptr : &it->second;
}

const TrustedPeer* TrustStore::find_by_name(std::string_view name) const noexcept {
    // Names are for people typing commands; a linear scan keeps one index to maintain.
    if (name.empty())
        return nullptr;
    for (const auto& [fingerprint, peer] : by_fingerprint_) {
        if (peer.name == name)
            return &peer;
    }
    return nullptr;
}

const TrustedPeer* TrustStore::find(std::string_view fingerprint_or_name) const noexcept {
    // A 64-hex string is only ever a fingerprint: no name can look like one (protocol.md §7.2),
    // so there is no fallback to names that could be redirected.
    if (const auto fingerprint = Fingerprint::parse(fingerprint_or_name))
        return find(*fingerprint);
    return find_by_name(fingerprint_or_name);
}

std::vector<const TrustedPeer*> TrustStore::peers() const {
    std::vector<const TrustedPeer*> out;
    out.reserve(by_fingerprint_.size());
    for (const auto& [fingerprint, peer] : by_fingerprint_)
        out.push_back(&peer);
    std::sort(out.begin(), out.end(), [](const TrustedPeer* a, const TrustedPeer* b) {
        if (a->name != b->name)
            return a->name < b->name;
        return a->fingerprint < b->fingerprint;
    });
    return out;
}

}  // namespace sdmp::crypto
