// The journal service through the real binaries: three nodes converge byte-exact, and every
// journal's line numbers form the SHA-256 chain (docs/apps.md "journal").
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node.hpp"
#include "sdmp/crypto/bytes.hpp"
#include "sdmp/crypto/crypto_provider.hpp"

using namespace sdmp::test;
using json = nlohmann::json;

namespace {

std::string sha256_hex(const std::string& text) {
    return sdmp::to_hex(sdmp::crypto::default_provider().sha256(sdmp::as_bytes(text)));
}

std::string random_bytes(std::size_t size, std::uint64_t seed) {
    std::mt19937_64 random(seed);
    std::string bytes(size, '\0');
    for (auto& b : bytes)
        b = static_cast<char>(random() & 0xff);
    return bytes;
}

struct Line {
    std::string number, publisher, resource;
};

Line split(const std::string& text) {
    REQUIRE(text.size() == 194);
    REQUIRE(text[64] == '@');
    REQUIRE(text[129] == '/');
    return {text.substr(0, 64), text.substr(65, 64), text.substr(130)};
}

// Three journal nodes A <- B <- C (each --peer of the next), one trust store for all, and two
// operator keys that publish.
struct JournalFixture {
    TempDir dir;
    Key a = make_key(dir, "a");
    Key b = make_key(dir, "b");
    Key c = make_key(dir, "c");
    Key op = make_key(dir, "op");
    Key op2 = make_key(dir, "op2");
    std::string store = dir.file("trust");
    std::vector<ServeNode> nodes;

    JournalFixture() {
        for (const auto* key : {&a, &b, &c, &op, &op2})
            trust(store, *key);
        nodes.push_back(start(a, {}));
        nodes.push_back(start(b, {nodes[0].peer()}));
        nodes.push_back(start(c, {nodes[1].peer()}));
    }
    ServeNode start(const Key& key, const std::vector<std::string>& peers) {
        std::vector<std::string> args = {
            "--service",       "journal",
            "--data",          dir.file("data-" + key.fingerprint.substr(0, 8)),
            "--sync-interval", "1"};
        for (const auto& peer : peers) {
            args.push_back("--peer");
            args.push_back(peer);
        }
        return start_serve(key, store, args, dir.file("log-" + key.fingerprint.substr(0, 8)));
    }
    json publish(const Key& who, const ServeNode& node, const std::string& bytes) {
        auto r = call(who, store, node.peer(), "journal.publish", {"-"}, bytes);
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        return json::parse(r.out);
    }
    // Every line after the first, paging with `since` = the last line seen.
    std::vector<std::string> lines(const ServeNode& node) {
        std::vector<std::string> all;
        std::string since = node.fingerprint;
        for (;;) {
            auto r = call(op, store, node.peer(), "journal.synchronize",
                          {json{{"since", since}, {"limit", 2}}.dump()});
            INFO(r.err);
            REQUIRE(r.exit_code == 0);
            const auto answer = json::parse(r.out);
            REQUIRE(answer["since"] == since);
            const auto entries = answer["entries"].get<std::vector<std::string>>();
            all.insert(all.end(), entries.begin(), entries.end());
            if (entries.size() < 2)
                return all;
            since = entries.back();
        }
    }
    std::string logs() const {
        std::string text;
        for (const auto& node : nodes)
            text += node.process->stderr_text();
        return text;
    }
};

std::set<std::string> resource_set(const std::vector<std::string>& lines) {
    std::set<std::string> set;
    for (const auto& text : lines) {
        const auto line = split(text);
        set.insert(line.publisher + "/" + line.resource);
    }
    return set;
}

}  // namespace

