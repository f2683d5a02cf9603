// The replay cache of protocol.md §3.5 step 6: bounded, windowed, thread-safe.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "sdmp/protocol/replay_cache.hpp"

using sdmp::crypto::DhPublic;
using sdmp::protocol::ReplayCache;

namespace {

DhPublic key(std::uint32_t n) {
    DhPublic k{};
    for (std::size_t i = 0; i < 4; ++i)
        k[i] = static_cast<std::uint8_t>(n >> (8 * i));
    k[31] = 0x40;
    return k;
}

}  // namespace

TEST_CASE("replay cache detects a value seen before", "[replay]") {
    ReplayCache cache(1000, 8);
    CHECK_FALSE(cache.seen_before(key(1), 100));
    CHECK(cache.seen_before(key(1), 200));
    CHECK_FALSE(cache.seen_before(key(2), 200));
    CHECK(cache.size() == 2);
}

TEST_CASE("replay cache evicts the oldest entries at capacity", "[replay]") {
    ReplayCache cache(1'000'000, 4);
    for (std::uint32_t i = 0; i < 6; ++i)
        CHECK_FALSE(cache.seen_before(key(i), 10 + i));
    CHECK(cache.size() == 4);
    // 0 and 1 were evicted; 2..5 are remembered.
    CHECK(cache.seen_before(key(5), 20));
    CHECK(cache.seen_before(key(2), 20));
    CHECK_FALSE(cache.seen_before(key(0), 20));  // forgotten, re-inserted (evicting 2)
    CHECK(cache.size() == 4);
    CHECK_FALSE(cache.seen_before(key(2), 21));
}

TEST_CASE("replay cache forgets values after the window", "[replay]") {
    ReplayCache cache(1000, 16);
    CHECK_FALSE(cache.seen_before(key(1), 10'000));
    CHECK_FALSE(cache.seen_before(key(2), 10'500));
    CHECK(cache.seen_before(key(1), 11'000));  // exactly at the window: still remembered
    CHECK_FALSE(cache.seen_before(key(3), 11'001));
    CHECK(cache.size() == 2);  // key 1 expired
    CHECK_FALSE(cache.seen_before(key(1), 11'002));
    CHECK(cache.seen_before(key(2), 11'400));
    // A clock stepping backwards does not expire anything.
    CHECK(cache.seen_before(key(3), 5));
}

TEST_CASE("replay cache shared by two threads", "[replay]") {
    ReplayCache cache(1'000'000, 1 << 16);
    constexpr std::uint32_t k_count = 5000;
    std::atomic<int> fresh{0};
    auto worker = [&] {
        // Both threads insert the same values: each value is fresh for exactly one of them.
        for (std::uint32_t i = 0; i < k_count; ++i) {
            if (!cache.seen_before(key(i), 1000 + i))
                fresh.fetch_add(1);
        }
    };
    std::thread t1(worker);
    std::thread t2(worker);
    t1.join();
    t2.join();
    CHECK(fresh.load() == static_cast<int>(k_count));
    CHECK(cache.size() == k_count);
}
