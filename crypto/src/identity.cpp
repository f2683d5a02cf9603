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

// --- Which public keys may be trusted (protocol.md §1) ---
//
// Elements of GF(p), p = 2^255 - 19, as eight little-endian 32-bit limbs (so that products fit
// in 64 bits without compiler extensions). Only public keys pass through this code, so it need
// not run in constant time. It lives here rather than in the provider so that parsing a public
// identity needs no provider.
using Limbs = std::array<std::uint32_t, 8>;
using Encoding = std::array<std::uint8_t, 32>;

constexpr Limbs k_p = {0xffffffed, 0xffffffff, 0xffffffff, 0xffffffff,
                       0xffffffff, 0xffffffff, 0xffffffff, 0x7fffffff};
constexpr Limbs k_zero = {};
constexpr Limbs k_one = {1};
constexpr Limbs k_minus_one = {0xffffffec, 0xffffffff, 0xffffffff, 0xffffffff,
                               0xffffffff, 0xffffffff, 0xffffffff, 0x7fffffff};
// The Edwards curve constant d = -121665 / 121666 (RFC 8032 §5.1).
constexpr Limbs k_d = {0x135978a3, 0x75eb4dca, 0x4141d8ab, 0x00700a4d,
                       0x7779e898, 0x8cc74079, 0x2b6ffe73, 0x52036cee};

// The y-coordinates of the 8 Ed25519 points of small order (orders 1, 2, 4 and 8; each order-4
// and order-8 y belongs to two points, x and -x), little-endian as encoded.
constexpr std::array<Encoding, 5> k_small_order_y = {{
    {0x00},  // order 4: (+-sqrt(-1), 0)
    {0x01},  // order 1: the neutral element (0, 1)
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},  // order 2: (0, -1), y = p - 1
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},  // order 8
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},  // order 8
}};

// The X25519 u-coordinates that every clamped scalar (a multiple of 8) takes to 0, the
// "low-order" values of RFC 7748 §7 (libsodium refuses the same list): the points of order 2,
// 4 and 8 of the curve and of its twist.
constexpr std::array<Encoding, 5> k_low_order_u = {{
    {0x00},  // order 2
    {0x01},  // order 4
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},  // p - 1, order 4 on the twist
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
     0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
     0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},  // order 8
    {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1,
     0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c,
     0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},  // order 8
}};

Limbs load(const Encoding& bytes) {
    Limbs out{};
    for (std::size_t i = 0; i < bytes.size(); ++i)
        out[i / 4] |= std::uint32_t{bytes[i]} << (8 * (i % 4));
    return out;
}

bool less(const Limbs& a, const Limbs& b) {
    for (std::size_t i = a.size(); i-- > 0;) {
        if (a[i] != b[i])
            return a[i] < b[i];
    }
    return false;
}

// a - b for a >= b.
Limbs subtract(const Limbs& a, const Limbs& b) {
    Limbs out{};
    std::uint64_t borrow = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const std::uint64_t t = std::uint64_t{a[i]} - b[i] - borrow;
        out[i] = static_cast<std::uint32_t>(t);
        borrow = t >> 63;  // 1 when it wrapped
    }
    return out;
}

// Any 256-bit value (< 3p) to its representative in [0, p).
Limbs reduce(Limbs a) {
    while (!less(a, k_p))
        a = subtract(a, k_p);
    return a;
}

// a + b mod p for a, b in [0, p): the sum is below 2^256, so it fits in eight limbs.
Limbs add(const Limbs& a, const Limbs& b) {
    Limbs out{};
    std::uint64_t carry = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const std::uint64_t t = std::uint64_t{a[i]} + b[i] + carry;
        out[i] = static_cast<std::uint32_t>(t);
        carry = t >> 32;
    }
    return reduce(out);
}

Limbs multiply(const Limbs& a, const Limbs& b) {
    std::array<std::uint32_t, 16> product{};
    for (std::size_t i = 0; i < a.size(); ++i) {
        std::uint64_t carry = 0;
        for (std::size_t j = 0; j < b.size(); ++j) {
            // At most (2^32 - 1)^2 + 2 (2^32 - 1) = 2^64 - 1.
            const std::uint64_t t = std::uint64_t{a[i]} * b[j] + product[i + j] + carry;
            product[i + j] = static_cast<std::uint32_t>(t);
            carry = t >> 32;
        }
        product[i + b.size()] = static_cast<std::uint32_t>(carry);
    }
    // 2^256 = 38 (mod p): fold the high half into the low half until nothing is left over.
    Limbs out{};
    Limbs high{};
    std::copy_n(product.begin(), 8, out.begin());
    std::copy_n(product.begin() + 8, 8, high.begin());
    for (;;) {
        std::uint64_t carry = 0;
        for (std::size_t i = 0; i < out.size(); ++i) {
            const std::uint64_t t = std::uint64_t{high[i]} * 38 + out[i] + carry;
            out[i] = static_cast<std::uint32_t>(t);
            carry = t >> 32;
        }
        if (carry == 0)
            break;
        high = {static_cast<std::uint32_t>(carry)};
    }
    return reduce(out);
}