TEST_CASE("three journal nodes converge on the same resources, byte for byte") {
    JournalFixture f;
    const std::string r1 = random_bytes(1000, 1);
    const std::string r2 = random_bytes(70000, 2);
    const std::string r3 = std::string("\0\0resource three\n\0", 19);

    std::map<std::string, std::string> expected;  // "publisher/id" -> bytes
    auto record = [&](const Key& who, const std::string& bytes, const json& answer) {
        CHECK(answer["id"] == sha256_hex(bytes));
        const auto line = split(answer["line"].get<std::string>());
        CHECK(line.publisher == who.fingerprint);
        CHECK(line.resource == sha256_hex(bytes));
        expected[who.fingerprint + "/" + sha256_hex(bytes)] = bytes;
    };
    record(f.op, r1, f.publish(f.op, f.nodes[0], r1));
    record(f.op, r2, f.publish(f.op, f.nodes[1], r2));
    record(f.op, r3, f.publish(f.op, f.nodes[2], r3));
    // The same bytes from another publisher are another resource; the same publisher and bytes
    // again are deduplicated wherever they arrive.
    record(f.op2, r2, f.publish(f.op2, f.nodes[2], r2));
    record(f.op, r1, f.publish(f.op, f.nodes[2], r1));
    REQUIRE(expected.size() == 4);
    std::set<std::string> want;
    for (const auto& [key, bytes] : expected)
        want.insert(key);

    // Poll until every node holds exactly the expected set (safety timeout only).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    std::vector<std::set<std::string>> sets(3);
    for (;;) {
        for (std::size_t i = 0; i < 3; ++i)
            sets[i] = resource_set(f.lines(f.nodes[i]));
        if (sets[0] == want && sets[1] == want && sets[2] == want)
            break;
        if (std::chrono::steady_clock::now() > deadline) {
            INFO(f.logs());
            FAIL("journals did not converge");
        }
    }
    for (std::size_t i = 0; i < 3; ++i) {
        // Dedupe: each (publisher, resource) appears on exactly one line.
        CHECK(f.lines(f.nodes[i]).size() == want.size());
        for (const auto& [key, bytes] : expected) {
            const auto slash = key.find('/');
            auto get =
                call(f.op, f.store, f.nodes[i].peer(), "resource.get",
                     {json{{"author", key.substr(0, slash)}, {"resource", key.substr(slash + 1)}}
                          .dump()});
            INFO("node " << i << " " << key << ": " << get.err);
            REQUIRE(get.exit_code == 0);
            CHECK(get.out == bytes);
        }
    }
    auto missing =
        call(f.op, f.store, f.nodes[0].peer(), "resource.get",
             {json{{"author", f.op.fingerprint}, {"resource", sha256_hex("none")}}.dump()});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err.find("not_found") != std::string::npos);

    for (auto& node : f.nodes)
        CHECK(node.process->terminate() == 0);
}

TEST_CASE("journal line numbers form the SHA-256 chain and survive a restart") {
    TempDir dir;
    Key node_key = make_key(dir, "node");
    Key op = make_key(dir, "op");
    const auto store = dir.file("trust");
    trust(store, node_key);
    trust(store, op);
    const std::vector<std::string> args = {"--service", "journal", "--data", dir.file("data")};
    auto node = start_serve(node_key, store, args, dir.file("log"));
    for (int i = 0; i < 5; ++i) {
        auto r = call(op, store, node.peer(), "journal.publish", {"-"},
                      random_bytes(100 + static_cast<std::size_t>(i), 10 + i));
        REQUIRE(r.exit_code == 0);
    }
    auto sync = [&](const std::string& since) {
        auto r =
            call(op, store, node.peer(), "journal.synchronize", {json{{"since", since}}.dump()});
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        return json::parse(r.out)["entries"].get<std::vector<std::string>>();
    };

    // The first line is the node's fingerprint: `since` = fingerprint means from the start.
    const auto lines = sync(node_key.fingerprint);
    REQUIRE(lines.size() == 5);
    std::string previous = node_key.fingerprint;
    for (const auto& text : lines) {
        const auto line = split(text);
        CHECK(line.number == sha256_hex(previous));
        CHECK(line.publisher == op.fingerprint);
        previous = text;
    }
    // `since` by line text or by line number: the entries after that line.
    CHECK(sync(lines[1]) == std::vector<std::string>(lines.begin() + 2, lines.end()));
    CHECK(sync(split(lines[1]).number) == std::vector<std::string>(lines.begin() + 2, lines.end()));
    CHECK(sync(lines.back()).empty());
    auto unknown = call(op, store, node.peer(), "journal.synchronize",
                        {json{{"since", sha256_hex("not a line")}}.dump()});
    CHECK(unknown.exit_code == 1);
    CHECK(unknown.err.find("not_found") != std::string::npos);
    auto bad_limit = call(op, store, node.peer(), "journal.synchronize",
                          {json{{"since", node_key.fingerprint}, {"limit", 0}}.dump()});
    CHECK(bad_limit.exit_code == 1);
    CHECK(bad_limit.err.find("invalid_argument") != std::string::npos);

    // Durable: the same journal after a restart.
    REQUIRE(node.process->terminate() == 0);
    auto restarted = start_serve(node_key, store, args, dir.file("log"));
    auto again = call(op, store, restarted.peer(), "journal.synchronize",
                      {json{{"since", node_key.fingerprint}}.dump()});
    REQUIRE(again.exit_code == 0);
    CHECK(json::parse(again.out)["entries"].get<std::vector<std::string>>() == lines);
    CHECK(restarted.process->terminate() == 0);
}
