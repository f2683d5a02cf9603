// Identities and their files (protocol.md §1, §7.1, §7.2).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "sdmp/crypto/bytes.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/error.hpp"

using namespace sdmp;
using namespace sdmp::crypto;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed at the end.
class TempDir {
  public:
    TempDir() {
        std::random_device device;
        path_ = fs::temp_directory_path() /
                ("sdmp-test-identity-" + std::to_string(device()) + std::to_string(device()));
        fs::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

void write_text(const fs::path& path, const std::string& text, fs::perms mode) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
    fs::permissions(path, mode);
}

constexpr auto k_0600 = fs::perms::owner_read | fs::perms::owner_write;
constexpr auto k_0644 = k_0600 | fs::perms::group_read | fs::perms::others_read;

const std::string k_seed_hex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const std::string k_dh_hex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";

bool mentions(const FileError& error, const fs::path& path) {
    return error.message.find(path.string()) != std::string::npos;
}

}  // namespace

TEST_CASE("fingerprint parse, hex and hash", "[crypto][identity]") {
    const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const auto fp = Fingerprint::parse(hex);
    REQUIRE(fp);
    CHECK(fp->hex() == hex);
    CHECK(fp->short_hex() == "0011223344556677");
    std::string upper = hex;
    for (char& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto fp_upper = Fingerprint::parse(upper);
    REQUIRE(fp_upper);
    CHECK(*fp_upper == *fp);
    CHECK(FingerprintHash{}(*fp) == FingerprintHash{}(*fp_upper));
    CHECK_FALSE(Fingerprint::parse(hex.substr(1)));
    CHECK_FALSE(Fingerprint::parse(hex + "0"));
    CHECK_FALSE(Fingerprint::parse("zz" + hex.substr(2)));
    CHECK_FALSE(Fingerprint::parse(""));
}

TEST_CASE("identity from fixed private keys matches the RFC public keys", "[crypto][identity]") {
    CryptoProvider& p = default_provider();
    Bytes seed;
    Bytes dh;
    REQUIRE(from_hex(k_seed_hex, seed));
    REQUIRE(from_hex(k_dh_hex, dh));
    Identity id;
    REQUIRE_FALSE(Identity::from_private(p, seed, dh, id));
    CHECK(to_hex(id.public_identity().sign_public) ==
          "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    CHECK(to_hex(id.public_identity().dh_public) ==
          "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const auto canonical = id.public_identity().canonical_bytes();
    CHECK(to_hex(canonical) ==
          "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
          "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    // protocol.md §1: fingerprint = SHA-256(canonical bytes).
    CHECK(id.fingerprint().bytes() == p.sha256(canonical));
    CHECK(id.public_identity().fingerprint(p) == id.fingerprint());
    CHECK(format_public_identity(id.public_identity()) == "sdmp-public-v1 " + to_hex(canonical));

    Identity bad;
    CHECK(Identity::from_private(p, ByteView(seed).first(31), dh, bad) == errc::invalid_key);
    CHECK(Identity::from_private(p, seed, Bytes{}, bad) == errc::invalid_key);
}

TEST_CASE("generated identities differ and sign verifiably", "[crypto][identity]") {
    CryptoProvider& p = default_provider();
    const Identity a = Identity::generate(p);
    const Identity b = Identity::generate(p);
    CHECK(a.fingerprint() != b.fingerprint());
    const Signature sig = p.sign(a.sign_key(), as_bytes("hello"));
    CHECK(p.verify(a.public_identity().sign_public, as_bytes("hello"), sig));
}

TEST_CASE("private identity file round trip with mode 0600", "[crypto][identity][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const Identity id = Identity::generate(p);
    const fs::path path = dir / "node.key";
    REQUIRE_FALSE(save_identity(id, path));
    CHECK((fs::status(path).permissions() & fs::perms::all) == k_0600);

    std::ifstream in(path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text == "sdmp-private-v1 " + to_hex(id.sign_key().seed.view()) + " " +
                      to_hex(id.dh_key().private_key.view()) + "\n");

    Identity loaded;
    const FileError error = load_identity(p, path, loaded);
    REQUIRE_FALSE(error);
    CHECK(loaded.fingerprint() == id.fingerprint());
    CHECK(loaded.public_identity() == id.public_identity());
    CHECK(p.equal(loaded.sign_key().seed.view(), id.sign_key().seed.view()));

    // Saving over an existing world-readable file still leaves 0600.
    write_text(path, "old", k_0644);
    REQUIRE_FALSE(save_identity(id, path));
    CHECK((fs::status(path).permissions() & fs::perms::all) == k_0600);

    // The public part can be read from the private file.
    PublicIdentity pub;
    REQUIRE_FALSE(load_public_identity(p, path, pub));
    CHECK(pub == id.public_identity());
}

TEST_CASE("private key readable by others is refused with a helpful message",
          "[crypto][identity][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path path = dir / "node.key";
    REQUIRE_FALSE(save_identity(Identity::generate(p), path));
    fs::permissions(path, k_0644);
    Identity loaded;
    const FileError error = load_identity(p, path, loaded);
    REQUIRE(error);
    CHECK(error.code == errc::file_permissions);
    CHECK(mentions(error, path));
    CHECK(error.message.find("0644") != std::string::npos);
    CHECK(error.message.find("chmod 600") != std::string::npos);

    fs::permissions(path, k_0600 | fs::perms::group_write);
    CHECK(load_identity(p, path, loaded).code == errc::file_permissions);

    // load_public_identity enforces the same rule for a private file.
    fs::permissions(path, k_0644);
    PublicIdentity pub;
    CHECK(load_public_identity(p, path, pub).code == errc::file_permissions);
}

TEST_CASE("malformed private files are rejected naming the file", "[crypto][identity][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path path = dir / "bad.key";
    const std::string good = "sdmp-private-v1 " + k_seed_hex + " " + k_dh_hex;
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", "empty"},
        {"sdmp-private-v2 " + k_seed_hex + " " + k_dh_hex + "\n", "expected"},
        {"sdmp-private-v1 " + k_seed_hex + "\n", "two keys"},
        {"sdmp-private-v1 " + k_seed_hex.substr(2) + " " + k_dh_hex + "\n", "two keys"},
        {"sdmp-private-v1 " + k_seed_hex + " " + k_dh_hex + "00\n", "two keys"},
        {"sdmp-private-v1 " + k_seed_hex + "  " + k_dh_hex.substr(1) + "\n", "non-hex"},
        {"sdmp-private-v1 x" + k_seed_hex.substr(1) + " " + k_dh_hex + "\n", "non-hex"},
        {good + "\n\n", "after line 1"},
        {good + "\njunk", "after line 1"},
        {good + " \n", "two keys"},
        {" " + good + "\n", "expected"},
        {"sdmp-public-v1 " + k_seed_hex + k_dh_hex + "\n", "public identity file"},
    };
    for (const auto& [text, expected] : cases) {
        INFO("content: " << text);
        write_text(path, text, k_0600);
        Identity loaded;
        const FileError error = load_identity(p, path, loaded);
        REQUIRE(error);
        CHECK(error.code == errc::file_malformed);
        CHECK(mentions(error, path));
        CHECK(error.message.find(expected) != std::string::npos);
        // Secrets never appear in messages.
        CHECK(error.message.find(k_seed_hex.substr(0, 16)) == std::string::npos);
    }
    // Without the final newline it is still accepted.
    write_text(path, good, k_0600);
    Identity loaded;
    CHECK_FALSE(load_identity(p, path, loaded));
    // Upper-case hex is accepted.
    std::string upper = good;
    for (std::size_t i = 16; i < upper.size(); ++i) {
        upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
    }
    write_text(path, upper, k_0600);
    Identity loaded_upper;
    REQUIRE_FALSE(load_identity(p, path, loaded_upper));
    CHECK(loaded_upper.fingerprint() == loaded.fingerprint());
}

TEST_CASE("missing files and folders give file_not_found naming the path",
          "[crypto][identity][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path missing = dir / "nope.key";
    Identity id;
    FileError error = load_identity(p, missing, id);
    CHECK(error.code == errc::file_not_found);
    CHECK(mentions(error, missing));
    PublicIdentity pub;
    error = load_public_identity(p, missing, pub);
    CHECK(error.code == errc::file_not_found);
    CHECK(mentions(error, missing));

    // A directory is not a key file.
    error = load_public_identity(p, dir / "", pub);
    CHECK(error.code == errc::file_io);

    // Saving into a folder that does not exist fails cleanly.
    error = save_identity(Identity::generate(p), dir / "no-such-dir" / "x.key");
    CHECK(error);
    CHECK(mentions(error, dir / "no-such-dir" / "x.key"));
}

TEST_CASE("public identity file round trip and strict parsing", "[crypto][identity][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const Identity id = Identity::generate(p);
    const fs::path path = dir / "node.pub";
    REQUIRE_FALSE(save_public_identity(id.public_identity(), path));
    {
        std::ifstream in(path, std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
        CHECK(text == format_public_identity(id.public_identity()) + "\n");
    }
    PublicIdentity pub;
    REQUIRE_FALSE(load_public_identity(p, path, pub));
    CHECK(pub == id.public_identity());

    const std::string key = to_hex(id.public_identity().canonical_bytes());
    // Accepted variants: comments, blank lines, name/address tokens, CRLF.
    for (const std::string& text :
         {"# my node\n\nsdmp-public-v1 " + key + "\n",
          "sdmp-public-v1 " + key + " name=node-1.a_b address=example.org:7000\n",
          "sdmp-public-v1 " + key + " address=[::1]:443 name=x\r\n", "sdmp-public-v1\t" + key}) {
        INFO("content: " << text);
        write_text(path, text, k_0644);
        PublicIdentity parsed;
        REQUIRE_FALSE(load_public_identity(p, path, parsed));
        CHECK(parsed == id.public_identity());
    }

    const std::vector<std::pair<std::string, std::string>> bad = {
        {"", "empty"},
        {"# only a comment\n", "no public identity"},
        {"sdmp-public-v2 " + key + "\n", "line 1: expected 'sdmp-public-v1'"},
        {"sdmp-public-v1\n", "missing"},
        {"sdmp-public-v1 " + key.substr(2) + "\n", "128 hex"},
        {"sdmp-public-v1 " + key + "0\n", "128 hex"},
        {"sdmp-public-v1 g" + key.substr(1) + "\n", "non-hex"},
        {"sdmp-public-v1 " + key + " junk\n", "unexpected token"},
        {"sdmp-public-v1 " + key + " name=\n", "invalid name"},
        {"sdmp-public-v1 " + key + " name=a/b\n", "invalid name"},
        {"sdmp-public-v1 " + key + " name=" + std::string(65, 'a') + "\n", "invalid name"},
        {"sdmp-public-v1 " + key + " name=a name=b\n", "twice"},
        {"sdmp-public-v1 " + key + " address=host\n", "invalid address"},
        {"sdmp-public-v1 " + key + " address=host:0\n", "invalid address"},
        {"sdmp-public-v1 " + key + " address=host:65536\n", "invalid address"},
        {"sdmp-public-v1 " + key + " address=:80\n", "invalid address"},
        {"#\nsdmp-public-v1 " + key + "\nsdmp-public-v1 " + key + "\n", "line 3"},
    };
    for (const auto& [text, expected] : bad) {
        INFO("content: " << text);
        write_text(path, text, k_0644);
        PublicIdentity parsed;
        const FileError error = load_public_identity(p, path, parsed);
        REQUIRE(error);
        CHECK(error.code == errc::file_malformed);
        CHECK(mentions(error, path));
        CHECK(error.message.find(expected) != std::string::npos);
    }
}

TEST_CASE("file parsers never crash on random input", "[crypto][identity][files][property]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path path = dir / "fuzz";
    std::mt19937 rng(12345);  // fixed seed: deterministic
    const Identity id = Identity::generate(p);
    const std::string valid_public =
        "sdmp-public-v1 " + to_hex(id.public_identity().canonical_bytes()) + " name=n\n";
    const std::string valid_private = "sdmp-private-v1 " + k_seed_hex + " " + k_dh_hex + "\n";
    int accepted = 0;
    for (int i = 0; i < 300; ++i) {
        std::string text;
        switch (i % 3) {
            case 0: {  // pure random bytes
                text.resize(rng() % 300);
                for (char& c : text)
                    c = static_cast<char>(rng() & 0xff);
                break;
            }
            default: {  // a valid file with a few random byte flips, cuts or insertions
                text = (i % 3 == 1) ? valid_public : valid_private;
                const int edits = 1 + static_cast<int>(rng() % 3);
                for (int e = 0; e < edits && !text.empty(); ++e) {
                    const std::size_t at = rng() % text.size();
                    switch (rng() % 3) {
                        case 0:
                            text[at] = static_cast<char>(rng() & 0xff);
                            break;
                        case 1:
                            text.resize(at);
                            break;
                        default:
                            text.insert(at, 1, static_cast<char>(rng() & 0xff));
                            break;
                    }
                }
            }
        }
        write_text(path, text, k_0600);
        PublicIdentity pub;
        const FileError public_error = load_public_identity(p, path, pub);
        Identity priv;
        const FileError private_error = load_identity(p, path, priv);
        if (!public_error)
            ++accepted;
        for (const FileError* error : {&public_error, &private_error}) {
            if (*error) {
                CHECK(error->code == errc::file_malformed);
                CHECK(mentions(*error, path));
            }
        }
    }
    // Some mutations (e.g. a flipped hex digit) stay valid; most do not.
    CHECK(accepted < 300);
}

namespace {

// The public keys of k_seed_hex / k_dh_hex (RFC 8032 §7.1 test 1, RFC 7748 §6.1).
const std::string k_sign_public_hex =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const std::string k_dh_public_hex =
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

PublicIdentity identity_from_hex(const std::string& sign_hex, const std::string& dh_hex) {
    Bytes sign;
    Bytes dh;
    REQUIRE(from_hex(sign_hex, sign));
    REQUIRE(from_hex(dh_hex, dh));
    REQUIRE(sign.size() == k_sign_public_size);
    REQUIRE(dh.size() == k_dh_public_size);
    PublicIdentity identity;
    std::copy(sign.begin(), sign.end(), identity.sign_public.begin());
    std::copy(dh.begin(), dh.end(), identity.dh_public.begin());
    return identity;
}

// 32 bytes as 64 hex: `first` then zeros, or `fill` repeated with `last` as the final byte.
std::string le_hex(std::uint8_t first) {
    return to_hex(std::array<std::uint8_t, 1>{first}) + std::string(62, '0');
}
std::string repeated_hex(std::uint8_t fill, std::uint8_t last) {
    std::array<std::uint8_t, 32> bytes{};
    bytes.fill(fill);
    bytes[31] = last;
    return to_hex(bytes);
}

}  // namespace

TEST_CASE("public identities with small-order or invalid keys are refused",
          "[crypto][identity][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path path = dir / "peer.pub";
    const std::string small = "Ed25519 public key is a point of small order";
    const std::string ed_noncanonical = "Ed25519 public key is not canonically encoded";
    const std::string off_curve = "Ed25519 public key is not a point on the curve";
    const std::string low = "X25519 public key is a low-order point";
    const std::string x_noncanonical = "X25519 public key is not canonically encoded";
    // p = 2^255 - 19 little-endian is ed ff .. ff 7f; bit 255 (0x80 in the last byte) is the
    // sign of x for Ed25519 and ignored by X25519 (RFC 7748 §5).
    const std::string p_minus_1 = repeated_hex(0xff, 0x7f).replace(0, 2, "ec");
    const std::string order8_y1 =
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";
    const std::string order8_y2 =
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05";
    const std::string order8_u1 =
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800";
    const std::string order8_u2 =
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157";
    auto with_sign_bit = [](std::string hex) {
        Bytes bytes;
        REQUIRE(from_hex(hex, bytes));
        bytes.back() |= 0x80;
        return to_hex(bytes);
    };

    struct Case {
        std::string sign_hex;
        std::string dh_hex;
        std::string expected;
    };
    const std::vector<Case> cases = {
        // The 8 Ed25519 points of small order, both signs of x (for y = +-1, x = 0 and the
        // set sign bit is also a non-canonical encoding).
        {le_hex(0x00), k_dh_public_hex, small},                 // order 4
        {with_sign_bit(le_hex(0x00)), k_dh_public_hex, small},  // order 4
        {le_hex(0x01), k_dh_public_hex, small},                 // order 1 (the neutral element)
        {with_sign_bit(le_hex(0x01)), k_dh_public_hex, small},
        {p_minus_1, k_dh_public_hex, small},  // order 2
        {with_sign_bit(p_minus_1), k_dh_public_hex, small},
        {order8_y1, k_dh_public_hex, small},
        {with_sign_bit(order8_y1), k_dh_public_hex, small},
        {order8_y2, k_dh_public_hex, small},
        {with_sign_bit(order8_y2), k_dh_public_hex, small},
        // Non-canonical encodings (y >= p) of small-order points: y = p (0) and p + 1 (1).
        {repeated_hex(0xff, 0x7f).replace(0, 2, "ed"), k_dh_public_hex, small},
        {repeated_hex(0xff, 0xff).replace(0, 2, "ee"), k_dh_public_hex, small},
        // Other non-canonical encodings: y = p + 2, y = 2^255 - 1.
        {repeated_hex(0xff, 0x7f).replace(0, 2, "ef"), k_dh_public_hex, ed_noncanonical},
        {repeated_hex(0xff, 0xff), k_dh_public_hex, ed_noncanonical},
        // No x for these y (x^2 would not be a square): y = 2, y = 7, y = 0x0202..02.
        {le_hex(0x02), k_dh_public_hex, off_curve},
        {le_hex(0x07), k_dh_public_hex, off_curve},
        {repeated_hex(0x02, 0x02), k_dh_public_hex, off_curve},
        {with_sign_bit(repeated_hex(0x7f, 0x7f)), k_dh_public_hex, off_curve},
        // X25519 low-order u (RFC 7748 §7), also with bit 255 set and as u + p.
        {k_sign_public_hex, le_hex(0x00), low},
        {k_sign_public_hex, le_hex(0x01), low},
        {k_sign_public_hex, p_minus_1, low},
        {k_sign_public_hex, order8_u1, low},
        {k_sign_public_hex, order8_u2, low},
        {k_sign_public_hex, with_sign_bit(le_hex(0x00)), low},
        {k_sign_public_hex, with_sign_bit(order8_u1), low},
        {k_sign_public_hex, with_sign_bit(order8_u2), low},
        {k_sign_public_hex, repeated_hex(0xff, 0x7f).replace(0, 2, "ed"), low},  // p = 0
        {k_sign_public_hex, repeated_hex(0xff, 0x7f).replace(0, 2, "ee"), low},  // p + 1 = 1
        // Non-canonical X25519 encodings of ordinary u: bit 255 set, u = p + 2.
        {k_sign_public_hex, with_sign_bit(k_dh_public_hex), x_noncanonical},
        {k_sign_public_hex, repeated_hex(0xff, 0x7f).replace(0, 2, "ef"), x_noncanonical},
    };
    for (const Case& c : cases) {
        INFO("ed25519 " << c.sign_hex << " x25519 " << c.dh_hex);
        const PublicIdentity identity = identity_from_hex(c.sign_hex, c.dh_hex);
        CHECK_THAT(identity.key_problem(), Catch::StartsWith(c.expected));
        write_text(path, "sdmp-public-v1 " + c.sign_hex + c.dh_hex + " name=peer\n", k_0644);
        PublicIdentity loaded;
        const FileError error = load_public_identity(p, path, loaded);
        CHECK(error.code == errc::file_malformed);
        CHECK(mentions(error, path));
        CHECK(error.message.find("line 1: " + c.expected) != std::string::npos);
    }

    // Keys that are fine: the RFC keys, points whose y is 3, 0x0101..01 or 0x5555..55, any u
    // that is not low order (2, 9 = the base point), and generated identities.
    const std::vector<std::pair<std::string, std::string>> good = {
        {k_sign_public_hex, k_dh_public_hex},
        {le_hex(0x03), k_dh_public_hex},
        {repeated_hex(0x01, 0x01), k_dh_public_hex},
        {with_sign_bit(repeated_hex(0x55, 0x55)), k_dh_public_hex},
        {k_sign_public_hex, le_hex(0x02)},
        {k_sign_public_hex, le_hex(0x09)},
    };
    for (const auto& [sign_hex, dh_hex] : good) {
        INFO("ed25519 " << sign_hex << " x25519 " << dh_hex);
        CHECK(identity_from_hex(sign_hex, dh_hex).key_problem().empty());
    }
    for (int i = 0; i < 64; ++i)
        CHECK(Identity::generate(p).public_identity().key_problem().empty());
}
