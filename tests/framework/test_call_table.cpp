// Our calls awaiting answers (framework/src/detail/call_table.hpp, protocol.md §6.2): ids,
// answers matched once, and the peer's goaway. No sockets.
#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>
#include <memory>
#include <memory_resource>

#include "detail/call_table.hpp"

using Table = sdmp::detail::CallTable<std::shared_ptr<int>>;

TEST_CASE("ids start at 1 and increase", "[framework][call_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    Table table(&pool);
    CHECK(table.next_id() == 1u);
    CHECK(table.next_id() == 2u);
    CHECK(table.next_id() == 3u);
}

TEST_CASE("an answer completes its call once, a second or unknown answer finds nothing",
          "[framework][call_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    Table table(&pool);
    auto call = std::make_shared<int>(1);
    table.insert(1, call);
    CHECK(table.take(1) == call);
    CHECK(table.take(1) == nullptr);
    CHECK(table.take(99) == nullptr);
    CHECK(table.empty());
}

TEST_CASE("take_if leaves an id that holds another call", "[framework][call_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    Table table(&pool);
    auto mine = std::make_shared<int>(1);
    auto other = std::make_shared<int>(2);
    table.insert(5, other);
    CHECK(table.take_if(5, mine.get()) == nullptr);
    CHECK(table.size() == 1);
    CHECK(table.take_if(5, other.get()) == other);
    CHECK(table.empty());
}

TEST_CASE("goaway takes out the calls above the peer's last id, and a later goaway cannot raise it",
          "[framework][call_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    Table table(&pool);
    for (int i = 1; i <= 6; ++i)
        table.insert(static_cast<std::uint64_t>(*table.next_id()), std::make_shared<int>(i));
    CHECK_FALSE(table.peer_went_away());
    CHECK_FALSE(table.refused(6));

    auto refused = table.on_goaway(4);
    CHECK(table.peer_went_away());
    REQUIRE(refused.size() == 2);
    std::sort(refused.begin(), refused.end(), [](auto& a, auto& b) { return *a < *b; });
    CHECK(*refused[0] == 5);
    CHECK(*refused[1] == 6);
    CHECK(table.size() == 4);
    CHECK(table.refused(5));
    CHECK_FALSE(table.refused(4));

    // A second goaway with a higher id keeps the lower one; a lower one takes out more.
    CHECK(table.on_goaway(10).empty());
    CHECK(table.refused(5));
    CHECK(table.on_goaway(2).size() == 2);
    CHECK(table.refused(3));

    auto rest = table.take_all();
    CHECK(rest.size() == 2);
    CHECK(table.empty());
}

TEST_CASE("the id counter stops instead of wrapping", "[framework][call_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    Table table(&pool, std::numeric_limits<std::uint64_t>::max() - 2);
    CHECK(table.next_id() == std::numeric_limits<std::uint64_t>::max() - 1);
    CHECK(table.next_id() == std::numeric_limits<std::uint64_t>::max());
    CHECK_FALSE(table.next_id());
    CHECK_FALSE(table.next_id());
}
