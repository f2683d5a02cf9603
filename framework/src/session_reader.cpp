// The session's receiving side: the read loop, and each envelope of an opened record
// dispatched one at a time (protocol.md §5, §6).
#include <algorithm>
#include <utility>
#include <variant>
#include <vector>

#include "detail/session_support.hpp"
#include "sdmp/error.hpp"

namespace sdmp::detail {

namespace {

constexpr std::size_t k_min_read = std::size_t{16} << 10;
constexpr std::size_t k_max_read = std::size_t{1} << 20;
// Envelopes of one record dispatched before the reader yields the strand: a record of millions
// of tiny envelopes must not hold up the other sessions of this thread (protocol.md §6.2).
constexpr std::size_t k_dispatch_slice = 512;
constexpr std::string_view k_unknown_method_metric = "<unknown>";
// A received timeout above this is treated as this (keeps time_point arithmetic in range).
constexpr std::uint64_t k_max_timeout_ms = std::uint64_t{366} * 24 * 3600 * 1000;

}  // namespace

asio::awaitable<boost::system::error_code> SessionImpl::read_loop() {
    ByteView payload;  // in the opener's buffer, until the next record is opened
    for (;;) {
        // Every complete record buffered is handled before the next read.
        for (;;) {
            const protocol::OpenResult opened = opener_.next_view(payload);
            if (opened.need_more())
                break;
            // protocol.md §5.6: any record or decode error closes the connection, no `nope`;
            // §6.6: so does a record after the peer's `end`.
            if (opened.failed())
                co_return boost::system::error_code(opened.error);
            if (lifecycle_.peer_ended())
                co_return boost::system::error_code(std::error_code(errc::malformed));
            config_.metrics->bytes_received(0, 1);
            const std::error_code ec = co_await dispatch_payload(payload);
            if (ec)
                co_return boost::system::error_code(ec);
            if (lifecycle_.aborted())
                co_return boost::system::error_code(lifecycle_.reason());
        }
        const std::size_t want = std::clamp(opener_.bytes_wanted(), k_min_read, k_max_read);
        const MutableByteView space = opener_.prepare(want);
        auto [ec, n] =
            co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), use_tuple);
        if (ec)
            co_return ec;
        opener_.commit(n);
        received_at_ = SteadyClock::now();
        keepalive_.on_receive(received_at_);
        config_.metrics->bytes_received(n, 0);
    }
}

// protocol.md §5.1, §6: the framed envelopes of one payload, decoded and dispatched one at a
// time, so that a 16 MiB payload of 3-byte envelopes never becomes millions of messages held
// at once; every k_dispatch_slice envelopes the reader yields the strand. The payload view
// stays valid meanwhile: only this loop touches the opener. Pings of the record are answered
// by one pong at its end (coalesced, §6.5).
asio::awaitable<std::error_code> SessionImpl::dispatch_payload(ByteView payload) {
    if (payload.empty())
        co_return errc::malformed;
    std::size_t pos = 0;
    std::size_t count = 0;
    protocol::Message message;
    while (pos < payload.size()) {
        std::size_t size = 0;
        if (const auto ec =
                protocol::decode_next_message(payload, pos, message, size, decode_limits_))
            co_return ec;
        if (lifecycle_.peer_ended())
            co_return errc::malformed;  // an envelope after `end`
        {
            const ProducerScope scope(*this, pos < payload.size());
            dispatch(std::move(message), size);
            flush();
        }
        ++count;
        if (lifecycle_.aborted())
            break;
        if (count % k_dispatch_slice == 0 && pos < payload.size()) {
            start_workers();
            co_await asio::post(strand_, asio::use_awaitable);
            if (lifecycle_.aborted())
                break;
        }
    }
    config_.metrics->messages_received(count);
    if (pong_due_ && !lifecycle_.aborted()) {
        send_control(protocol::Pong{*pong_due_});
        pong_due_.reset();
        flush();
    }
    // Requests of this record already queued need a worker even when the session aborted
    // meanwhile (they end cancelled), or run() would wait for them forever.
    start_workers();
    co_return std::error_code{};
}

