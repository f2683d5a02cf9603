// The kv service through the real binaries: JSON shapes, statuses, and durability of
// acknowledged writes across kill -9.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "node.hpp"

using namespace sdmp::test;
using json = nlohmann::json;

namespace {

struct KvFixture {
    TempDir dir;
    Key server = make_key(dir, "server");
    Key client = make_key(dir, "client");
    std::string server_trust = dir.file("server.trust");
    std::string client_trust = dir.file("client.trust");
    std::string data = dir.file("data");

    KvFixture() {
        trust(server_trust, client);
        trust(client_trust, server);
    }
    ServeNode start() {
        return start_serve(server, server_trust, {"--service", "kv", "--data", data},
                           dir.file("server.log"));
    }
    ProcessResult kv(const ServeNode& node, const std::string& method, const json& body) {
        return call(client, client_trust, node.peer(), method, {body.dump()});
    }
};

}  // namespace

TEST_CASE("kv put, get, list and delete with their JSON shapes and statuses") {
    KvFixture f;
    auto node = f.start();

    auto put = f.kv(node, "kv.put", {{"key", "user/1"}, {"value", {{"name", "ada"}}}});
    REQUIRE(put.exit_code == 0);
    CHECK(json::parse(put.out) == json{{"key", "user/1"}});
    REQUIRE(f.kv(node, "kv.put", {{"key", "user/2"}, {"value", "text"}}).exit_code == 0);
    REQUIRE(f.kv(node, "kv.put", {{"key", "other"}, {"value", 3}}).exit_code == 0);

    auto get = f.kv(node, "kv.get", {{"key", "user/1"}});
    REQUIRE(get.exit_code == 0);
    CHECK(json::parse(get.out) == json{{"key", "user/1"}, {"value", {{"name", "ada"}}}});

    auto list = f.kv(node, "kv.list", {{"prefix", "user/"}});
    REQUIRE(list.exit_code == 0);
    CHECK(json::parse(list.out) == json{{"keys", {"user/1", "user/2"}}, {"more", false}});
    auto page = f.kv(node, "kv.list", {{"prefix", ""}, {"limit", 1}});
    REQUIRE(page.exit_code == 0);
    CHECK(json::parse(page.out) == json{{"keys", {"other"}}, {"more", true}});

    auto erase = f.kv(node, "kv.delete", {{"key", "user/2"}});
    CHECK(erase.exit_code == 0);

    auto absent = f.kv(node, "kv.get", {{"key", "user/2"}});
    CHECK(absent.exit_code == 1);
    CHECK(line_count(absent.err) == 1);
    CHECK(absent.err.find("not_found") != std::string::npos);
    CHECK(f.kv(node, "kv.delete", {{"key", "user/2"}}).exit_code == 1);

    auto malformed = call(f.client, f.client_trust, node.peer(), "kv.get", {"{\"key\":"});
    CHECK(malformed.exit_code == 1);
    CHECK(malformed.err.find("invalid_argument") != std::string::npos);
    auto wrong_type = f.kv(node, "kv.put", {{"key", 7}, {"value", 1}});
    CHECK(wrong_type.exit_code == 1);
    CHECK(wrong_type.err.find("invalid_argument") != std::string::npos);

    CHECK(node.process->terminate() == 0);
}

TEST_CASE("acknowledged kv writes survive kill -9") {
    KvFixture f;
    auto node = f.start();
    constexpr int k_writes = 20;
    for (int i = 0; i < k_writes; ++i) {
        auto put = f.kv(node, "kv.put",
                        {{"key", "k" + std::to_string(i)}, {"value", {{"i", i}, {"s", "v"}}}});
        REQUIRE(put.exit_code == 0);  // acknowledged: durable from here on
    }
    // No graceful shutdown: the process dies between two writes.
    CHECK(node.process->kill() == 128 + 9);

    auto restarted = f.start();
    for (int i = 0; i < k_writes; ++i) {
        const std::string key = "k" + std::to_string(i);
        auto get = f.kv(restarted, "kv.get", {{"key", key}});
        INFO(key << ": " << get.err);
        REQUIRE(get.exit_code == 0);
        CHECK(json::parse(get.out) == json{{"key", key}, {"value", {{"i", i}, {"s", "v"}}}});
    }
    CHECK(restarted.process->terminate() == 0);
}
