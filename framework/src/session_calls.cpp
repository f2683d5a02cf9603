// Our calls and notifications: the caller-side operation and its inbox, the pending-call
// table, deadlines, cancellation and the peer's goaway (protocol.md §6.2).
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>

#include <algorithm>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "detail/session_support.hpp"
#include "sdmp/error.hpp"

namespace sdmp::detail {

namespace {

Reply refused_reply() {
    return Reply::error(Status::shutting_down,
                        "the peer is shutting down; the call was not handled");
}

}  // namespace

// The CallOp and the caller's handler in one allocation. Two kinds of handler: the one
// use_awaitable makes for call() (void(std::exception_ptr, Reply): the awaiting coroutine gets
// the exception as thrown today, with the method in what()), and the type-erased handler of
// async_call() (void(boost::system::error_code, Reply)).
template <typename Handler>
struct SessionImpl::CallOpImpl final : SessionImpl::CallOp {
    static constexpr bool k_reports_exception =
        std::is_invocable_v<Handler&&, std::exception_ptr, Reply>;
    using Work = asio::associated_executor_t<Handler, Executor>;

    CallOpImpl(std::shared_ptr<SessionImpl> s, Handler h)
        : CallOp(std::move(s)), handler(std::move(h)), work(target_of(handler, *session)) {}

    // The caller's executor. Its context must not run out of work while the call is pending;
    // on the session's own context the session's operations (the pending read, the posted
    // inbox drain, timers, the posted completion) already see to that, so the tracking
    // executor is only made for other contexts. A type-erased handler's executor cannot be
    // asked for its context: it is always tracked.
    static Work target_of(const Handler& handler, const SessionImpl& session) {
        Work ex = asio::get_associated_executor(handler, session.strand());
        if constexpr (asio::can_query<const Work&, asio::execution::context_t>::value) {
            if (&asio::query(ex, asio::execution::context) ==
                &asio::query(session.strand(), asio::execution::context)) {
                return ex;
            }
        }
        return asio::prefer(ex, asio::execution::outstanding_work.tracked);
    }

    void deliver(std::error_code error, Reply reply) override {
        const Work target = std::move(work);
        auto complete = [h = std::move(handler), outcome = outcome_of(error), r = std::move(reply),
                         s = session]() mutable {
            // Active until here: calls finished but not yet resumed are a burst about to
            // return (see submit).
            s->calls_active_.fetch_sub(1, std::memory_order_relaxed);
            // The canceller lives in the caller's slot: removed in the caller's context.
            asio::get_associated_cancellation_slot(h).clear();
            std::move(h)(std::move(outcome), std::move(r));
        };
        if constexpr (asio::can_require<const Work&, asio::execution::blocking_t::never_t>::value) {
            asio::post(target, std::move(complete));
        } else {
            // A type-erased handler's executor cannot promise not to run the handler inline
            // (inside finish_call, in the middle of the session's tables): post to the strand,
            // which then dispatches to it (inline when it is the strand, the default).
            asio::post(session->strand_, asio::bind_executor(target, std::move(complete)));
        }
    }

    auto outcome_of(std::error_code error) const {
        if constexpr (k_reports_exception) {
            return error ? std::make_exception_ptr(boost::system::system_error(
                               boost::system::error_code(error), "call '" + method + "'"))
                         : std::exception_ptr();
        } else {
            return boost::system::error_code(error);
        }
    }

    Handler handler;
    Work work;
};

// Runs on the caller's thread: makes the CallOp, hooks the caller's cancellation slot to it and
// hands it to the strand through the inbox.
struct SessionImpl::CallInitiation {
    // Emitted in the caller's context; the cancellation itself happens on the strand.
    struct Canceller {
        std::weak_ptr<CallOp> op;
        void operator()(asio::cancellation_type type) const {
            if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                         asio::cancellation_type::total)) == asio::cancellation_type::none) {
                return;
            }
            if (auto o = op.lock()) {
                const Executor strand = o->session->strand_;
                asio::post(strand, [o = std::move(o)] {
                    o->session->cancel_call(*o);
                    o->session->flush();
                });
            }
        }
    };

    template <typename Handler>
    void operator()(Handler&& handler, std::shared_ptr<SessionImpl> self, std::string method,
                    Bytes body, CallOptions options) const {
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto op = std::make_shared<CallOpImpl<std::decay_t<Handler>>>(
            std::move(self), std::forward<Handler>(handler));
        SessionImpl& session = *op->session;
        // The earliest of timeout, deadline and the parent's deadline: inheriting a budget
        // never extends it. A call without a timeout reads no clock here: drain_inbox stamps
        // its start, once for every call it starts.
        const auto timeout = options.timeout.count() > 0
                                 ? options.timeout
                                 : session.config_.options.default_call_timeout;
        if (timeout.count() > 0) {
            op->started = SteadyClock::now();
            op->deadline = op->started + timeout;
        }
        auto earliest = [&](SteadyClock::time_point t) {
            if (!op->deadline || t < *op->deadline)
                op->deadline = t;
        };
        if (options.deadline)
            earliest(*options.deadline);
        if (options.parent_deadline)
            earliest(*options.parent_deadline);
        op->method = std::move(method);
        op->body = std::move(body);
        op->metadata = std::move(options.metadata);
        op->no_compress = options.no_compress;
        if (slot.is_connected())
            slot.template emplace<Canceller>(Canceller{op});
        session.submit(std::move(op));
    }
};

