// The session's sending side: the send queue's budget as the strand sees it, control
// messages, the flush points and the writer coroutine (protocol.md §5.1). See
// detail/session_impl.hpp for the threading rules.
#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <variant>
#include <vector>

#include "detail/session_support.hpp"
#include "sdmp/error.hpp"

namespace sdmp::detail {

namespace {

constexpr std::size_t k_write_batch = std::size_t{1} << 20;  // record bytes per socket write
// The writer's buffer is given back when it is larger than this and four times what a batch
// needs: a session that stops sending large messages does not keep their size, while one that
// keeps sending them does not allocate (and page-fault) a fresh buffer per write.
constexpr std::size_t k_keep_wire = std::size_t{256} << 10;

}  // namespace

bool SessionImpl::try_reserve(std::size_t size) noexcept {
    if (!send_queue_.try_reserve(size))
        return false;
    update_queue_stats();
    return true;
}

void SessionImpl::update_queue_stats() {
    const std::size_t data = send_queue_.data_bytes();
    stats_.queued_bytes.store(data, std::memory_order_relaxed);
    if (data > stats_.max_queued_bytes.load(std::memory_order_relaxed))
        stats_.max_queued_bytes.store(data, std::memory_order_relaxed);
    stats_.control_bytes.store(send_queue_.control_bytes(), std::memory_order_relaxed);
    stats_.blocked_senders.store(send_queue_.waiting(), std::memory_order_relaxed);
}

template <typename Predicate>
asio::awaitable<bool> SessionImpl::wait_until(Waiter& waiter, Predicate ready) {
    while (!ready()) {
        // Cancellation of the awaiting coroutine cancels this receive (operation_aborted).
        auto [ec] = co_await waiter.wake.async_receive(use_tuple);
        if (ec)
            co_return false;
    }
    co_return true;
}

void SessionImpl::wait_for_space(SpaceWaiter& waiter, std::size_t size) {
    send_queue_.wait_for_space(waiter, size);
    stats_.send_waits.fetch_add(1, std::memory_order_relaxed);
    config_.metrics->send_queue_wait();
    update_queue_stats();
}

asio::awaitable<std::error_code> SessionImpl::reserve(Waiter& waiter, std::size_t size) {
    if (!lifecycle_.sending())
        co_return std::error_code(framework_errc::connection_closed);
    if (try_reserve(size))
        co_return std::error_code{};
    wait_for_space(waiter, size);

    bool woke = false;
    try {
        woke = co_await wait_until(waiter, [&] { return waiter.granted || waiter.failed; });
    } catch (const boost::system::system_error&) {
        withdraw(waiter);  // cancelled before the wait started
        throw;
    }
    if (woke && waiter.granted) {
        waiter.granted = false;  // handed over to the caller's enqueue
        co_return std::error_code{};
    }
    withdraw(waiter);
    co_return woke ? waiter.failed : to_std(asio::error::operation_aborted);
}

void SessionImpl::withdraw(SpaceWaiter& waiter) {
    send_queue_.withdraw(waiter);
    update_queue_stats();
}

void SessionImpl::release(std::size_t data_bytes, std::size_t control_bytes) {
    send_queue_.release(data_bytes, control_bytes);
    update_queue_stats();
}

// Queues `message` (see SendQueue::enqueue). The writer does not run here: it is resumed at
// the flush points (flush()), once the caller's step is complete.
std::error_code SessionImpl::enqueue(protocol::Message& message, std::size_t size, bool no_compress,
                                     bool control) {
    return send_queue_.enqueue(message, size, no_compress, control);
}

// Queues a message encoded earlier (it waited for space); the space is reserved.
void SessionImpl::enqueue_encoded(Bytes encoded, bool no_compress) {
    send_queue_.enqueue_encoded(std::move(encoded), no_compress);
}

void SessionImpl::send_control(protocol::Message message) {
    if (writer_done_ || lifecycle_.aborted() || end_sent_)
        return;  // protocol.md §6.6: nothing follows our `end`
    const std::size_t size = protocol::encoded_size(message);
    if (!send_queue_.try_reserve_control(size)) {
        // The peer keeps sending requests or pings while not reading our answers.
        config_.logger.warn("{}: {} does not read its answers; closing", config_.side,
                            peer_->fingerprint.short_hex());
        do_abort(framework_errc::queue_full);
        return;
    }
    if (const auto ec = enqueue(message, size, false, true)) {
        release(0, size);
        config_.logger.error("{}: cannot encode a control message: {}", config_.side, ec.message());
        return;
    }
    update_queue_stats();
}

// A flush point: the end of one step of work on the strand (a dispatched message, a started
// call, a finished handler, a timer or an application request), when every table already says
// what the step did. Only here does the writer run, on this stack: queuing never runs it, so
// nothing that queues a message has to fear the writer failing and aborting the session under
// it. The writer looks at the queue before it parks, so it only needs a wake while parked, or
// while it gathers a batch that has grown to flush_after_messages (see write_loop).
void SessionImpl::flush() {
    if (!writer_parked_.empty()) {
        resume_parked(writer_parked_, true);
    } else if (!writer_gathering_.empty() && config_.options.flush_after_messages != 0 &&
               send_queue_.queued_messages() >= config_.options.flush_after_messages) {
        resume_parked(writer_gathering_, true);
    }
}

// The strand turn a gathering writer waited for has passed. A gathering that already ended
// early has moved the generation on, so its stale turn does not cut a later one short.
void SessionImpl::end_gathering(std::uint64_t generation) {
    if (generation == gathering_generation_ && !writer_gathering_.empty())
        resume_parked(writer_gathering_, true);
}

// For the lifecycle paths (closing, aborting): a flush point of its own, after the state
// change is complete.
void SessionImpl::flush_later() {
    asio::post(strand_, [self = shared_from_this()] { self->flush(); });
}

asio::awaitable<bool> SessionImpl::park(std::vector<Parked>& spot) {
    co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(bool)>(
        [&spot](auto handler) { spot.emplace_back(std::move(handler)); }, asio::use_awaitable);
}

// Resumes the most recently parked coroutine (all of them when !go_on) on this stack.
void SessionImpl::resume_parked(std::vector<Parked>& spot, bool go_on) {
    if (go_on) {
        if (spot.empty())
            return;
        Parked handler = std::move(spot.back());
        spot.pop_back();
        std::move(handler)(true);
        return;
    }
    std::vector<Parked> all = std::move(spot);
    spot.clear();
    for (Parked& handler : all)
        std::move(handler)(false);
}

// The writer: everything queued goes out in as few writes as possible, each segment one record
// (RecordSealer compresses each record on its own, protocol.md §5.1). While a write is in
// flight, new messages gather in the next segment. Records are sealed straight into `wire`, an
// uninitialised buffer (a vector would zero-fill what the sealer overwrites anyway).
asio::awaitable<void> SessionImpl::write_loop() {
    std::unique_ptr<std::uint8_t[]> wire;
    std::size_t wire_size = 0;
    for (;;) {
        if (lifecycle_.aborted())
            break;
        if (send_queue_.empty()) {
            if (writer_finish_) {
                if (end_sent_)
                    break;
                // protocol.md §6.6: our last record ends with `end`, so the peer can tell a
                // graceful end from a cut connection.
                send_control(protocol::End{});
                end_sent_ = true;
                if (send_queue_.empty())
                    break;  // could not be queued (the control allowance is spent)
                continue;
            }
            if (!co_await park(writer_parked_))
                break;
            // A flush point resumed us, inside the step that queued the message. When more is in
            // flight (the loop that woke us has more to queue, other calls await answers,
            // other handlers run), one more turn of the strand lets what is already due join
            // this write: under load each side then answers a batch of the peer's with one
            // record and one write, instead of mirroring the peer's split batches. A lone
            // message goes out at once, without a trip through the scheduler. A batch that
            // reaches flush_after_messages goes out before the turn ends (flush()): the
            // peer starts on it while we produce the rest, so the two ends work at once
            // instead of taking turns.
            if (producers_with_more_ != 0 || calls_.size() > 1 || requests_.size() > 1) {
                asio::post(strand_, [self = shared_from_this(), g = ++gathering_generation_] {
                    self->end_gathering(g);
                });
                if (!co_await park(writer_gathering_))
                    break;
            }
            continue;
        }
        std::size_t used = 0;
        std::size_t batch_data = 0;
        std::size_t batch_control = 0;
        std::size_t records = 0;
        std::size_t messages = 0;
        std::error_code seal_error;
        while (!send_queue_.empty() && used < k_write_batch && !seal_error) {
            Segment segment = send_queue_.pop_front();
            batch_data += segment.data;
            batch_control += segment.control;
            messages += segment.messages;
            const LevelChoice choice = compression_.choose(segment, link_backlogged_, sealer_);
            const std::size_t bound =
                sealer_.sealed_size_bound(segment.bytes.size() + segment.tail.size(), choice.level);
            if (used == 0 && wire_size > k_keep_wire && bound <= wire_size / 4) {
                wire.reset();
                wire_size = 0;
            }
            if (wire_size < used + bound) {
                const std::size_t grown = std::max(used + bound, 2 * wire_size);
                auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(grown);
                if (used != 0)
                    std::memcpy(bigger.get(), wire.get(), used);
                wire = std::move(bigger);
                wire_size = grown;
            }
            std::size_t written = 0;
            int level_used = 0;
            const ByteView parts[2] = {segment.bytes, segment.tail};
            seal_error = sealer_.seal_into(
                std::span<const ByteView>(parts, segment.tail.empty() ? 1 : 2), choice.level,
                choice.fallback_above, MutableByteView(wire.get() + used, wire_size - used),
                written, &level_used);
            if (choice.fallback_above != 0 && !seal_error)
                compression_.note(level_used != 0);
            used += written;
            send_queue_.recycle(std::move(segment.bytes));
            ++records;
        }
        if (seal_error) {
            // limit_exceeded cannot happen (messages are clamped); counter_exhausted closes.
            config_.logger.error("{}: cannot seal a record: {}", config_.side,
                                 seal_error.message());
            release(batch_data, batch_control);
            do_abort(seal_error);
            break;
        }
        // The kernel usually takes the whole batch at once (the socket is non-blocking): then
        // the write costs no trip through the scheduler. When it cannot, the link or the peer
        // is slower than we produce, and the automatic policy compresses (see choose_level)
        // until a write taken whole leaves nothing queued behind it.
        boost::system::error_code ec;
        std::size_t written = 0;
        if (try_write_at_once_)
            written = socket_.write_some(asio::buffer(wire.get(), used), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            ec = {};
            written = 0;
        }
        if (!ec && written < used) {
            link_backlogged_ = true;
            auto [rest_ec, rest] = co_await asio::async_write(
                socket_, asio::buffer(wire.get() + written, used - written), use_tuple);
            ec = rest_ec;
            written += rest;
        } else if (send_queue_.empty() && send_queue_.waiting() == 0) {
            // Caught up: producers no longer outpace the link. (While messages still wait
            // behind a link that takes our smaller, compressed writes whole, it still is the
            // bottleneck, so compression stays on.)
            link_backlogged_ = false;
        }
        release(batch_data, batch_control);
        if (ec) {
            do_abort(ec);
            break;
        }
        if (batch_data != 0)
            touch_activity();
        config_.metrics->bytes_sent(written, records);
        config_.metrics->messages_sent(messages);
    }
    if (!lifecycle_.aborted()) {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
    }
}

}  // namespace sdmp::detail
