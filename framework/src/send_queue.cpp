#include "detail/send_queue.hpp"

#include <utility>
#include <variant>

namespace sdmp::detail {

namespace {

// Bodies at least this large are not copied into the queue but gathered by the sealer.
constexpr std::size_t k_gather_min = std::size_t{64} << 10;
// Emptied segment buffers kept for reuse (bounded in number and size: idle memory).
constexpr std::size_t k_max_spares = 2;
constexpr std::size_t k_max_spare_capacity = std::size_t{512} << 10;

Bytes* body_of(protocol::Message& message) {
    if (auto* m = std::get_if<protocol::Request>(&message))
        return &m->body;
    if (auto* m = std::get_if<protocol::Response>(&message))
        return &m->body;
    if (auto* m = std::get_if<protocol::Notification>(&message))
        return &m->body;
    return nullptr;
}

}  // namespace

bool SendQueue::fits(std::size_t size) const noexcept {
    return data_bytes_ == 0 || data_bytes_ + size <= limits_.data_bytes;
}

bool SendQueue::try_reserve(std::size_t size) noexcept {
    if (!waiters_.empty() || !fits(size))
        return false;
    data_bytes_ += size;
    return true;
}

void SendQueue::wait_for_space(SpaceWaiter& waiter, std::size_t size) {
    waiter.need = size;
    waiter.queued = true;
    waiters_.push_back(&waiter);
}

void SendQueue::withdraw(SpaceWaiter& waiter) {
    if (waiter.queued) {
        waiter.queued = false;
        const auto it = std::find(waiters_.begin(), waiters_.end(), &waiter);
        if (it != waiters_.end())
            waiters_.erase(it);
        release(0, 0);  // it may have been holding up the head of the line
    } else if (waiter.granted) {
        waiter.granted = false;
        release(waiter.need, 0);
    }
}

void SendQueue::release(std::size_t data_bytes, std::size_t control_bytes) {
    data_bytes_ -= std::min(data_bytes, data_bytes_);
    control_bytes_ -= std::min(control_bytes, control_bytes_);
    while (!waiters_.empty()) {
        SpaceWaiter* waiter = waiters_.front();
        if (!fits(waiter->need))
            break;
        waiters_.pop_front();
        waiter->queued = false;
        waiter->granted = true;
        data_bytes_ += waiter->need;
        waiter->on_space();
    }
}

void SendQueue::fail_waiters(std::error_code reason) {
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (SpaceWaiter* waiter : waiters) {
        waiter->queued = false;
        waiter->failed = reason;
        waiter->on_space();
    }
}

bool SendQueue::try_reserve_control(std::size_t size) noexcept {
    if (control_bytes_ + size > limits_.control_bytes)
        return false;
    control_bytes_ += size;
    return true;
}

Bytes SendQueue::take_spare() {
    if (spare_.empty())
        return {};
    Bytes bytes = std::move(spare_.back());
    spare_.pop_back();
    return bytes;
}

void SendQueue::recycle(Bytes bytes) {
    if (bytes.capacity() == 0 || bytes.capacity() > k_max_spare_capacity ||
        spare_.size() >= k_max_spares)
        return;
    bytes.clear();
    spare_.push_back(std::move(bytes));
}

// The open tail while the record stays within max_record_payload, otherwise a new segment.
// A no_compress message is a record of its own.
Segment& SendQueue::segment_for(std::size_t size, bool no_compress) {
    if (!no_compress && !segments_.empty()) {
        Segment& tail = segments_.back();
        if (tail.open && tail.bytes.size() + size <= limits_.max_record_payload)
            return tail;
    }
    Segment& segment = segments_.emplace_back();
    segment.bytes = take_spare();
    segment.no_compress = no_compress;
    segment.open = !no_compress;
    return segment;
}

std::error_code SendQueue::enqueue(protocol::Message& message, std::size_t size, bool no_compress,
                                   bool control) {
    Bytes* const body = body_of(message);
    if (body != nullptr && body->size() >= k_gather_min) {
        Segment& segment = segments_.emplace_back();
        segment.bytes = take_spare();
        segment.open = false;
        segment.no_compress = no_compress;
        if (const auto ec = protocol::encode_message_head(message, segment.bytes, limits_.encode)) {
            recycle(std::move(segment.bytes));
            segments_.pop_back();
            return ec;
        }
        segment.tail = std::move(*body);
        ++segment.exchanges;
        counted(segment, size, control);
        return {};
    }
    Segment& segment = segment_for(size, no_compress);
    if (const auto ec = protocol::encode_message(message, segment.bytes, limits_.encode)) {
        if (segment.bytes.empty()) {
            recycle(std::move(segment.bytes));
            segments_.pop_back();
        }
        return ec;
    }
    if (body != nullptr)
        ++segment.exchanges;
    counted(segment, size, control);
    return {};
}

void SendQueue::enqueue_encoded(Bytes encoded, bool no_compress) {
    const std::size_t size = encoded.size();
    Segment& segment = segment_for(size, no_compress);
    if (segment.bytes.empty()) {
        recycle(std::move(segment.bytes));
        segment.bytes = std::move(encoded);
    } else {
        segment.bytes.insert(segment.bytes.end(), encoded.begin(), encoded.end());
    }
    ++segment.exchanges;
    counted(segment, size, false);
}

void SendQueue::counted(Segment& segment, std::size_t size, bool control) {
    (control ? segment.control : segment.data) += size;
    ++segment.messages;
    ++queued_messages_;
}

Segment SendQueue::pop_front() {
    Segment segment = std::move(segments_.front());
    segments_.pop_front();
    queued_messages_ -= segment.messages;
    return segment;
}

}  // namespace sdmp::detail
