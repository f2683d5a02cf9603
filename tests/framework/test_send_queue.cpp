// The session's send queue on its own (framework/src/send_queue.cpp): the data budget with
// its line of waiters, the control allowance, and how messages are packed into segments (one
// segment is one record). No sockets, no threads.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "detail/send_queue.hpp"

namespace protocol = sdmp::protocol;
using sdmp::detail::SendQueue;
using sdmp::detail::SpaceWaiter;

namespace {

// Records every wake-up it gets.
struct RecordingWaiter final : SpaceWaiter {
    void on_space() override { ++wakes; }
    int wakes = 0;
};

SendQueue::Limits limits(std::size_t data, std::size_t control = 1024,
                         std::size_t record_payload = 4096) {
    SendQueue::Limits l;
    l.data_bytes = data;
    l.control_bytes = control;
    l.max_record_payload = record_payload;
    return l;
}

protocol::Message request(std::uint64_t id, std::size_t body_size) {
    protocol::Request r;
    r.id = id;
    r.method = "echo";
    r.body.assign(body_size, 0x61);
    return r;
}

// Queues `message` as data, reserving its size first (as the session does).
void queue_data(SendQueue& queue, protocol::Message message, bool no_compress = false) {
    const std::size_t size = protocol::encoded_size(message);
    REQUIRE(queue.try_reserve(size));
    REQUIRE_FALSE(queue.enqueue(message, size, no_compress, false));
}

}  // namespace

TEST_CASE("the send budget admits what fits, and one oversized message alone",
          "[framework][send_queue]") {
    SendQueue queue(limits(1000));
    CHECK(queue.try_reserve(600));
    CHECK(queue.try_reserve(400));
    CHECK_FALSE(queue.try_reserve(1));
    CHECK(queue.data_bytes() == 1000);
    queue.release(1000, 0);
    CHECK(queue.data_bytes() == 0);
    // Larger than the whole budget: it still goes, alone, when nothing else is queued.
    CHECK(queue.try_reserve(5000));
    CHECK_FALSE(queue.try_reserve(1));
    queue.release(5000, 0);
    CHECK(queue.try_reserve(1));
}

TEST_CASE("waiters are granted space first come first served, nobody overtakes",
          "[framework][send_queue]") {
    SendQueue queue(limits(1000));
    REQUIRE(queue.try_reserve(900));
    RecordingWaiter big;
    RecordingWaiter small;
    queue.wait_for_space(big, 800);
    // Space for a small one exists, but a waiter is in line: no overtaking.
    CHECK_FALSE(queue.try_reserve(50));
    queue.wait_for_space(small, 50);
    CHECK(queue.waiting() == 2);

    queue.release(100, 0);  // 800 queued: the big one still does not fit, so nor does small
    CHECK(big.wakes == 0);
    CHECK(small.wakes == 0);

    queue.release(800, 0);  // empty: both fit in turn
    CHECK(big.wakes == 1);
    CHECK(big.granted);
    CHECK_FALSE(big.queued);
    CHECK(small.wakes == 1);
    CHECK(small.granted);
    CHECK(queue.data_bytes() == 850);
    CHECK(queue.waiting() == 0);
}

TEST_CASE("withdrawing a waiter unblocks the line or returns its unused grant",
          "[framework][send_queue]") {
    SendQueue queue(limits(1000));
    REQUIRE(queue.try_reserve(700));
    RecordingWaiter head;
    RecordingWaiter next;
    queue.wait_for_space(head, 600);
    queue.wait_for_space(next, 200);
    // The head gives up (cancelled): the one behind it fits and is granted at once.
    queue.withdraw(head);
    CHECK_FALSE(head.queued);
    CHECK(head.wakes == 0);
    CHECK(next.wakes == 1);
    CHECK(next.granted);
    CHECK(queue.data_bytes() == 900);
    // A granted waiter that does not use its space gives it back.
    queue.withdraw(next);
    CHECK_FALSE(next.granted);
    CHECK(queue.data_bytes() == 700);
}

TEST_CASE("failing the waiters wakes each with the reason and grants nothing",
          "[framework][send_queue]") {
    SendQueue queue(limits(100));
    REQUIRE(queue.try_reserve(100));
    RecordingWaiter a;
    RecordingWaiter b;
    queue.wait_for_space(a, 10);
    queue.wait_for_space(b, 10);
    const std::error_code reason = std::make_error_code(std::errc::connection_aborted);
    queue.fail_waiters(reason);
    CHECK(a.wakes == 1);
    CHECK(b.wakes == 1);
    CHECK(a.failed == reason);
    CHECK_FALSE(a.granted);
    CHECK(queue.waiting() == 0);
    CHECK(queue.data_bytes() == 100);
}

TEST_CASE("withdraw_if takes the chosen waiters out without granting in between",
          "[framework][send_queue]") {
    SendQueue queue(limits(100));
    REQUIRE(queue.try_reserve(100));
    RecordingWaiter refused;
    RecordingWaiter kept;
    queue.wait_for_space(refused, 50);
    queue.wait_for_space(kept, 50);
    queue.withdraw_if([&](const SpaceWaiter* w) { return w == &refused; });
    CHECK_FALSE(refused.queued);
    CHECK(kept.queued);
    CHECK(queue.waiting() == 1);
    queue.release(100, 0);
    CHECK(refused.wakes == 0);
    CHECK(kept.wakes == 1);
}