void SessionImpl::dispatch(protocol::Message&& message, std::size_t size) {
    std::visit(Overloaded{
                   [&](protocol::Request& m) { on_request(std::move(m), size); },
                   [&](protocol::Response& m) { on_response(std::move(m), size); },
                   [&](protocol::Notification& m) { on_notification(std::move(m), size); },
                   [&](protocol::Cancel& m) { on_cancel(m.id); },
                   [&](protocol::Ping& m) { pong_due_ = m.opaque; },
                   [&](protocol::Pong&) {},
                   [&](protocol::GoAway& m) { on_goaway(m); },
                   [&](protocol::End&) { on_end(); },
               },
               message);
}

void SessionImpl::answer_now(std::uint64_t id, Status status, std::string_view message,
                             std::string_view metric_method) {
    send_control(protocol::Response{id, status, {}, bytes_of(message)});
    config_.metrics->request_served(metric_method, status, std::chrono::nanoseconds{0});
}

void SessionImpl::on_request(protocol::Request&& request, std::size_t size) {
    keepalive_.on_activity(received_at_);
    // protocol.md §6.2: the reserved entry is the protocol's, not the handler's.
    const bool no_compress = protocol::asks_no_compress(request.metadata);
    std::erase_if(request.metadata, [](const auto& entry) {
        return entry.first == protocol::k_metadata_no_compress;
    });
    const Handler* handler = config_.router ? config_.router->find(request.method) : nullptr;
    const std::string_view metric =
        handler != nullptr ? std::string_view(request.method) : k_unknown_method_metric;
    using Admission = RequestTable::Admission;
    switch (requests_.admit_request(request.id, size, handler != nullptr,
                                    lifecycle_.accepts_requests())) {
        case Admission::accept:
            break;
        case Admission::duplicate_id:
            config_.logger.warn("{}: {} reused request id {}; closing", config_.side,
                                peer_->fingerprint.short_hex(), request.id);
            do_abort(errc::malformed);
            return;
        case Admission::shutting_down:
            answer_now(request.id, Status::shutting_down, "the server is shutting down", metric);
            return;
        case Admission::too_large:
            answer_now(request.id, Status::too_large, "request exceeds max_message_size", metric);
            return;
        case Admission::unknown_method:
            answer_now(request.id, Status::unknown_method, "unknown method", metric);
            return;
        case Admission::overloaded:
            answer_now(request.id, Status::overloaded, "too many requests in flight", metric);
            return;
    }
    std::optional<SteadyClock::time_point> deadline;
    if (request.timeout_ms > 0) {
        // protocol.md §6.2: a relative budget, so the clocks need not agree.
        deadline = received_at_ +
                   std::chrono::milliseconds(std::min(request.timeout_ms, k_max_timeout_ms));
    }
    auto task =
        make_task(request.id, std::move(request.method), std::move(request.metadata), deadline);
    task->handler = handler;
    task->no_compress = no_compress;
    task->body = std::move(request.body);
    start_deadline(task);
    schedule(std::move(task));
}

