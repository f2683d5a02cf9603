// keygen / id / trust through the real `sdmp` binary.
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "process.hpp"

using sdmp::test::run_process;
using sdmp::test::TempDir;

namespace {

const std::string tool = SDMP_TOOL_PATH;

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
        s.pop_back();
    return s;
}

bool is_fingerprint(const std::string& s) {
    if (s.size() != 64)
        return false;
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

}  // namespace

TEST_CASE("keygen writes a private file with mode 0600 and a public file and id agrees") {
    TempDir dir;
    auto key = dir.file("node.key");
    auto gen = run_process({tool, "keygen", "--out", key});
    REQUIRE(gen.exit_code == 0);
    auto fingerprint = trimmed(gen.out);
    REQUIRE(is_fingerprint(fingerprint));

    struct stat st {};
    REQUIRE(stat(key.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto id_private = run_process({tool, "id", key});
    auto id_public = run_process({tool, "id", key + ".pub"});
    CHECK(id_private.exit_code == 0);
    CHECK(id_public.exit_code == 0);
    CHECK(trimmed(id_private.out) == fingerprint);
    CHECK(trimmed(id_public.out) == fingerprint);
}

TEST_CASE("trust add, list and remove round trip by name and fingerprint") {
    TempDir dir;
    auto a = trimmed(run_process({tool, "keygen", "--out", dir.file("a.key")}).out);
    auto b = trimmed(run_process({tool, "keygen", "--out", dir.file("b.key")}).out);
    auto store = dir.file("trusted");

    auto add_a = run_process({tool, "trust", "add", "--store", store, dir.file("a.key.pub"),
                              "--name", "alpha", "--address", "127.0.0.1:7000"});
    REQUIRE(add_a.exit_code == 0);
    CHECK(trimmed(add_a.out) == a);
    REQUIRE(
        run_process({tool, "trust", "add", "--store", store, dir.file("b.key.pub")}).exit_code ==
        0);

    auto dup = run_process({tool, "trust", "add", "--store", store, dir.file("a.key.pub")});
    CHECK(dup.exit_code != 0);
    CHECK(dup.err.find(store) != std::string::npos);

    auto list = run_process({tool, "trust", "list", "--store", store});
    REQUIRE(list.exit_code == 0);
    CHECK(list.out.find(a) != std::string::npos);
    CHECK(list.out.find("alpha") != std::string::npos);
    CHECK(list.out.find("127.0.0.1:7000") != std::string::npos);
    CHECK(list.out.find(b) != std::string::npos);

    REQUIRE(run_process({tool, "trust", "remove", "--store", store, "alpha"}).exit_code == 0);
    REQUIRE(run_process({tool, "trust", "remove", "--store", store, b}).exit_code == 0);
    auto empty = run_process({tool, "trust", "list", "--store", store});
    CHECK(empty.exit_code == 0);
    CHECK(empty.out.find(a) == std::string::npos);
    CHECK(empty.out.find(b) == std::string::npos);

    auto missing = run_process({tool, "trust", "remove", "--store", store, "alpha"});
    CHECK(missing.exit_code != 0);
    CHECK(missing.err.find("alpha") != std::string::npos);
}

TEST_CASE("wrong files give one clear line naming the file") {
    TempDir dir;
    auto missing = run_process({tool, "id", dir.file("absent.key")});
    CHECK(missing.exit_code != 0);
    CHECK(missing.err.find("absent.key") != std::string::npos);
    CHECK(std::count(missing.err.begin(), missing.err.end(), '\n') == 1);

    std::ofstream(dir.file("junk.key")) << "not a key\n";
    auto junk = run_process({tool, "id", dir.file("junk.key")});
    CHECK(junk.exit_code != 0);
    CHECK(junk.err.find("junk.key") != std::string::npos);

    auto key = dir.file("open.key");
    REQUIRE(run_process({tool, "keygen", "--out", key}).exit_code == 0);
    REQUIRE(chmod(key.c_str(), 0644) == 0);
    auto trust = run_process(
        {tool, "trust", "add", "--store", dir.file("store"), key});  // loads the private file
    CHECK(trust.exit_code != 0);
    CHECK(trust.err.find("open.key") != std::string::npos);
}

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool is_ascii(const std::string& text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

}  // namespace

TEST_CASE("trust add refuses a name that could be read as a fingerprint") {
    // protocol.md §7.2: 16 or more hex digits and nothing else is not a name, so that a
    // fingerprint (or prefix) typed as --peer or to `trust remove` never finds another key.
    TempDir dir;
    REQUIRE(run_process({tool, "keygen", "--out", dir.file("a.key")}).exit_code == 0);
    const auto b = trimmed(run_process({tool, "keygen", "--out", dir.file("b.key")}).out);
    REQUIRE(is_fingerprint(b));
    const auto store = dir.file("trusted");
    for (const std::string& name : {b, b.substr(0, 16), std::string("ABCDEF0123456789")}) {
        INFO("--name " << name);
        auto add = run_process(
            {tool, "trust", "add", "--store", store, dir.file("a.key.pub"), "--name", name});
        CHECK(add.exit_code == 1);
        CHECK(add.err.find("invalid --name '" + name + "'") != std::string::npos);
        CHECK(add.err.find("could be read as a fingerprint") != std::string::npos);
        CHECK(std::count(add.err.begin(), add.err.end(), '\n') == 1);
        CHECK_FALSE(std::ifstream(store).good());  // nothing was written
    }
    // Fewer hex digits, or anything else in the name, is fine.
    CHECK(run_process({tool, "trust", "add", "--store", store, dir.file("a.key.pub"), "--name",
                       "0123456789abcde"})
              .exit_code == 0);
}

TEST_CASE("trust add refuses a public identity with a low-order key") {
    // protocol.md §1: an X25519 key of 0 (or another low-order value) is refused when read.
    TempDir dir;
    REQUIRE(run_process({tool, "keygen", "--out", dir.file("a.key")}).exit_code == 0);
    std::string text = read_file(dir.file("a.key.pub"));
    const std::size_t hex = text.find(' ') + 1;
    text.replace(hex + 64, 64, std::string(64, '0'));  // the X25519 half of the 128 hex
    std::ofstream(dir.file("low.pub")) << text;
    auto add =
        run_process({tool, "trust", "add", "--store", dir.file("trusted"), dir.file("low.pub")});
    CHECK(add.exit_code == 1);
    CHECK(add.err.find("low.pub: line 1: X25519 public key is a low-order point") !=
          std::string::npos);
    CHECK(std::count(add.err.begin(), add.err.end(), '\n') == 1);
}

TEST_CASE("keygen and trust add write ASCII files") {
    // protocol.md §7: key and trust-store files are ASCII text.
    TempDir dir;
    REQUIRE(run_process({tool, "keygen", "--out", dir.file("a.key")}).exit_code == 0);
    REQUIRE(run_process({tool, "trust", "add", "--store", dir.file("trusted"),
                         dir.file("a.key.pub"), "--name", "alpha", "--address", "[::1]:7000"})
                .exit_code == 0);
    REQUIRE(std::filesystem::create_directory(dir.file("peers.d")));
    REQUIRE(run_process({tool, "trust", "add", "--store", dir.file("peers.d"),
                         dir.file("a.key.pub"), "--name", "alpha"})
                .exit_code == 0);
    for (const std::string& file : {dir.file("a.key"), dir.file("a.key.pub"), dir.file("trusted"),
                                    dir.file("peers.d/alpha.pub")}) {
        INFO(file);
        const std::string text = read_file(file);
        CHECK_FALSE(text.empty());
        CHECK(is_ascii(text));
    }
}
