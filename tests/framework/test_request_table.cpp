// The peer's requests in our hands (framework/src/request_table.cpp, protocol.md §6.2, §6.3):
// admission in the order the checks are made, lookups by id, and the unfinished list. No
// sockets.
#include <catch2/catch.hpp>
#include <memory_resource>
#include <vector>

#include "detail/request_table.hpp"

using sdmp::detail::RequestTable;
using Admission = RequestTable::Admission;

namespace {

struct Task : RequestTable::Entry {
    explicit Task(std::uint64_t id) { request_id = id; }
};

RequestTable make_table(std::pmr::memory_resource* pool, std::size_t in_flight = 2) {
    return RequestTable({in_flight, 1000}, pool);
}

}  // namespace

TEST_CASE("requests are admitted until max_in_flight, counting notifications",
          "[framework][request_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    RequestTable table = make_table(&pool);
    REQUIRE(table.admit_request(1, 10, true, true) == Admission::accept);
    Task one(1);
    table.add(one);
    REQUIRE(table.admit_notification(10, true, true));
    Task note(0);
    table.add(note);
    CHECK(table.size() == 2);
    CHECK(table.admit_request(2, 10, true, true) == Admission::overloaded);
    CHECK_FALSE(table.admit_notification(10, true, true));
    table.remove(note);
    CHECK(table.admit_request(2, 10, true, true) == Admission::accept);
}

TEST_CASE("a request id in use is a protocol error, whatever else is wrong with it",
          "[framework][request_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    RequestTable table = make_table(&pool);
    Task one(7);
    table.add(one);
    CHECK(table.admit_request(7, 10, true, true) == Admission::duplicate_id);
    CHECK(table.admit_request(7, 5000, false, false) == Admission::duplicate_id);
    // Once finished the id may come again (ids are unique among open calls only).
    table.remove(one);
    CHECK(table.admit_request(7, 10, true, true) == Admission::accept);
}

TEST_CASE("refusals come in order: shutting down, too large, unknown method, overloaded",
          "[framework][request_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    RequestTable table = make_table(&pool, 0);
    CHECK(table.admit_request(1, 5000, false, false) == Admission::shutting_down);
    CHECK(table.admit_request(2, 5000, false, true) == Admission::too_large);
    CHECK(table.admit_request(3, 1000, false, true) == Admission::unknown_method);
    CHECK(table.admit_request(4, 1000, true, true) == Admission::overloaded);
}

TEST_CASE("the highest request id counts every request seen, refused or not",
          "[framework][request_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    RequestTable table = make_table(&pool);
    CHECK(table.highest_request() == 0);
    table.admit_request(5, 10, false, true);
    table.admit_request(3, 10, true, false);
    CHECK(table.highest_request() == 5);
    table.admit_request(9, 99999, true, true);
    CHECK(table.highest_request() == 9);
}

TEST_CASE("notifications are dropped when too large, unhandled or after the end",
          "[framework][request_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    const RequestTable table = make_table(&pool);
    CHECK(table.admit_notification(1000, true, true));
    CHECK_FALSE(table.admit_notification(1001, true, true));
    CHECK_FALSE(table.admit_notification(10, false, true));
    CHECK_FALSE(table.admit_notification(10, true, false));
}

TEST_CASE("find, remove in any order, and every unfinished entry visited",
          "[framework][request_table]") {
    std::pmr::unsynchronized_pool_resource pool;
    RequestTable table = make_table(&pool, 10);
    Task a(1), b(2), c(0), d(4);
    for (Task* t : {&a, &b, &c, &d})
        table.add(*t);
    CHECK(table.find(2) == &b);
    CHECK(table.find(3) == nullptr);
    CHECK(table.find(0) == nullptr);  // notifications have no id
    table.remove(b);
    table.remove(b);  // twice is harmless
    CHECK(table.find(2) == nullptr);
    CHECK(table.size() == 3);
    std::vector<const RequestTable::Entry*> seen;
    table.for_each([&](RequestTable::Entry& e) { seen.push_back(&e); });
    CHECK(seen.size() == 3);
    CHECK(std::count(seen.begin(), seen.end(), &a) == 1);
    CHECK(std::count(seen.begin(), seen.end(), &c) == 1);
    CHECK(std::count(seen.begin(), seen.end(), &d) == 1);
    table.remove(d);  // the head
    table.remove(a);  // the tail
    table.remove(c);
    CHECK(table.empty());
    seen.clear();
    table.for_each([&](RequestTable::Entry& e) { seen.push_back(&e); });
    CHECK(seen.empty());
}
