// KvStore (SQLite), and the kv methods called over a loopback session.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sdmp/services/kv_service.hpp"
#include "sdmp/services/kv_store.hpp"
#include "support.hpp"

using namespace sdmp;
using namespace sdmp::services;
using sdmp::test::invoke;
using sdmp::test::ScratchDir;
using json = nlohmann::json;

TEST_CASE("prefix_upper_bound is the least string above every string with the prefix") {
    CHECK(prefix_upper_bound("") == std::nullopt);
    CHECK(prefix_upper_bound("abc") == "abd");
    CHECK(prefix_upper_bound(std::string("a\xff\xff", 3)) == "b");
    CHECK(prefix_upper_bound(std::string("\xff", 1)) == std::nullopt);
}

TEST_CASE("KvStore puts, gets, erases and lists by prefix, and persists") {
    ScratchDir dir;
    const auto file = dir.file("kv.sqlite");
    {
        KvStore store(file);
        store.put("a/1", "one");
        store.put("a/2", "two");
        store.put(std::string("a\xff", 2), "high");
        store.put("b", "bee");
        store.put("a/1", "uno");  // overwrite
        CHECK(store.get("a/1") == "uno");
        CHECK(store.get("missing") == std::nullopt);

        auto page = store.list("a/", "", 10);
        CHECK(page.keys == std::vector<std::string>{"a/1", "a/2"});
        CHECK_FALSE(page.more);
        page = store.list("a", "", 10);
        CHECK(page.keys == std::vector<std::string>{"a/1", "a/2", std::string("a\xff", 2)});
        page = store.list("", "", 2);
        CHECK(page.keys == std::vector<std::string>{"a/1", "a/2"});
        CHECK(page.more);
        page = store.list("", "a/2", 10);  // after a key
        CHECK(page.keys == std::vector<std::string>{std::string("a\xff", 2), "b"});

        CHECK(store.erase("b"));
        CHECK_FALSE(store.erase("b"));
    }
    KvStore reopened(file);
    CHECK(reopened.get("a/1") == "uno");
    CHECK(reopened.get("b") == std::nullopt);
}

TEST_CASE("kv methods: JSON shapes, not_found, invalid_argument and too_large") {
    ScratchDir dir;
    Router router;
    KvLimits limits;
    limits.max_key_size = 8;
    limits.max_value_size = 32;
    limits.max_list = 2;
    KvService::open(dir.file("kv.sqlite"), limits, Logger::null())->add_to(router);

    auto put = invoke(router, "kv.put", R"({"key":"k1","value":{"x":[1,2]}})");
    REQUIRE(put.is_ok());
    CHECK(json::parse(put.text()) == json{{"key", "k1"}});
    auto get = invoke(router, "kv.get", R"({"key":"k1"})");
    REQUIRE(get.is_ok());
    CHECK(json::parse(get.text()) == json::parse(R"({"key":"k1","value":{"x":[1,2]}})"));

    CHECK(invoke(router, "kv.get", R"({"key":"nope"})").status == Status::not_found);
    CHECK(invoke(router, "kv.delete", R"({"key":"nope"})").status == Status::not_found);
    CHECK(invoke(router, "kv.get", "{").status == Status::invalid_argument);
    CHECK(invoke(router, "kv.get", "[1]").status == Status::invalid_argument);
    CHECK(invoke(router, "kv.get", R"({"key":""})").status == Status::invalid_argument);
    CHECK(invoke(router, "kv.put", R"({"key":"k"})").status == Status::invalid_argument);
    CHECK(invoke(router, "kv.put", R"({"key":"123456789","value":1})").status == Status::too_large);
    CHECK(invoke(router, "kv.put", R"({"key":"k","value":"0123456789012345678901234567890123"})")
              .status == Status::too_large);
    CHECK(invoke(router, "kv.list", R"({"limit":0})").status == Status::invalid_argument);

    REQUIRE(invoke(router, "kv.put", R"({"key":"k2","value":2})").is_ok());
    REQUIRE(invoke(router, "kv.put", R"({"key":"k3","value":3})").is_ok());
    // A limit above the maximum is clamped; `more` tells the caller to page on.
    auto list = invoke(router, "kv.list", R"({"prefix":"k","limit":100})");
    REQUIRE(list.is_ok());
    CHECK(json::parse(list.text()) == json{{"keys", {"k1", "k2"}}, {"more", true}});
    list = invoke(router, "kv.list", R"({"prefix":"k","after":"k2"})");
    CHECK(json::parse(list.text()) == json{{"keys", {"k3"}}, {"more", false}});

    auto erased = invoke(router, "kv.delete", R"({"key":"k1"})");
    CHECK(erased.is_ok());
    CHECK(invoke(router, "kv.get", R"({"key":"k1"})").status == Status::not_found);
}