void SessionImpl::on_notification(protocol::Notification&& notification, std::size_t size) {
    if (size > config_.options.max_message_size) {
        drop_notification(notification.method, "over max_message_size");
        return;
    }
    keepalive_.on_activity(received_at_);
    config_.metrics->notification_received();
    const NotificationHandler* handler =
        config_.router ? config_.router->find_notification(notification.method) : nullptr;
    const bool ended = lifecycle_.state() == SessionLifecycle::State::closed;
    if (handler == nullptr && !ended) {
        // No handler: for next_notification(), when its buffer has room.
        if (pulled_bytes_ + size > config_.options.notification_buffer_bytes) {
            drop_notification(notification.method, config_.options.notification_buffer_bytes == 0
                                                       ? "no handler"
                                                       : "no handler and the buffer is full");
            return;
        }
        pulled_bytes_ += size;
        pulled_.emplace_back(
            IncomingNotification{std::move(notification.method), std::move(notification.metadata),
                                 std::move(notification.body)},
            size);
        pulled_wake_.try_send(boost::system::error_code{});
        return;
    }
    // protocol.md §6.6: goaway stops requests, not notifications; what the peer sent before
    // its `end` is handled while draining, until the drain deadline.
    const bool accepting = lifecycle_.accepts_new_work();
    if (!requests_.admit_notification(size, handler != nullptr, accepting)) {
        drop_notification(notification.method,
                          accepting ? "over max_in_flight" : "the session is closing");
        return;
    }
    auto task = make_task(0, std::move(notification.method), std::move(notification.metadata),
                          std::nullopt);
    task->notification_handler = handler;
    task->body = std::move(notification.body);
    schedule(std::move(task));
}

void SessionImpl::drop_notification(std::string_view method, std::string_view why) {
    config_.metrics->notification_dropped();
    stats_.notifications_dropped.fetch_add(1, std::memory_order_relaxed);
    if (!drop_logged_) {
        // Once per session: a peer that floods must not flood the log too.
        drop_logged_ = true;
        config_.logger.warn(
            "{}: notification '{}' from {} dropped ({}); later drops of this session are only "
            "counted (SessionStats::notifications_dropped)",
            config_.side, method, peer_->fingerprint.short_hex(), why);
    }
}

asio::awaitable<std::optional<IncomingNotification>> SessionImpl::next_notification(
    std::shared_ptr<SessionImpl> self) {
    // One co_await per statement: GCC 12 miscompiles `co_return co_await` under a condition
    // on another co_await.
    const Executor executor = co_await asio::this_coro::executor;
    std::optional<IncomingNotification> next;
    if (executor == self->strand_) {
        next = co_await self->next_notification_on_strand();
    } else {
        next = co_await asio::co_spawn(self->strand_, self->next_notification_on_strand(),
                                       asio::use_awaitable);
    }
    co_return next;
}

asio::awaitable<std::optional<IncomingNotification>> SessionImpl::next_notification_on_strand() {
    while (pulled_.empty()) {
        if (pulled_ended_)
            co_return std::nullopt;
        // Cancellation of the awaiting coroutine cancels this receive; nothing was taken.
        auto [ec] = co_await pulled_wake_.async_receive(use_tuple);
        if (ec == asio::experimental::error::channel_cancelled)
            ec = asio::error::operation_aborted;  // as any other cancelled Asio operation
        if (ec && ec != asio::experimental::error::channel_closed)
            throw boost::system::system_error(ec, "next_notification");
    }
    auto [notification, size] = std::move(pulled_.front());
    pulled_.pop_front();
    pulled_bytes_ -= size;
    // Another waiter may take the next one.
    if (!pulled_.empty())
        pulled_wake_.try_send(boost::system::error_code{});
    co_return std::move(notification);
}

// The session has closed: waiters take what is buffered, then see the end.
void SessionImpl::end_notifications() {
    pulled_ended_ = true;
    pulled_wake_.close();
}

void SessionImpl::on_cancel(std::uint64_t id) {
    if (RequestTable::Entry* entry = requests_.find(id))
        cancel_task(task_of(*entry), Status::cancelled);
}

void SessionImpl::on_end() {
    // protocol.md §6.6: the peer sends nothing more; it had no call of ours left to answer
    // (any still pending never will be). We finish what it sent, then send our own `end`.
    config_.logger.debug("{}: {} sent end", config_.side, peer_->fingerprint.short_hex());
    drain_for_ = config_.options.drain_timeout;
    apply(lifecycle_.peer_end());
}

}  // namespace sdmp::detail
