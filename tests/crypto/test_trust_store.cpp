// The trust store (protocol.md §7.3).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/error.hpp"

using namespace sdmp;
using namespace sdmp::crypto;
namespace fs = std::filesystem;

namespace {

class TempDir {
  public:
    TempDir() {
        std::random_device device;
        path_ = fs::temp_directory_path() /
                ("sdmp-test-trust-" + std::to_string(device()) + std::to_string(device()));
        fs::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TrustedPeer make_peer(CryptoProvider& p, std::string name = {}, std::string address = {}) {
    const Identity id = Identity::generate(p);
    return {id.public_identity(), id.fingerprint(), std::move(name), std::move(address)};
}

std::string line_for(const TrustedPeer& peer, const std::string& extra = {}) {
    return format_public_identity(peer.identity) + extra + "\n";
}

}  // namespace

TEST_CASE("trust store add, find, remove", "[crypto][trust]") {
    CryptoProvider& p = default_provider();
    TrustStore store;
    const TrustedPeer alice = make_peer(p, "alice", "127.0.0.1:7000");
    const TrustedPeer bob = make_peer(p, "bob");
    const TrustedPeer anonymous = make_peer(p);
    REQUIRE_FALSE(store.add(alice));
    REQUIRE_FALSE(store.add(bob));
    REQUIRE_FALSE(store.add(anonymous));
    CHECK(store.size() == 3);

    CHECK(store.add(alice) == errc::duplicate_peer);
    TrustedPeer other_alice = make_peer(p, "alice");
    CHECK(store.add(other_alice) == errc::duplicate_peer);
    TrustedPeer same_key_new_name = alice;
    same_key_new_name.name = "carol";
    CHECK(store.add(same_key_new_name) == errc::duplicate_peer);
    CHECK(store.add(make_peer(p, "bad name")) == errc::malformed);
    CHECK(store.add(make_peer(p, "x", "no-port")) == errc::malformed);
    CHECK(store.size() == 3);

    REQUIRE(store.find(alice.fingerprint) != nullptr);
    CHECK(store.find(alice.fingerprint)->address == "127.0.0.1:7000");
    CHECK(store.find_by_name("bob")->fingerprint == bob.fingerprint);
    CHECK(store.find("alice")->fingerprint == alice.fingerprint);
    CHECK(store.find(anonymous.fingerprint.hex())->fingerprint == anonymous.fingerprint);
    CHECK(store.find_by_name("") == nullptr);
    CHECK(store.find("nobody") == nullptr);
    CHECK(store.find(other_alice.fingerprint) == nullptr);

    const auto peers = store.peers();
    REQUIRE(peers.size() == 3);
    CHECK(peers[0]->name.empty());
    CHECK(peers[1]->name == "alice");
    CHECK(peers[2]->name == "bob");

    CHECK_FALSE(store.remove("bob"));
    CHECK(store.find_by_name("bob") == nullptr);
    CHECK_FALSE(store.remove(anonymous.fingerprint.hex()));
    CHECK(store.remove("bob") == errc::unknown_peer);
    CHECK(store.remove(anonymous.fingerprint.hex()) == errc::unknown_peer);
    CHECK(store.size() == 1);
    // The name is free again after removal.
    CHECK_FALSE(store.add(make_peer(p, "bob")));
}

TEST_CASE("trust store file: load, save, reload", "[crypto][trust][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const TrustedPeer alice = make_peer(p, "alice", "localhost:9000");
    const TrustedPeer bob = make_peer(p);
    const fs::path path = dir / "trusted";
    write_text(path, "# peers\n\n" + line_for(alice, "  name=alice address=localhost:9000") +
                         "   # indented comment\n" + line_for(bob));
    TrustStore store;
    const FileError error = TrustStore::load(p, path, store);
    REQUIRE_FALSE(error);
    REQUIRE(store.size() == 2);
    CHECK(store.find("alice")->address == "localhost:9000");
    CHECK(store.find(bob.fingerprint)->name.empty());
    CHECK(store.find(bob.fingerprint)->identity == bob.identity);

    const TrustedPeer carol = make_peer(p, "carol", "[::1]:1234");
    REQUIRE_FALSE(store.add(carol));
    REQUIRE_FALSE(store.remove("alice"));
    REQUIRE_FALSE(store.save(path));
    const std::string saved = read_text(path);
    CHECK(saved.find(line_for(carol, " name=carol address=[::1]:1234")) != std::string::npos);
    // No temporary files are left behind.
    CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);