TEST_CASE("the control allowance is separate from the data budget", "[framework][send_queue]") {
    SendQueue queue(limits(10, 30));
    REQUIRE(queue.try_reserve(10));  // data full
    CHECK(queue.try_reserve_control(20));
    CHECK(queue.try_reserve_control(10));
    CHECK_FALSE(queue.try_reserve_control(1));
    queue.release(0, 30);
    CHECK(queue.control_bytes() == 0);
    CHECK(queue.data_bytes() == 10);
}

TEST_CASE("small messages share a segment up to the record payload limit",
          "[framework][send_queue]") {
    SendQueue queue(limits(1 << 20, 1024, 256));
    queue_data(queue, request(1, 100));
    queue_data(queue, request(2, 100));
    queue_data(queue, request(3, 100));  // would pass 256 bytes: a new segment
    CHECK(queue.queued_messages() == 3);

    auto first = queue.pop_front();
    CHECK(first.messages == 2);
    CHECK(first.exchanges == 2);
    CHECK(first.tail.empty());
    std::vector<protocol::Message> decoded;
    REQUIRE_FALSE(protocol::decode_messages(first.bytes, decoded));
    REQUIRE(decoded.size() == 2);
    CHECK(std::get<protocol::Request>(decoded[1]).id == 2);
    CHECK(first.data == first.bytes.size());
    CHECK(queue.queued_messages() == 1);

    auto second = queue.pop_front();
    CHECK(second.messages == 1);
    CHECK(queue.empty());
    CHECK(queue.queued_messages() == 0);
}

TEST_CASE("a no_compress message is a record of its own, control counts apart",
          "[framework][send_queue]") {
    SendQueue queue(limits(1 << 20));
    queue_data(queue, request(1, 10));
    queue_data(queue, request(2, 10), /*no_compress=*/true);
    protocol::Message cancel = protocol::Cancel{7};
    const std::size_t cancel_size = protocol::encoded_size(cancel);
    REQUIRE(queue.try_reserve_control(cancel_size));
    REQUIRE_FALSE(queue.enqueue(cancel, cancel_size, false, true));

    auto plain = queue.pop_front();
    CHECK(plain.messages == 1);
    auto alone = queue.pop_front();
    CHECK(alone.no_compress);
    CHECK_FALSE(alone.open);
    CHECK(alone.messages == 1);
    // The cancel went into a new open segment (the no_compress one is closed).
    auto control = queue.pop_front();
    CHECK(control.messages == 1);
    CHECK(control.exchanges == 0);
    CHECK(control.control == cancel_size);
    CHECK(control.data == 0);
    CHECK(queue.empty());
}

TEST_CASE("a large body is gathered after its message head, not copied into the queue",
          "[framework][send_queue]") {
    SendQueue queue(limits(1 << 20));
    protocol::Message big = request(9, 100 * 1024);
    const std::size_t size = protocol::encoded_size(big);
    REQUIRE(queue.try_reserve(size));
    REQUIRE_FALSE(queue.enqueue(big, size, false, false));
    CHECK(std::get<protocol::Request>(big).body.empty());  // moved out

    auto segment = queue.pop_front();
    CHECK(segment.tail.size() == 100 * 1024);
    CHECK(segment.bytes.size() + segment.tail.size() == size);
    CHECK_FALSE(segment.open);
    CHECK(segment.exchanges == 1);
    sdmp::Bytes whole = segment.bytes;
    whole.insert(whole.end(), segment.tail.begin(), segment.tail.end());
    std::vector<protocol::Message> decoded;
    REQUIRE_FALSE(protocol::decode_messages(whole, decoded));
    REQUIRE(decoded.size() == 1);
    CHECK(std::get<protocol::Request>(decoded[0]).body.size() == 100 * 1024);
}

TEST_CASE("a message that does not encode leaves the queue as it was", "[framework][send_queue]") {
    SendQueue queue(limits(1 << 20));
    protocol::Request bad;
    bad.id = 1;
    bad.method = std::string(300, 'm');  // over the 255-byte method limit
    protocol::Message message = bad;
    CHECK(queue.enqueue(message, protocol::encoded_size(message), false, false));
    CHECK(queue.empty());
    CHECK(queue.queued_messages() == 0);

    queue_data(queue, request(1, 10));
    CHECK(queue.enqueue(message, protocol::encoded_size(message), false, false));
    auto segment = queue.pop_front();
    CHECK(segment.messages == 1);
    CHECK(queue.empty());
}

TEST_CASE("an encoded message queued after a wait joins the open segment",
          "[framework][send_queue]") {
    SendQueue queue(limits(1 << 20));
    queue_data(queue, request(1, 10));
    sdmp::Bytes encoded;
    REQUIRE_FALSE(protocol::encode_message(request(2, 10), encoded));
    queue.enqueue_encoded(encoded, false);
    auto segment = queue.pop_front();
    CHECK(segment.messages == 2);
    CHECK(segment.exchanges == 2);
    CHECK(queue.empty());
}
