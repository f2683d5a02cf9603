// The send queue of one session: messages encoded into segments, each of which becomes one
// record (protocol.md §5.1), under a flow-control budget. Data messages (requests, responses,
// notifications) share `data_bytes`, granted first come first served to senders that wait;
// control envelopes (pong, cancel, goaway, end) have an allowance of their own, because a
// session must still answer a peer whose data it cannot take.
//
// Sans-IO: no Asio, no clock, no lock. The session's strand is its only user; the session
// wakes its writer and publishes statistics after the calls that change the queue.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <system_error>
#include <vector>

#include "sdmp/protocol/message.hpp"

namespace sdmp::detail {

// Something waiting for data space, woken by SendQueue::release() (granted) or fail_waiters()
// (failed). on_space() runs inside those loops: it may queue messages (the space it was granted
// is reserved for it) but must not add or remove waiters itself.
struct SpaceWaiter {
    SpaceWaiter() = default;
    SpaceWaiter(const SpaceWaiter&) = delete;
    SpaceWaiter& operator=(const SpaceWaiter&) = delete;
    virtual ~SpaceWaiter() = default;
    virtual void on_space() = 0;
    std::size_t need = 0;  // queue bytes asked for
    bool queued = false;   // waiting in the queue's line
    bool granted = false;  // space reserved for it
    std::error_code failed;
};

// Messages of one future record. Small messages are encoded into the open tail segment; a
// no_compress or large-bodied message gets a segment of its own.
struct Segment {
    Bytes bytes;       // varint(len) || envelope, one or more (protocol.md §5.1)
    Bytes tail;        // a large body following `bytes`, gathered by the sealer, not copied
    bool open = true;  // more messages may be appended
    bool no_compress = false;
    // Requests, responses and notifications in it: when more than one, the record goes out at
    // level 0 (protocol.md §5.1: messages of different calls never share a DEFLATE stream),
    // unless SessionOptions::compress_across_messages.
    std::size_t exchanges = 0;
    std::size_t data = 0;  // budget released once written
    std::size_t control = 0;
    std::size_t messages = 0;
};

class SendQueue {
  public:
    struct Limits {
        std::size_t data_bytes = 0;     // SessionOptions::send_queue_bytes
        std::size_t control_bytes = 0;  // SessionOptions::max_control_bytes
        std::size_t max_record_payload = 0;
        protocol::MessageLimits encode;
    };
    explicit SendQueue(Limits limits) : limits_(limits) {}

    // --- the data budget ---
    // Whether `size` more bytes fit. A message larger than the whole budget still goes, alone,
    // when nothing else is queued.
    bool fits(std::size_t size) const noexcept;
    // Reserves `size` bytes when they fit and nobody waits (no overtaking). False otherwise.
    bool try_reserve(std::size_t size) noexcept;
    // Puts `waiter` in line for `size` bytes.
    void wait_for_space(SpaceWaiter& waiter, std::size_t size);
    // Takes `waiter` out of line, or gives back the space it was granted and did not use.
    void withdraw(SpaceWaiter& waiter);
    // Takes every waiter `remove(waiter)` selects out of line (their `queued` flag cleared),
    // without granting anyone in between; call release(0, 0) afterwards.
    template <typename Predicate>
    void withdraw_if(Predicate remove) {
        std::erase_if(waiters_, [&](SpaceWaiter* waiter) {
            if (!remove(waiter))
                return false;
            waiter->queued = false;
            return true;
        });
    }
    // Gives back budget (written, or reserved and unused) and grants waiters in order while
    // their need fits: a large message at the head is not overtaken by small ones.
    void release(std::size_t data_bytes, std::size_t control_bytes);
    // Fails every waiter with `reason` (the session is closing).
    void fail_waiters(std::error_code reason);

    // --- the control allowance ---
    // Reserves `size` control bytes; false when the allowance is spent (a peer that keeps
    // asking for answers while not reading them).
    bool try_reserve_control(std::size_t size) noexcept;

    // --- encoding ---
    // Encodes `message` (`size` = protocol::encoded_size) into the queue, counted as control or
    // data; the caller has reserved that budget. Nothing is queued on failure. A large body is
    // moved out of `message` into a segment of its own and gathered by the sealer, so its bytes
    // are copied once, into the record.
    std::error_code enqueue(protocol::Message& message, std::size_t size, bool no_compress,
                            bool control);
    // Queues a request or notification encoded earlier (it waited for space, now reserved).
    void enqueue_encoded(Bytes encoded, bool no_compress);

    // --- the writer's side ---
    bool empty() const noexcept { return segments_.empty(); }
    Segment pop_front();
    // Keeps an emptied segment buffer for reuse (a few, not too large: idle memory).
    void recycle(Bytes bytes);

    std::size_t data_bytes() const noexcept { return data_bytes_; }
    std::size_t control_bytes() const noexcept { return control_bytes_; }
    std::size_t waiting() const noexcept { return waiters_.size(); }
    std::size_t queued_messages() const noexcept { return queued_messages_; }
    const Limits& limits() const noexcept { return limits_; }

  private:
    Segment& segment_for(std::size_t size, bool no_compress);
    Bytes take_spare();
    void counted(Segment& segment, std::size_t size, bool control);

    Limits limits_;
    std::deque<Segment> segments_;
    std::vector<Bytes> spare_;
    std::size_t data_bytes_ = 0;
    std::size_t control_bytes_ = 0;
    std::size_t queued_messages_ = 0;
    std::deque<SpaceWaiter*> waiters_;
};

}  // namespace sdmp::detail