    TrustStore reloaded;
    REQUIRE_FALSE(TrustStore::load(p, path, reloaded));
    CHECK(reloaded.size() == 2);
    CHECK(reloaded.find("carol")->address == "[::1]:1234");
    CHECK(reloaded.find(bob.fingerprint) != nullptr);
    CHECK(reloaded.find("alice") == nullptr);

    // An empty store saves and loads as empty.
    REQUIRE_FALSE(TrustStore{}.save(dir / "empty"));
    TrustStore empty;
    REQUIRE_FALSE(TrustStore::load(p, dir / "empty", empty));
    CHECK(empty.size() == 0);
}

TEST_CASE("trust store file errors name the file and line", "[crypto][trust][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path path = dir / "trusted";
    const TrustedPeer a = make_peer(p);
    const TrustedPeer b = make_peer(p);

    TrustStore store;
    FileError error = TrustStore::load(p, dir / "missing", store);
    CHECK(error.code == errc::file_not_found);
    CHECK(error.message.find((dir / "missing").string()) != std::string::npos);

    struct Case {
        std::string text;
        errc code;
        std::string expected;
    };
    const std::vector<Case> cases = {
        {line_for(a) + line_for(a), errc::duplicate_peer, "line 2: duplicate peer"},
        {line_for(a, " name=x") + "\n" + line_for(b, " name=x"), errc::duplicate_peer,
         "line 3: duplicate name 'x' (already in line 1)"},
        {"# c\n" + line_for(a) + "garbage\n", errc::file_malformed, "line 3: expected"},
        {"sdmp-private-v1 00 00\n", errc::file_malformed, "line 1: found a private key"},
        {line_for(a, " port=1"), errc::file_malformed, "line 1: unexpected token"},
    };
    for (const Case& c : cases) {
        INFO("content: " << c.text);
        write_text(path, c.text);
        TrustStore s;
        error = TrustStore::load(p, path, s);
        REQUIRE(error);
        CHECK(error.code == c.code);
        CHECK(error.message.find(path.string()) != std::string::npos);
        CHECK(error.message.find(c.expected) != std::string::npos);
        CHECK(s.size() == 0);  // nothing is half-loaded
    }
}

TEST_CASE("trust store folder: load, duplicates, save", "[crypto][trust][files]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path folder = dir / "peers.d";
    fs::create_directories(folder);
    const TrustedPeer alice = make_peer(p);
    const TrustedPeer bob = make_peer(p);
    write_text(folder / "alice.pub", "# alice's laptop\n" + line_for(alice));
    write_text(folder / "b.pub", line_for(bob, " name=bob address=h:1"));
    write_text(folder / "notes.txt", "not a peer");
    fs::create_directories(folder / "sub.pub");  // a folder, not a regular file: ignored

    TrustStore store;
    REQUIRE_FALSE(TrustStore::load(p, folder, store));
    REQUIRE(store.size() == 2);
    CHECK(store.find("alice")->fingerprint == alice.fingerprint);  // named by the file stem
    CHECK(store.find("bob")->address == "h:1");

    // Save: add carol, drop alice, change bob's address.
    const TrustedPeer carol = make_peer(p, "carol");
    const TrustedPeer anonymous = make_peer(p);
    REQUIRE_FALSE(store.add(carol));
    REQUIRE_FALSE(store.add(anonymous));
    REQUIRE_FALSE(store.remove("alice"));
    TrustedPeer new_bob = *store.find("bob");
    REQUIRE_FALSE(store.remove("bob"));
    new_bob.address = "h:2";
    REQUIRE_FALSE(store.add(new_bob));
    REQUIRE_FALSE(store.save(folder));

    CHECK_FALSE(fs::exists(folder / "alice.pub"));
    CHECK(fs::exists(folder / "b.pub"));  // bob stays in his file
    CHECK(fs::exists(folder / "carol.pub"));
    CHECK(fs::exists(folder / (anonymous.fingerprint.hex() + ".pub")));
    CHECK(fs::exists(folder / "notes.txt"));

    TrustStore reloaded;
    REQUIRE_FALSE(TrustStore::load(p, folder, reloaded));
    CHECK(reloaded.size() == 3);
    CHECK(reloaded.find("bob")->address == "h:2");
    CHECK(reloaded.find("carol")->fingerprint == carol.fingerprint);
    // A "<fingerprint>.pub" file gives no name.
    CHECK(reloaded.find(anonymous.fingerprint)->name.empty());
    CHECK(reloaded.find("alice") == nullptr);

    // Duplicates across files name both files.
    write_text(folder / "zz.pub", line_for(carol));
    TrustStore dup;
    const FileError error = TrustStore::load(p, folder, dup);
    REQUIRE(error);
    CHECK(error.code == errc::duplicate_peer);
    CHECK(error.message.find("zz.pub") != std::string::npos);
    CHECK(error.message.find("carol.pub") != std::string::npos);
    fs::remove(folder / "zz.pub");

    // A file with two identities is malformed.
    write_text(folder / "two.pub", line_for(make_peer(p)) + line_for(make_peer(p)));
    const FileError two = TrustStore::load(p, folder, dup);
    CHECK(two.code == errc::file_malformed);
    CHECK(two.message.find("two.pub") != std::string::npos);
}

TEST_CASE("trust store parser never crashes on random input", "[crypto][trust][property]") {
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path path = dir / "store";
    std::mt19937 rng(777);
    const std::string valid =
        line_for(make_peer(p), " name=a address=h:1") + "# c\n" + line_for(make_peer(p), " name=b");
    for (int i = 0; i < 200; ++i) {
        std::string text = valid;
        if (i % 2 == 0) {
            text.resize(rng() % 400);
            for (char& c : text)
                c = static_cast<char>(rng() & 0xff);
        } else {
            for (int e = 0; e < 3; ++e)
                text[rng() % text.size()] = static_cast<char>(rng() & 0xff);
        }
        write_text(path, text);
        TrustStore store;
        const FileError error = TrustStore::load(p, path, store);
        if (error) {
            CHECK((error.code == errc::file_malformed || error.code == errc::duplicate_peer));
            CHECK(store.size() == 0);
        } else {
            CHECK(store.size() <= 2);
        }
    }
}

TEST_CASE("names that could be read as a fingerprint are refused", "[crypto][trust][files]") {
    // protocol.md §7.2: 16 or more hex digits and nothing else could be read as a fingerprint
    // or a fingerprint prefix, and would let this entry answer a lookup of another peer.
    CryptoProvider& p = default_provider();
    TempDir dir;
    const TrustedPeer victim = make_peer(p, "victim");
    const std::string victim_hex = victim.fingerprint.hex();
    std::string victim_upper = victim_hex;
    for (char& c : victim_upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::vector<std::string> refused = {victim_hex, victim_upper, victim_hex.substr(0, 16),
                                              "0123456789abcdefABCDEF"};
    const std::vector<std::string> allowed = {"0123456789abcde", "0123456789abcdeg",
                                              "0123456789abcdef-1", "deadbeef", "cafe.babe"};

    TrustStore store;
    REQUIRE_FALSE(store.add(victim));
    for (const std::string& name : refused) {
        INFO("name " << name);
        CHECK(store.add(make_peer(p, name)) == errc::malformed);
        CHECK(peer_name_problem(name).find("fingerprint") != std::string::npos);
    }
    CHECK(store.size() == 1);
    for (const std::string& name : allowed) {
        INFO("name " << name);
        CHECK(peer_name_problem(name).empty());
        CHECK_FALSE(store.add(make_peer(p, name)));
    }
    // A fingerprint, typed in either case, finds only the peer that has it.
    CHECK(store.find(victim_hex) == store.find(victim.fingerprint));
    CHECK(store.find(victim_upper)->name == "victim");

    // Store files and folder files are refused with the line and the reason.
    const fs::path path = dir / "trusted";
    const TrustedPeer impostor = make_peer(p);
    for (const std::string& name : refused) {
        INFO("name " << name);
        write_text(path, line_for(victim, " name=victim") + line_for(impostor, " name=" + name));
        TrustStore loaded;
        const FileError error = TrustStore::load(p, path, loaded);
        CHECK(error.code == errc::file_malformed);
        CHECK(error.message.find(path.string()) != std::string::npos);
        CHECK(error.message.find("line 2: invalid name") != std::string::npos);
        CHECK(error.message.find("could be read as a fingerprint") != std::string::npos);
        CHECK(loaded.size() == 0);
    }
    const fs::path folder = dir / "peers.d";
    fs::create_directories(folder);
    write_text(folder / "impostor.pub", line_for(impostor, " name=" + victim_hex));
    TrustStore loaded;
    const FileError error = TrustStore::load(p, folder, loaded);
    CHECK(error.code == errc::file_malformed);
    CHECK(error.message.find("impostor.pub") != std::string::npos);
    CHECK(error.message.find("could be read as a fingerprint") != std::string::npos);
}

TEST_CASE("a folder file whose stem could be read as a fingerprint names no peer",
          "[crypto][trust][files]") {
    // protocol.md §7.3: the stem names the peer only when it is a valid NAME; "<fingerprint>"
    // and any other 16+ hex-digit stem are not, and the peer stays unnamed.
    CryptoProvider& p = default_provider();
    TempDir dir;
    const fs::path folder = dir / "peers.d";
    fs::create_directories(folder);
    const TrustedPeer victim = make_peer(p);
    const TrustedPeer other = make_peer(p);
    const TrustedPeer named = make_peer(p);
    // Named after another peer's fingerprint prefix; and a short hex stem, which may name.
    write_text(folder / (victim.fingerprint.short_hex() + ".pub"), line_for(other));
    write_text(folder / "c0ffee.pub", line_for(named));
    write_text(folder / (victim.fingerprint.hex() + ".pub"), line_for(victim));
    TrustStore store;
    REQUIRE_FALSE(TrustStore::load(p, folder, store));
    REQUIRE(store.size() == 3);
    CHECK(store.find(other.fingerprint)->name.empty());
    CHECK(store.find(victim.fingerprint)->name.empty());
    CHECK(store.find("c0ffee")->fingerprint == named.fingerprint);
    CHECK(store.find_by_name(victim.fingerprint.short_hex()) == nullptr);
}

TEST_CASE("trust store add refuses a fingerprint that is not the identity's", "[crypto][trust]") {
    // protocol.md §1: the fingerprint is SHA-256 of the canonical bytes; an entry filed under
    // another fingerprint would answer for a key it does not hold.
    CryptoProvider& p = default_provider();
    const TrustedPeer victim = make_peer(p, "victim");
    TrustedPeer impostor = make_peer(p, "impostor");
    impostor.fingerprint = victim.fingerprint;
    TrustStore store;
    CHECK(store.add(impostor) == errc::malformed);
    TrustedPeer zero = make_peer(p);
    zero.fingerprint = Fingerprint{};
    CHECK(store.add(zero) == errc::malformed);
    CHECK(store.size() == 0);
    CHECK(store.find(victim.fingerprint) == nullptr);
    // The real one still goes in.
    CHECK_FALSE(store.add(victim));
    CHECK(store.find(victim.fingerprint)->identity == victim.identity);
}

TEST_CASE("trust stores refuse small-order and invalid keys", "[crypto][trust][files]") {
    // protocol.md §1. Each kind of refused key once here; every refused encoding is in
    // test_identity.cpp.
    CryptoProvider& p = default_provider();
    TempDir dir;
    const TrustedPeer good = make_peer(p, "good");
    auto with_keys = [&](SignPublic sign, DhPublic dh) {
        TrustedPeer peer = good;
        peer.identity.sign_public = sign;
        peer.identity.dh_public = dh;
        peer.fingerprint = peer.identity.fingerprint(p);
        peer.name = "bad";
        return peer;
    };
    SignPublic ed_p_plus_2{};  // y = p + 2: not canonical
    ed_p_plus_2.fill(0xff);
    ed_p_plus_2[0] = 0xef;
    ed_p_plus_2[31] = 0x7f;
    SignPublic ed_off_curve{};  // y = 2
    ed_off_curve[0] = 0x02;
    const DhPublic x_order_8 = {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
                                0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
                                0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00};
    struct Case {
        TrustedPeer peer;
        std::string expected;
    };
    const std::vector<Case> cases = {
        {with_keys(SignPublic{1}, good.identity.dh_public),  // the neutral element
         "Ed25519 public key is a point of small order"},
        {with_keys(ed_p_plus_2, good.identity.dh_public),
         "Ed25519 public key is not canonically encoded"},
        {with_keys(ed_off_curve, good.identity.dh_public),
         "Ed25519 public key is not a point on the curve"},
        {with_keys(good.identity.sign_public, DhPublic{}),
         "X25519 public key is a low-order point"},
        {with_keys(good.identity.sign_public, x_order_8), "X25519 public key is a low-order point"},
    };
    const fs::path path = dir / "trusted";
    const fs::path folder = dir / "peers.d";
    fs::create_directories(folder);
    for (const Case& c : cases) {
        INFO(c.expected);
        TrustStore store;
        CHECK(store.add(c.peer) == errc::invalid_key);
        CHECK(store.size() == 0);

        write_text(path, line_for(good, " name=good") + line_for(c.peer, " name=bad"));
        TrustStore from_file;
        const FileError file_error = TrustStore::load(p, path, from_file);
        CHECK(file_error.code == errc::file_malformed);
        CHECK(file_error.message.find(path.string() + ": line 2: " + c.expected) !=
              std::string::npos);

        write_text(folder / "bad.pub", line_for(c.peer));
        TrustStore from_folder;
        const FileError folder_error = TrustStore::load(p, folder, from_folder);
        CHECK(folder_error.code == errc::file_malformed);
        CHECK(folder_error.message.find("bad.pub: line 1: " + c.expected) != std::string::npos);
    }
}

TEST_CASE("every file the library writes is ASCII", "[crypto][trust][files]") {
    // protocol.md §7: key and trust-store files are ASCII text.
    CryptoProvider& p = default_provider();
    TempDir dir;
    const Identity id = Identity::generate(p);
    REQUIRE_FALSE(save_identity(id, dir / "node.key"));
    REQUIRE_FALSE(save_public_identity(id.public_identity(), dir / "node.pub"));
    TrustStore store;
    REQUIRE_FALSE(store.add(make_peer(p, "alice", "[::1]:7000")));
    REQUIRE_FALSE(store.add(make_peer(p)));
    REQUIRE_FALSE(store.save(dir / "trusted"));
    fs::create_directories(dir / "peers.d");
    REQUIRE_FALSE(store.save(dir / "peers.d"));

    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
        if (entry.is_regular_file())
            files.push_back(entry.path());
    }
    CHECK(files.size() == 5);
    for (const fs::path& file : files) {
        INFO(file);
        const std::string text = read_text(file);
        CHECK_FALSE(text.empty());
        CHECK(std::all_of(text.begin(), text.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
    }
}

TEST_CASE("a trusted peer from the public identity alone", "[crypto][trust]") {
    // protocol.md §1: the fingerprint is derived, so it cannot be paired wrongly.
    CryptoProvider& p = default_provider();
    const Identity id = Identity::generate(p);
    const TrustedPeer peer =
        TrustedPeer::from_identity(id.public_identity(), "carol", "127.0.0.1:7000");
    CHECK(peer.identity == id.public_identity());
    CHECK(peer.fingerprint == id.fingerprint());
    CHECK(peer.name == "carol");
    CHECK(peer.address == "127.0.0.1:7000");

    TrustStore store;
    REQUIRE_FALSE(store.add(peer));
    CHECK(store.find("carol")->fingerprint == id.fingerprint());
    CHECK(store.find(id.fingerprint()) != nullptr);

    // Name and address are optional; the store's own checks still apply.
    const Identity other = Identity::generate(p);
    const TrustedPeer anonymous = TrustedPeer::from_identity(other.public_identity());
    CHECK(anonymous.fingerprint == other.fingerprint());
    CHECK(anonymous.name.empty());
    CHECK(anonymous.address.empty());
    CHECK_FALSE(store.add(anonymous));
    CHECK(store.add(TrustedPeer::from_identity(id.public_identity())) == errc::duplicate_peer);
    CHECK(store.add(TrustedPeer::from_identity(Identity::generate(p).public_identity(),
                                               "bad name")) == errc::malformed);
    CHECK(store.size() == 2);

    // A public identity read back from its file: the fingerprint is the same derivation.
    TempDir dir;
    REQUIRE_FALSE(save_public_identity(id.public_identity(), dir / "carol.pub"));
    PublicIdentity loaded;
    REQUIRE_FALSE(load_public_identity(p, dir / "carol.pub", loaded));
    CHECK(TrustedPeer::from_identity(loaded).fingerprint == id.fingerprint());
}
