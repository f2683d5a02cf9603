// The trust store (protocol.md §7.3).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

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