asio::awaitable<Reply> SessionImpl::call(std::shared_ptr<SessionImpl> self, std::string method,
                                         Bytes body, CallOptions options) {
    // An asynchronous operation rather than a coroutine hopping onto the strand: the call
    // joins the inbox (one strand post serves every call submitted meanwhile) and completes
    // with one post to the caller's executor. Cancellation of the awaiting coroutine reaches
    // it through the caller's cancellation slot.
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, Reply)>(
        CallInitiation{}, asio::use_awaitable, std::move(self), std::move(method), std::move(body),
        std::move(options));
}

void SessionImpl::async_call(std::shared_ptr<SessionImpl> self, std::string method, Bytes body,
                             CallOptions options, CallHandler handler) {
    // The same operation as call(), with the handler type-erased by Session::async_call: the
    // erased handler lives inside the CallOp.
    CallInitiation{}(std::move(handler), std::move(self), std::move(method), std::move(body),
                     std::move(options));
}

// Any thread.
void SessionImpl::submit(std::shared_ptr<CallOp> op) {
    // A lone call (no other call in flight, none finished and about to resume its caller)
    // starts at once when this thread runs the strand's context: dispatch. Otherwise the drain
    // is posted, so that it starts every call submitted before it runs (one strand trip per
    // burst, and one record).
    const bool lone = calls_active_.fetch_add(1, std::memory_order_relaxed) == 0;
    bool schedule_drain = false;
    {
        const std::lock_guard lock(inbox_mutex_);
        inbox_.push_back(std::move(op));
        schedule_drain = !inbox_scheduled_;
        inbox_scheduled_ = true;
    }
    if (!schedule_drain)
        return;
    auto drain = [self = shared_from_this()] { self->drain_inbox(); };
    if (lone) {
        asio::dispatch(strand_, std::move(drain));
    } else {
        asio::post(strand_, std::move(drain));
    }
}

void SessionImpl::drain_inbox() {
    {
        const std::lock_guard lock(inbox_mutex_);
        inbox_draining_.swap(inbox_);
        inbox_scheduled_ = false;
    }
    // One clock read for the calls of this drain (their latency starts here, a strand hop
    // after the caller asked at most).
    const SteadyClock::time_point now = SteadyClock::now();
    for (std::size_t i = 0; i < inbox_draining_.size(); ++i) {
        const ProducerScope scope(*this, i + 1 < inbox_draining_.size());
        if (inbox_draining_[i]->started == SteadyClock::time_point{})
            inbox_draining_[i]->started = now;
        start_call(inbox_draining_[i]);
        flush();
    }
    inbox_draining_.clear();
}

