// Node identities and their files (protocol.md §1, §7.1, §7.2).
#include "sdmp/crypto/identity.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "file_util.hpp"
#include "sdmp/error.hpp"

namespace sdmp::crypto {
namespace {

// Identity files are one short line; anything bigger is not one of ours.
constexpr std::size_t k_max_identity_file_size = std::size_t{64} * 1024;

using detail::line_problem;

// protocol.md §7.1: exactly "sdmp-private-v1 <64 hex> <64 hex>" and an optional final "\n".
// Messages never quote the file's content: it is secret.
FileError parse_private(CryptoProvider& provider, const std::filesystem::path& path,
                        std::string_view content, Identity& out) {
    using detail::make_file_error;
    if (content.empty())
        return make_file_error(errc::file_malformed, path, "file is empty");
    std::string_view line = content;
    const std::size_t newline = content.find('\n');
    if (newline != std::string_view::npos) {
        line = content.substr(0, newline);
        if (newline + 1 != content.size()) {
            return make_file_error(errc::file_malformed, path,
                                   "unexpected data after line 1 (a private key file is one line)");
        }
    }
    if (detail::starts_with_token(line, detail::k_public_prefix)) {
        return make_file_error(
            errc::file_malformed, path,
            line_problem(1, "this is a public identity file ('" +
                                std::string(detail::k_public_prefix) + "'), not a private key"));
    }
    const std::string prefix = std::string(detail::k_private_prefix) + " ";
    if (!line.starts_with(prefix)) {
        return make_file_error(
            errc::file_malformed, path,
            line_problem(1, "expected '" + std::string(detail::k_private_prefix) +
                                "' followed by one space"));
    }
    line.remove_prefix(prefix.size());
    constexpr std::size_t k_hex = 2 * k_sign_seed_size;
    static_assert(2 * k_dh_private_size == k_hex);
    if (line.size() != 2 * k_hex + 1 || line[k_hex] != ' ') {
        return make_file_error(
            errc::file_malformed, path,
            line_problem(1, "expected two keys of 64 hex characters separated by one space"));
    }
    Bytes sign_seed;
    Bytes dh_private;
    const bool ok =
        from_hex(line.substr(0, k_hex), sign_seed) && from_hex(line.substr(k_hex + 1), dh_private);
    // Wipe the decoded copies whatever happens next.
    struct Wiper {
        Bytes& a;
        Bytes& b;
        ~Wiper() {
            if (!a.empty())
                secure_wipe(a.data(), a.size());
            if (!b.empty())
                secure_wipe(b.data(), b.size());
        }
    } wiper{sign_seed, dh_private};
    if (!ok) {
        return make_file_error(errc::file_malformed, path,
                               line_problem(1, "key contains a non-hex character"));
    }
    if (const std::error_code ec = Identity::from_private(provider, sign_seed, dh_private, out)) {
        return make_file_error(errc::file_malformed, path, "invalid key: " + ec.message());
    }
    return {};
}

// The first token that is not a comment decides the file type.
bool looks_private(std::string_view content) {
    for (const detail::Line& line : detail::split_lines(content)) {
        if (detail::is_ignorable(line.text))
            continue;
        return detail::starts_with_token(line.text, detail::k_private_prefix);
    }
    return false;
}

}  // namespace

std::optional<Fingerprint> Fingerprint::parse(std::string_view hex) {
    // No allocation: TrustStore::find(string_view) is noexcept and parses with this.
    if (hex.size() != 2 * k_hash_size)
        return std::nullopt;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    Digest digest{};
    for (std::size_t i = 0; i < digest.size(); ++i) {
        const int hi = nibble(hex[2 * i]);
        const int lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        digest[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    return Fingerprint(digest);
}

std::string Fingerprint::hex() const {
    return to_hex(digest_);
}

std::string Fingerprint::short_hex() const {
    return hex().substr(0, 16);
}

std::size_t FingerprintHash::operator()(const Fingerprint& f) const noexcept {
    // A fingerprint is a SHA-256 output: its first bytes are already uniformly distributed.
    std::size_t value = 0;
    std::memcpy(&value, f.bytes().data(), sizeof(value));
    return value;
}

std::array<std::uint8_t, 64> PublicIdentity::canonical_bytes() const {
    // protocol.md §1: ed25519_public (32) || x25519_public (32).
    std::array<std::uint8_t, 64> out{};
    std::copy(sign_public.begin(), sign_public.end(), out.begin());
    std::copy(dh_public.begin(), dh_public.end(), out.begin() + k_sign_public_size);
    return out;
}

Fingerprint PublicIdentity::fingerprint(CryptoProvider& provider) const {
    const auto bytes = canonical_bytes();
    return Fingerprint(provider.sha256(bytes));
}

Identity::Identity(SignKeyPair sign, DhKeyPair dh, CryptoProvider& provider)
    : sign_(std::move(sign)), dh_(std::move(dh)) {
    public_.sign_public = sign_.public_key;
    public_.dh_public = dh_.public_key;
    fingerprint_ = public_.fingerprint(provider);
}

Identity Identity::generate(CryptoProvider& provider) {
    return Identity(provider.sign_generate(), provider.dh_generate(), provider);
}

std::error_code Identity::from_private(CryptoProvider& provider, ByteView sign_seed,
                                       ByteView dh_private, Identity& out) {
    SignKeyPair sign;
    if (const std::error_code ec = provider.sign_from_seed(sign_seed, sign))
        return ec;
    DhKeyPair dh;
    if (const std::error_code ec = provider.dh_from_private(dh_private, dh))
        return ec;
    out = Identity(std::move(sign), std::move(dh), provider);
    return {};
}

FileError save_identity(const Identity& identity, const std::filesystem::path& path) {
    if (identity.sign_key().seed.size() != k_sign_seed_size ||
        identity.dh_key().private_key.size() != k_dh_private_size) {
        return detail::make_file_error(errc::invalid_key, path,
                                       "identity has no private keys to save");
    }
    detail::WipedString text;
    text.str().reserve(detail::k_private_prefix.size() + 2 + 4 * k_sign_seed_size + 1);
    text.str() += detail::k_private_prefix;
    text.str() += ' ';
    // to_hex returns temporaries holding secret hex: wipe them too.
    std::string seed_hex = to_hex(identity.sign_key().seed.view());
    std::string dh_hex = to_hex(identity.dh_key().private_key.view());
    text.str() += seed_hex;
    text.str() += ' ';
    text.str() += dh_hex;
    text.str() += '\n';
    secure_wipe(seed_hex.data(), seed_hex.size());
    secure_wipe(dh_hex.data(), dh_hex.size());
    // protocol.md §7.1: mode 0600 from creation.
    return detail::write_file_atomic(path, text.str(), S_IRUSR | S_IWUSR);
}

FileError load_identity(CryptoProvider& provider, const std::filesystem::path& path,
                        Identity& out) {
    detail::WipedString content;
    if (FileError error = detail::read_file(path, k_max_identity_file_size, /*private_key=*/true,
                                            content.str())) {
        return error;
    }
    return parse_private(provider, path, content.str(), out);
}

std::string format_public_identity(const PublicIdentity& identity) {
    return detail::format_public_line(identity, {}, {});
}

FileError save_public_identity(const PublicIdentity& identity, const std::filesystem::path& path) {
    return detail::write_file_atomic(path, format_public_identity(identity) + "\n",
                                     S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
}

FileError load_public_identity(CryptoProvider& provider, const std::filesystem::path& path,
                               PublicIdentity& out) {
    // Read without the permission check first to learn the type; a private file is then
    // re-read through load_identity so its permissions are enforced as always.
    detail::WipedString content;
    if (FileError error = detail::read_file(path, k_max_identity_file_size,
                                            /*private_key=*/false, content.str())) {
        return error;
    }
    if (looks_private(content.str())) {
        Identity identity;
        if (FileError error = load_identity(provider, path, identity))
            return error;
        out = identity.public_identity();
        return {};
    }
    detail::PublicLine parsed;
    if (FileError error = detail::parse_public_file(path, content.str(), parsed))
        return error;
    out = parsed.identity;
    return {};
}

}  // namespace sdmp::crypto