// a^(2^n), by n squarings.
Limbs square_times(Limbs a, int n) {
    while (n-- > 0)
        a = multiply(a, a);
    return a;
}

// Euler's criterion: z^((p - 1) / 2) is 1 for a non-zero square, p - 1 otherwise.
// (p - 1) / 2 = 2^254 - 10 = 4 (2^252 - 3) + 2; z^(2^252 - 3) uses the addition chain of
// ref10's pow22523 (253 squarings and 12 multiplications in all).
Limbs euler_criterion(const Limbs& z) {
    const Limbs z2 = multiply(z, z);
    const Limbs z9 = multiply(square_times(z2, 2), z);
    const Limbs z11 = multiply(z9, z2);
    const Limbs e5 = multiply(multiply(z11, z11), z9);           // 2^5 - 1
    const Limbs e10 = multiply(square_times(e5, 5), e5);         // 2^10 - 1
    const Limbs e20 = multiply(square_times(e10, 10), e10);      // 2^20 - 1
    const Limbs e40 = multiply(square_times(e20, 20), e20);      // 2^40 - 1
    const Limbs e50 = multiply(square_times(e40, 10), e10);      // 2^50 - 1
    const Limbs e100 = multiply(square_times(e50, 50), e50);     // 2^100 - 1
    const Limbs e200 = multiply(square_times(e100, 100), e100);  // 2^200 - 1
    const Limbs e250 = multiply(square_times(e200, 50), e50);    // 2^250 - 1
    const Limbs e252 = multiply(square_times(e250, 2), z);       // 2^252 - 3
    return multiply(square_times(e252, 2), z2);                  // 2^254 - 10
}

bool in_list(const Limbs& value, const std::array<Encoding, 5>& list) {
    return std::any_of(list.begin(), list.end(),
                       [&](const Encoding& entry) { return load(entry) == value; });
}

// RFC 8032 §5.1.3 decoding, plus the small-order list. The y of a non-canonical encoding is
// reduced first so that the other encodings of a small-order point are named as such.
std::string sign_public_problem(const SignPublic& key) {
    Encoding y_bytes = key;
    y_bytes[31] &= 0x7f;  // bit 255 is the sign of x
    const Limbs raw_y = load(y_bytes);
    const Limbs y = reduce(raw_y);
    if (in_list(y, k_small_order_y))
        return "Ed25519 public key is a point of small order";
    if (y != raw_y)
        return "Ed25519 public key is not canonically encoded (y >= 2^255 - 19)";
    // x^2 = (y^2 - 1) / (d y^2 + 1) must have a root. d y^2 + 1 is never 0 (-1/d is not a
    // square), so the quotient is a square exactly when the product is. The product is 0 only
    // for y = +-1 (x = 0), which are small-order points and already refused with either sign.
    const Limbs y2 = multiply(y, y);
    const Limbs product = multiply(add(y2, k_minus_one), add(multiply(k_d, y2), k_one));
    if (product != k_zero && euler_criterion(product) != k_one)
        return "Ed25519 public key is not a point on the curve";
    return {};
}

// RFC 7748 §5 masks bit 255 and reduces u modulo p; the reduced u is checked against the list,
// then any other encoding than the canonical one is refused (no implementation writes one).
std::string dh_public_problem(const DhPublic& key) {
    Encoding u_bytes = key;
    u_bytes[31] &= 0x7f;
    const Limbs u = reduce(load(u_bytes));
    if (in_list(u, k_low_order_u))
        return "X25519 public key is a low-order point";
    if (u != load(key))
        return "X25519 public key is not canonically encoded (u >= 2^255 - 19 or bit 255 set)";
    return {};
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

std::string PublicIdentity::key_problem() const {
    std::string problem = sign_public_problem(sign_public);
    if (problem.empty())
        problem = dh_public_problem(dh_public);
    return problem;
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