void SessionImpl::start_call(const std::shared_ptr<CallOp>& op) {
    if (op->phase != CallOp::Phase::submitted)
        return;
    if (op->cancel_requested) {
        finish_call(*op, {}, Reply::error(Status::cancelled, "cancelled by the caller"));
        return;
    }
    if (!lifecycle_.sending()) {
        finish_call(*op, lifecycle_.reason_or_closed(), std::nullopt);
        return;
    }
    if (calls_.peer_went_away() || lifecycle_.peer_ended()) {
        finish_call(*op, {}, Reply::error(Status::shutting_down, "the peer is shutting down"));
        return;
    }
    if (!lifecycle_.accepts_new_work()) {
        // Past our drain deadline: nothing would fail this call any more.
        finish_call(*op, framework_errc::session_shutting_down, std::nullopt);
        return;
    }
    std::uint64_t timeout_ms = 0;
    if (op->deadline) {
        const SteadyClock::time_point now = SteadyClock::now();
        if (*op->deadline <= now) {
            finish_call(*op, {},
                        Reply::error(Status::deadline_exceeded,
                                     "the deadline passed before the call was sent"));
            return;
        }
        // protocol.md §6.2: the remaining budget, rounded up so it never reads as "none".
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*op->deadline - now);
        timeout_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(left.count(), 1));
    }

    const std::optional<std::uint64_t> id = calls_.next_id();
    if (!id) {
        finish_call(*op, errc::counter_exhausted, std::nullopt);
        return;
    }
    op->id = *id;
    if (op->no_compress)
        op->metadata.emplace_back(protocol::k_metadata_no_compress,
                                  "1");  // the answer too (protocol.md §6.2, §6.7)
    // Built in place: a Request passed as `const Message&` would be copied into a temporary.
    protocol::Message message{std::in_place_type<protocol::Request>,
                              protocol::Request{op->id, std::move(op->method), timeout_ms,
                                                std::move(op->metadata), std::move(op->body)}};
    const std::size_t size = protocol::encoded_size(message);
    calls_.insert(op->id, op);
    stats_.pending_calls.store(calls_.size(), std::memory_order_relaxed);
    std::error_code ec;
    if (try_reserve(size)) {
        op->phase = CallOp::Phase::sent;
        ec = enqueue(message, size, op->no_compress, false);
        if (ec) {
            op->phase = CallOp::Phase::submitted;
            release(size, 0);
        }
    } else {
        // A peer that reads slowly makes us wait here, not buffer.
        ec = protocol::encode_message(message, op->encoded, send_queue_.limits().encode);
        if (!ec)
            op->phase = CallOp::Phase::waiting_space;
    }
    op->method = std::move(std::get<protocol::Request>(message).method);  // for metrics, errors
    if (ec) {
        op->encoded.clear();
        finish_call(*op, ec, std::nullopt);  // also leaves calls_
        return;
    }
    if (op->deadline) {
        op->timer.emplace(strand_);
        op->timer->expires_at(*op->deadline);
        op->timer->async_wait([weak = std::weak_ptr<CallOp>(op)](boost::system::error_code e) {
            if (e)
                return;
            if (const auto o = weak.lock()) {
                // No cancel message: the request carried the same budget and the peer
                // enforces it.
                o->session->finish_call(
                    *o, {}, Reply::error(Status::deadline_exceeded, "deadline exceeded"));
                o->session->flush();  // its queue space may have gone to a waiting call
            }
        });
    }
    if (op->phase == CallOp::Phase::waiting_space)
        wait_for_space(*op, size);
}

void SessionImpl::call_granted(CallOp& op) {
    op.granted = false;  // the grant becomes the queued request
    if (op.phase != CallOp::Phase::waiting_space) {
        release(op.need, 0);
        return;
    }
    Bytes encoded = std::exchange(op.encoded, Bytes());
    op.phase = CallOp::Phase::sent;
    enqueue_encoded(std::move(encoded), op.no_compress);
}

void SessionImpl::cancel_call(CallOp& op) {
    if (op.phase == CallOp::Phase::done)
        return;
    if (op.phase == CallOp::Phase::submitted) {
        op.cancel_requested = true;  // still in the inbox
        return;
    }
    if (op.phase == CallOp::Phase::sent) {
        // Our caller was cancelled: tell the peer to stop (protocol.md §6.2).
        send_control(protocol::Cancel{op.id});
    }
    finish_call(op, {}, Reply::error(Status::cancelled, "cancelled by the caller"));
}

// Completes a call once: leaves every table, then posts the caller's handler.
void SessionImpl::finish_call(CallOp& op, std::error_code error, std::optional<Reply> reply,
                              std::optional<SteadyClock::time_point> completed_at) {
    if (op.phase == CallOp::Phase::done)
        return;
    op.phase = CallOp::Phase::done;
    op.timer.reset();
    withdraw(op);
    std::shared_ptr<CallOp> keep;  // op may be owned by the table alone
    if (op.id != 0) {
        keep = calls_.take_if(op.id, &op);
        stats_.pending_calls.store(calls_.size(), std::memory_order_relaxed);
    }
    touch_activity();
    if (reply) {
        const auto end = completed_at ? *completed_at : SteadyClock::now();
        config_.metrics->call_completed(op.method, reply->status, end - op.started);
        op.deliver({}, std::move(*reply));
    } else {
        op.deliver(error, Reply{});
    }
    if (lifecycle_.state() == SessionLifecycle::State::draining) {
        // Not inline: finish_call runs inside loops over the tables that this may change.
        asio::post(strand_, [self = shared_from_this()] { self->check_drained(); });
    }
}

asio::awaitable<void> SessionImpl::notify(std::shared_ptr<SessionImpl> self, std::string method,
                                          Bytes body, CallOptions options) {
    const Executor executor = co_await asio::this_coro::executor;
    if (executor == self->strand_) {
        co_await self->notify_on_strand(std::move(method), std::move(body), std::move(options));
        co_return;
    }
    co_await asio::co_spawn(
        self->strand_,
        self->notify_on_strand(std::move(method), std::move(body), std::move(options)),
        asio::use_awaitable);
}

asio::awaitable<void> SessionImpl::notify_on_strand(std::string method, Bytes body,
                                                    CallOptions options) {
    if (!lifecycle_.sending() || lifecycle_.peer_ended())
        throw_error(lifecycle_.reason_or_closed(), "notify '" + method + "'");
    protocol::Message notification{
        std::in_place_type<protocol::Notification>,
        protocol::Notification{method, std::move(options.metadata), std::move(body)}};
    const std::size_t size = protocol::encoded_size(notification);
    if (try_reserve(size)) {
        if (const auto ec = enqueue(notification, size, options.no_compress, false)) {
            release(size, 0);
            throw_error(ec, "notify '" + method + "': message exceeds a limit");
        }
    } else {
        Bytes encoded;
        if (const auto ec =
                protocol::encode_message(notification, encoded, send_queue_.limits().encode)) {
            throw_error(ec, "notify '" + method + "': message exceeds a limit");
        }
        Waiter waiter(strand_);
        if (const auto ec = co_await reserve(waiter, size)) {
            throw_error(ec, "notify '" + method + "'");
        }
        enqueue_encoded(std::move(encoded), options.no_compress);
    }
    config_.metrics->notification_sent();
    flush();
}

void SessionImpl::on_response(protocol::Response&& response, std::size_t size) {
    keepalive_.on_activity(received_at_);
    const std::shared_ptr<CallOp> op = calls_.take(response.id);
    if (!op)
        return;  // the call timed out or was cancelled meanwhile
    stats_.pending_calls.store(calls_.size(), std::memory_order_relaxed);
    if (size > config_.options.max_message_size) {
        finish_call(*op, {}, Reply::error(Status::too_large, "response exceeds max_message_size"));
        return;
    }
    // It arrived when its record was read: no clock read per answer.
    finish_call(*op, {},
                Reply{response.status, std::move(response.body), std::move(response.metadata)},
                received_at_);
}

void SessionImpl::on_goaway(const protocol::GoAway& goaway) {
    // Calls above the peer's last id will not be handled (protocol.md §6.2).
    const std::vector<std::shared_ptr<CallOp>> refused = calls_.on_goaway(goaway.last_request_id);
    stats_.pending_calls.store(calls_.size(), std::memory_order_relaxed);
    mark_not_open();
    config_.logger.info("{}: {} sent goaway (last request {})", config_.side,
                        peer_->fingerprint.short_hex(), goaway.last_request_id);
    // Out of the space queue first, all of them: finishing one could otherwise grant space to
    // another refused call, whose request would then still go out.
    send_queue_.withdraw_if([&](const SpaceWaiter* waiter) {
        return std::any_of(refused.begin(), refused.end(),
                           [&](const auto& op) { return op.get() == waiter; });
    });
    for (const auto& op : refused)
        finish_call(*op, {}, refused_reply());
    release(0, 0);  // what they held up at the head of the queue may go now
}

void SessionImpl::fail_pending(std::error_code reason) {
    // Completing a call may end the drain, which fails what is pending again: the table is
    // emptied first.
    auto calls = calls_.take_all();
    stats_.pending_calls.store(0, std::memory_order_relaxed);
    for (auto& [id, op] : calls) {
        if (calls_.refused(id)) {
            // Above the peer's goaway: certainly not handled, safe to retry elsewhere.
            finish_call(*op, {}, refused_reply());
        } else {
            finish_call(*op, reason, std::nullopt);
        }
    }
}

}  // namespace sdmp::detail
