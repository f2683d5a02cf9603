// One established session (protocol.md §5, §6). Every function of SessionImpl runs on the
// session's strand unless its comment says otherwise; see detail/session_impl.hpp.
#include <time.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>

#include "detail/session_impl.hpp"
#include "sdmp/error.hpp"

namespace sdmp {
namespace detail {

namespace {

constexpr std::size_t k_write_batch = std::size_t{1} << 20;  // record bytes per socket write
constexpr std::size_t k_min_read = std::size_t{16} << 10;
constexpr std::size_t k_max_read = std::size_t{1} << 20;
// The writer's buffer is given back when it is larger than this and four times what a batch
// needs: a session that stops sending large messages does not keep their size, while one that
// keeps sending them does not allocate (and page-fault) a fresh buffer per write.
constexpr std::size_t k_keep_wire = std::size_t{256} << 10;
// Idle handler workers a session keeps (more exit); two make a burst of requests cost one
// wake-up in the steady state (see schedule()).
constexpr std::size_t k_max_idle_workers = 2;
// Envelopes of one record dispatched before the reader yields the strand: a record of millions
// of tiny envelopes must not hold up the other sessions of this thread (protocol.md §6.2).
constexpr std::size_t k_dispatch_slice = 512;
constexpr std::string_view k_unknown_method_metric = "<unknown>";
// A received timeout above this is treated as this (keeps time_point arithmetic in range).
constexpr std::uint64_t k_max_timeout_ms = std::uint64_t{366} * 24 * 3600 * 1000;

template <typename... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

std::string describe(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "exception of unknown type";
    }
}

std::string_view cancel_message(Status reason) {
    switch (reason) {
        case Status::deadline_exceeded:
            return "deadline exceeded";
        case Status::cancelled:
            return "cancelled by the caller";
        case Status::shutting_down:
            return "the server is shutting down";
        default:
            return "cancelled";
    }
}

// The steady clock read cheaply (a few ns instead of ~40 here), a few milliseconds behind:
// good enough for keepalive and idle bookkeeping, which happen per message. libstdc++'s
// steady_clock is CLOCK_MONOTONIC, the same epoch.
SteadyClock::time_point coarse_now() noexcept {
#if defined(CLOCK_MONOTONIC_COARSE)
    timespec ts{};
    if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
        return SteadyClock::time_point(std::chrono::duration_cast<SteadyClock::duration>(
            std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
    }
#endif
    return SteadyClock::now();
}

}  // namespace

// The application's share of a session. Client sessions close when the last one goes away.
class SessionImpl::HandleBlock {
  public:
    HandleBlock(std::shared_ptr<SessionImpl> impl, bool owning)
        : impl_(std::move(impl)), owning_(owning) {}
    ~HandleBlock() {
        if (owning_)
            impl_->close(impl_->options().drain_timeout);
    }
    HandleBlock(const HandleBlock&) = delete;
    HandleBlock& operator=(const HandleBlock&) = delete;
    SessionImpl* get() const noexcept { return impl_.get(); }

  private:
    std::shared_ptr<SessionImpl> impl_;
    bool owning_;
};

// One call: made by the initiation on the caller's thread, then owned by the strand (inbox,
// pending_). It completes exactly once, in finish_call(), by posting the caller's handler to
// the caller's executor. Everything but the fields set before submit() is strand-only.
struct SessionImpl::CallOp : SpaceWaiter {
    enum class Phase : unsigned char { submitted, waiting_space, sent, done };

    explicit CallOp(std::shared_ptr<SessionImpl> s) : session(std::move(s)) {}

    // Space granted (release()) or the wait failed (fail_waiters()).
    void on_space() override {
        if (failed) {
            session->finish_call(*this, failed, std::nullopt);
        } else if (granted) {
            session->call_granted(*this);
        }
    }
    // Posts the handler with the outcome: exactly one of `error`/`reply`.
    virtual void deliver(std::exception_ptr error, Reply reply) = 0;

    std::shared_ptr<SessionImpl> session;
    // Set by the initiation.
    std::string method;
    Bytes body;
    Metadata metadata;
    bool no_compress = false;
    SteadyClock::time_point started;
    std::optional<SteadyClock::time_point> deadline;
    // Strand-only.
    std::uint64_t id = 0;
    Bytes encoded;  // the request, while it waits for queue space
    std::optional<Timer> timer;
    Phase phase = Phase::submitted;
    bool cancel_requested = false;
};

template <typename Handler>
struct SessionImpl::CallOpImpl final : SessionImpl::CallOp {
    CallOpImpl(std::shared_ptr<SessionImpl> s, Handler h)
        : CallOp(std::move(s)), handler(std::move(h)), work(target_of(handler, *session)) {}

    // The caller's executor. Its context must not run out of work while the call is pending;
    // on the session's own context the session's operations (the pending read, the posted
    // inbox drain, timers, the posted completion) already see to that, so the tracking
    // executor is only made for other contexts.
    static Executor target_of(const Handler& handler, const SessionImpl& session) {
        Executor ex = asio::get_associated_executor(handler, session.strand());
        if (&asio::query(ex, asio::execution::context) ==
            &asio::query(session.strand(), asio::execution::context)) {
            return ex;
        }
        return asio::prefer(ex, asio::execution::outstanding_work.tracked);
    }

    void deliver(std::exception_ptr error, Reply reply) override {
        const Executor target = std::move(work);
        asio::post(target,
                   [h = std::move(handler), error, r = std::move(reply), s = session]() mutable {
                       // Active until here: calls finished but not yet resumed are a burst about to
                       // return (see submit).
                       s->calls_active_.fetch_sub(1, std::memory_order_relaxed);
                       // The canceller lives in the caller's slot: removed in the caller's context.
                       asio::get_associated_cancellation_slot(h).clear();
                       std::move(h)(error, std::move(r));
                   });
    }

    Handler handler;
    Executor work;
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
        op->started = SteadyClock::now();
        // The earliest of timeout, deadline and the parent's deadline: inheriting a budget
        // never extends it. A parent's deadline is fixed, so reading it here is safe.
        const auto timeout = options.timeout.count() > 0
                                 ? options.timeout
                                 : session.config_.options.default_call_timeout;
        if (timeout.count() > 0)
            op->deadline = op->started + timeout;
        auto earliest = [&](SteadyClock::time_point t) {
            if (!op->deadline || t < *op->deadline)
                op->deadline = t;
        };
        if (options.deadline)
            earliest(*options.deadline);
        if (options.parent != nullptr) {
            if (const auto inherited = options.parent->deadline())
                earliest(*inherited);
        }
        op->method = std::move(method);
        op->body = std::move(body);
        op->metadata = std::move(options.metadata);
        op->no_compress = options.no_compress;
        if (slot.is_connected())
            slot.template emplace<Canceller>(Canceller{op});
        session.submit(std::move(op));
    }
};

SessionImpl::SessionImpl(tcp::socket socket, protocol::Established established,
                         SessionConfig config)
    : strand_(socket.get_executor()),
      socket_(std::move(socket)),
      config_(std::move(config)),
      sealer_(*config_.provider, established.suite.aead, established.keys.send_key,
              config_.options.record_limits),
      opener_(*config_.provider, established.suite.aead, established.keys.receive_key,
              config_.options.record_limits),
      writer_done_wake_(strand_, 1),
      tasks_idle_(strand_, 1),
      drain_timer_(strand_),
      linger_timer_(strand_),
      keepalive_timer_(strand_),
      closed_event_(strand_, 1) {
    SessionOptions& o = config_.options;
    // A message must fit in one record with its varint frame (protocol.md §5.1, §6.1).
    // protocol.md §6.2: no envelope is over the protocol's limit, and one must fit in a record
    // with its frame (§5.1).
    const std::size_t payload_cap = o.record_limits.max_payload_size;
    const std::size_t protocol_cap = protocol::MessageLimits{}.max_message_size;
    o.max_message_size = std::min({o.max_message_size, protocol_cap, payload_cap - 10});
    o.max_record_payload = std::clamp<std::size_t>(o.max_record_payload, 1, payload_cap);
    SendQueue::Limits queue_limits;
    queue_limits.data_bytes = o.send_queue_bytes;
    queue_limits.control_bytes = o.max_control_bytes;
    queue_limits.max_record_payload = o.max_record_payload;
    queue_limits.encode.max_message_size = o.max_message_size;
    send_queue_ = SendQueue(queue_limits);
    // Everything within the protocol's limit decodes; the local limit is applied per message,
    // so that an oversized request gets `too_large` instead of a closed connection.
    decode_limits_.max_message_size = protocol_cap;

    auto peer = std::make_shared<PeerInfo>();
    peer->fingerprint = established.peer_fingerprint;
    peer->name = established.peer_name;
    peer->suite = established.suite.id;
    peer->transcript_hash = established.keys.transcript_hash;
    boost::system::error_code ec;
    if (const auto remote = socket_.remote_endpoint(ec); !ec) {
        peer->remote_endpoint = format_endpoint(remote);
    }
    if (const auto local = socket_.local_endpoint(ec); !ec) {
        peer->local_endpoint = format_endpoint(local);
    }
    peer_ = std::move(peer);
    // The writer tries each write at once before it waits (write_loop).
    socket_.non_blocking(true, ec);
    try_write_at_once_ = !ec;

    // The first records may have arrived with the peer's connection message.
    if (!established.leftover.empty())
        opener_.feed(established.leftover);
    received_at_ = SteadyClock::now();
}

SessionImpl::~SessionImpl() = default;

Session SessionImpl::handle() {
    const std::lock_guard lock(handle_mutex_);
    std::shared_ptr<HandleBlock> block = handle_block_.lock();
    if (!block) {
        block = std::make_shared<HandleBlock>(shared_from_this(), config_.close_on_last_handle);
        handle_block_ = block;
    }
    return Session(std::shared_ptr<SessionImpl>(block, block->get()));
}

void SessionImpl::touch_activity() noexcept {
    keepalive_.on_activity(coarse_now());
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

asio::awaitable<void> SessionImpl::run() {
    auto self = shared_from_this();
    config_.metrics->session_opened();
    config_.logger.info("{}: session with {}{}{} at {} established", config_.side,
                        peer_->fingerprint.short_hex(), peer_->name.empty() ? "" : " ", peer_->name,
                        peer_->remote_endpoint);

    asio::co_spawn(strand_, write_loop(), [self](std::exception_ptr error) {
        if (error) {
            self->config_.logger.error("{}: writer failed: {}", self->config_.side,
                                       describe(error));
            self->do_abort(errc::connection_closed);
        }
        self->writer_done_ = true;
        self->writer_done_wake_.try_send(boost::system::error_code{});
        // Our side has finished sending; give the peer close_linger to finish too.
        if (!self->aborted_)
            self->start_linger();
    });
    if (keepalive_.enabled()) {
        asio::co_spawn(strand_, keepalive_loop(), [self](std::exception_ptr error) {
            if (error) {
                self->config_.logger.error("{}: keepalive failed: {}", self->config_.side,
                                           describe(error));
            }
        });
    }

    const boost::system::error_code read_error = co_await read_loop();

    // Nothing more will be received.
    if (!aborted_) {
        if (read_error == asio::error::eof && peer_ended_ && opener_.buffered() == 0) {
            // protocol.md §6.6: the peer's `end`, then its end of stream: a graceful end. What
            // it sent before is handled (the drain that on_end began bounds the handlers).
            maybe_finish_drain();
        } else if (read_error == asio::error::eof) {
            // The stream ended without the peer's `end`, or inside a record: the connection was
            // cut, whatever came before, and is closed as after any error (protocol.md §5.6,
            // §6.6): nothing more is sent.
            do_abort(errc::connection_lost);
        } else if (state_ == State::closing) {
            // We had finished; the peer's end did not come within the linger (we closed the
            // socket) or came as a reset. Either way nothing was lost.
        } else {
            do_abort(read_error ? to_std(read_error) : std::error_code(errc::connection_closed));
        }
    }
    if (close_reason_ && close_reason_ != errc::connection_closed) {
        config_.logger.warn("{}: session with {} ends: {}", config_.side,
                            peer_->fingerprint.short_hex(), close_reason_.message());
    }

    // Every handler finishes (they were cancelled), then the writer.
    while (task_count_ != 0) {
        co_await tasks_idle_.async_receive(use_tuple);
    }
    // Idle workers end (nothing can be scheduled any more); one still starting ends at once.
    workers_closed_ = true;
    resume_parked(parked_workers_, false);
    while (!writer_done_) {
        co_await writer_done_wake_.async_receive(use_tuple);
    }

    boost::system::error_code ignored;
    keepalive_timer_.cancel();
    drain_timer_.cancel();
    linger_timer_.cancel();
    socket_.close(ignored);
    state_ = State::closed;
    mark_not_open();
    fail_pending(close_reason_ ? close_reason_ : std::error_code(errc::connection_closed));
    fail_waiters(errc::connection_closed);
    {
        const std::lock_guard lock(close_reason_mutex_);
        published_close_reason_ = close_reason_;
    }
    closed_event_.close();
    config_.metrics->session_closed();
    config_.logger.info("{}: session with {} closed", config_.side, peer_->fingerprint.short_hex());
}

void SessionImpl::close(std::chrono::milliseconds drain) {
    // post (not dispatch): callers may be in the middle of work on this strand.
    asio::post(strand_, [self = shared_from_this(), drain] {
        self->begin_drain(drain);
        self->flush();
    });
}

void SessionImpl::abort(std::error_code reason) {
    asio::post(strand_, [self = shared_from_this(), reason] { self->do_abort(reason); });
}

void SessionImpl::begin_drain(std::chrono::milliseconds drain) {
    if (state_ != State::open)
        return;
    state_ = State::draining;
    mark_not_open();
    // protocol.md §6.2: requests up to the highest we have seen are still answered. After the
    // peer's `end` it reads nothing more of ours but our own `end`.
    if (!peer_ended_)
        send_control(protocol::GoAway{highest_peer_request_, "closing"});
    drain_timer_.expires_after(drain);
    drain_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec || self->state_ != State::draining)
            return;
        self->config_.logger.info("{}: drain deadline passed; cancelling what is left",
                                  self->config_.side);
        self->cancel_all_tasks(Status::shutting_down);
        // Answers and calls still waiting for queue space (a peer that does not read) give up
        // first: finishing a sent call frees no space, but withdrawing a waiter could grant the
        // next one, whose request would then go out although its caller was told it failed.
        self->fail_waiters(errc::session_shutting_down);
        self->fail_pending(errc::session_shutting_down);
        self->maybe_finish_drain();
    });
    maybe_finish_drain();
}

void SessionImpl::maybe_finish_drain() {
    if (state_ == State::draining && task_count_ == 0 && pending_.empty())
        begin_closing();
}

void SessionImpl::begin_closing() {
    if (state_ == State::closing || state_ == State::closed)
        return;
    state_ = State::closing;
    mark_not_open();
    drain_timer_.cancel();
    fail_waiters(errc::connection_closed);  // first, as in begin_drain's deadline
    fail_pending(errc::connection_closed);
    writer_finish_ = true;
    flush_later();
    // Bounds the flush of what is queued; restarted for the peer's end once the writer is done.
    start_linger();
}

void SessionImpl::start_linger() {
    linger_timer_.expires_after(config_.options.close_linger);
    linger_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec)
            return;
        boost::system::error_code ignored;
        self->socket_.close(ignored);
    });
}

void SessionImpl::do_abort(std::error_code reason) {
    if (aborted_ || state_ == State::closed)
        return;
    aborted_ = true;
    if (!close_reason_)
        close_reason_ = reason ? reason : std::error_code(errc::connection_closed);
    state_ = State::closing;
    mark_not_open();
    cancel_all_tasks(Status::cancelled);
    fail_pending(close_reason_);
    fail_waiters(close_reason_);
    boost::system::error_code ignored;
    socket_.close(ignored);  // completes the reader's and the writer's operations
    writer_finish_ = true;
    flush_later();
}

void SessionImpl::fail_pending(std::error_code reason) {
    // Completing a call may end the drain, which fails what is pending again: work on a copy.
    std::vector<std::pair<std::uint64_t, std::shared_ptr<CallOp>>> calls(
        std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
    pending_.clear();
    stats_.pending_calls.store(0, std::memory_order_relaxed);
    for (auto& [id, op] : calls) {
        if (peer_goaway_last_ && id > *peer_goaway_last_) {
            // Above the peer's goaway: certainly not handled, safe to retry elsewhere.
            finish_call(*op, {},
                        Reply::error(Status::shutting_down,
                                     "the peer is shutting down; the call was not handled"));
        } else {
            finish_call(*op, reason, std::nullopt);
        }
    }
}

void SessionImpl::fail_waiters(std::error_code reason) {
    send_queue_.fail_waiters(reason);
    update_queue_stats();
}

void SessionImpl::cancel_all_tasks(Status reason) {
    // cancel_task never completes a task inline, so walking the list is safe.
    for (Task* task = tasks_head_; task != nullptr; task = task->next)
        cancel_task(*task, reason);
}

asio::awaitable<std::error_code> SessionImpl::wait_closed(std::shared_ptr<SessionImpl> self) {
    // The channel is never sent to: it completes receivers only when closed (the event).
    auto [ec] = co_await self->closed_event_.async_receive(use_tuple);
    if (ec != asio::experimental::error::channel_closed) {
        throw boost::system::system_error(ec, "wait_closed");
    }
    const std::lock_guard lock(self->close_reason_mutex_);
    co_return self->published_close_reason_;
}

SessionStats SessionImpl::stats() const {
    SessionStats s;
    s.queued_bytes = stats_.queued_bytes.load(std::memory_order_relaxed);
    s.max_queued_bytes = stats_.max_queued_bytes.load(std::memory_order_relaxed);
    s.control_bytes = stats_.control_bytes.load(std::memory_order_relaxed);
    s.blocked_senders = stats_.blocked_senders.load(std::memory_order_relaxed);
    s.send_waits = stats_.send_waits.load(std::memory_order_relaxed);
    s.pending_calls = stats_.pending_calls.load(std::memory_order_relaxed);
    s.in_flight = stats_.in_flight.load(std::memory_order_relaxed);
    s.open = is_open();
    return s;
}

// Marks, for the writer, that the loop on the stack has more messages to queue after the current
// one (see write_loop). Strand-only; nests; never spans a co_await.
class SessionImpl::ProducerScope {
  public:
    ProducerScope(SessionImpl& session, bool more) : session_(session), more_(more) {
        if (more_)
            ++session_.producers_with_more_;
    }
    ~ProducerScope() {
        if (more_)
            --session_.producers_with_more_;
    }
    ProducerScope(const ProducerScope&) = delete;
    ProducerScope& operator=(const ProducerScope&) = delete;

  private:
    SessionImpl& session_;
    bool more_;
};

// ---------------------------------------------------------------------------------------------
// Send queue

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
    if (state_ == State::closing || state_ == State::closed) {
        co_return std::error_code(errc::connection_closed);
    }
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
    if (writer_done_ || aborted_ || end_sent_)
        return;  // protocol.md §6.6: nothing follows our `end`
    const std::size_t size = protocol::encoded_size(message);
    if (!send_queue_.try_reserve_control(size)) {
        // The peer keeps sending requests or pings while not reading our answers.
        config_.logger.warn("{}: {} does not read its answers; closing", config_.side,
                            peer_->fingerprint.short_hex());
        do_abort(errc::queue_full);
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
        if (aborted_)
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
            if (producers_with_more_ != 0 || pending_.size() > 1 || task_count_ > 1) {
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
    if (!aborted_) {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
    }
}

// ---------------------------------------------------------------------------------------------
// Reader

asio::awaitable<boost::system::error_code> SessionImpl::read_loop() {
    ByteView payload;  // in the opener's buffer, until the next record is opened
    for (;;) {
        // Every complete record buffered is handled before the next read.
        for (;;) {
            std::error_code ec = opener_.next_view(payload);
            if (ec == errc::need_more_data)
                break;
            // protocol.md §5.6: any record or decode error closes the connection, no `nope`;
            // §6.6: so does a record after the peer's `end`.
            if (!ec && peer_ended_)
                ec = errc::malformed;
            if (ec)
                co_return boost::system::error_code(ec);
            config_.metrics->bytes_received(0, 1);
            ec = co_await dispatch_payload(payload);
            if (ec)
                co_return boost::system::error_code(ec);
            if (aborted_)
                co_return boost::system::error_code(close_reason_);
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
        if (peer_ended_)
            co_return errc::malformed;  // an envelope after `end`
        {
            const ProducerScope scope(*this, pos < payload.size());
            dispatch(std::move(message), size);
            flush();
        }
        ++count;
        if (aborted_)
            break;
        if (count % k_dispatch_slice == 0 && pos < payload.size()) {
            start_workers();
            co_await asio::post(strand_, asio::use_awaitable);
            if (aborted_)
                break;
        }
    }
    config_.metrics->messages_received(count);
    if (pong_due_ && !aborted_) {
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
                   [&](protocol::Notification& m) {
                       if (size > config_.options.max_message_size) {
                           config_.metrics->notification_dropped();
                           return;
                       }
                       on_notification(std::move(m));
                   },
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
    highest_peer_request_ = std::max(highest_peer_request_, request.id);
    // protocol.md §6.2: the reserved entry is the protocol's, not the handler's.
    const bool no_compress = protocol::asks_no_compress(request.metadata);
    std::erase_if(request.metadata, [](const auto& entry) {
        return entry.first == protocol::k_metadata_no_compress;
    });
    if (requests_.contains(request.id)) {
        // protocol.md §6.2: ids are unique among the caller's open calls.
        config_.logger.warn("{}: {} reused request id {}; closing", config_.side,
                            peer_->fingerprint.short_hex(), request.id);
        do_abort(errc::malformed);
        return;
    }
    const Handler* handler = config_.router ? config_.router->find(request.method) : nullptr;
    const std::string_view metric =
        handler != nullptr ? std::string_view(request.method) : k_unknown_method_metric;
    if (state_ != State::open) {
        answer_now(request.id, Status::shutting_down, "the server is shutting down", metric);
        return;
    }
    if (size > config_.options.max_message_size) {
        answer_now(request.id, Status::too_large, "request exceeds max_message_size", metric);
        return;
    }
    if (handler == nullptr) {
        answer_now(request.id, Status::unknown_method, "unknown method", metric);
        return;
    }
    if (task_count_ >= config_.options.max_in_flight) {
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

void SessionImpl::on_response(protocol::Response&& response, std::size_t size) {
    keepalive_.on_activity(received_at_);
    const auto it = pending_.find(response.id);
    if (it == pending_.end())
        return;  // the call timed out or was cancelled meanwhile
    const std::shared_ptr<CallOp> op = std::move(it->second);
    pending_.erase(it);
    stats_.pending_calls.store(pending_.size(), std::memory_order_relaxed);
    if (size > config_.options.max_message_size) {
        finish_call(*op, {}, Reply::error(Status::too_large, "response exceeds max_message_size"));
        return;
    }
    finish_call(*op, {},
                Reply{response.status, std::move(response.body), std::move(response.metadata)});
}

void SessionImpl::on_notification(protocol::Notification&& notification) {
    keepalive_.on_activity(received_at_);
    config_.metrics->notification_received();
    const NotificationHandler* handler =
        config_.router ? config_.router->find_notification(notification.method) : nullptr;
    // protocol.md §6.6: goaway stops requests, not notifications; what the peer sent before
    // its `end` is handled, draining or not.
    if (handler == nullptr || state_ == State::closed ||
        task_count_ >= config_.options.max_in_flight) {
        config_.metrics->notification_dropped();
        config_.logger.debug("{}: notification '{}' dropped", config_.side, notification.method);
        return;
    }
    auto task = make_task(0, std::move(notification.method), std::move(notification.metadata),
                          std::nullopt);
    task->notification_handler = handler;
    task->body = std::move(notification.body);
    schedule(std::move(task));
}

void SessionImpl::on_cancel(std::uint64_t id) {
    const auto it = requests_.find(id);
    if (it != requests_.end())
        cancel_task(*it->second, Status::cancelled);
}

void SessionImpl::on_end() {
    // protocol.md §6.6: the peer sends nothing more; it had no call of ours left to answer
    // (any still pending never will be). We finish what it sent, then send our own `end`.
    peer_ended_ = true;
    mark_not_open();
    config_.logger.debug("{}: {} sent end", config_.side, peer_->fingerprint.short_hex());
    fail_waiters(errc::connection_closed);
    fail_pending(errc::connection_closed);
    begin_drain(config_.options.drain_timeout);
    maybe_finish_drain();
}

void SessionImpl::on_goaway(const protocol::GoAway& goaway) {
    peer_goaway_last_ = peer_goaway_last_ ? std::min(*peer_goaway_last_, goaway.last_request_id)
                                          : goaway.last_request_id;
    mark_not_open();
    config_.logger.info("{}: {} sent goaway (last request {})", config_.side,
                        peer_->fingerprint.short_hex(), goaway.last_request_id);
    // Calls above the peer's last id will not be handled (protocol.md §6.2).
    std::vector<std::shared_ptr<CallOp>> refused;
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->first > *peer_goaway_last_) {
            refused.push_back(std::move(it->second));
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
    stats_.pending_calls.store(pending_.size(), std::memory_order_relaxed);
    // Out of the space queue first, all of them: finishing one could otherwise grant space to
    // another refused call, whose request would then still go out.
    send_queue_.withdraw_if([&](const SpaceWaiter* waiter) {
        return std::any_of(refused.begin(), refused.end(),
                           [&](const auto& op) { return op.get() == waiter; });
    });
    for (const auto& op : refused) {
        finish_call(*op, {},
                    Reply::error(Status::shutting_down,
                                 "the peer is shutting down; the call was not handled"));
    }
    release(0, 0);  // what they held up at the head of the queue may go now
}

// ---------------------------------------------------------------------------------------------
// Handler tasks

std::shared_ptr<SessionImpl::Task> SessionImpl::make_task(
    std::uint64_t request_id, std::string method, Metadata metadata,
    std::optional<SteadyClock::time_point> deadline) {
    auto task = std::make_shared<Task>(Context(shared_from_this(), peer_, request_id,
                                               std::move(method), std::move(metadata), deadline));
    task->request_id = request_id;
    task->started = received_at_;
    task->next = tasks_head_;
    if (tasks_head_ != nullptr)
        tasks_head_->prev = task.get();
    tasks_head_ = task.get();
    ++task_count_;
    if (request_id != 0)
        requests_.emplace(request_id, task.get());
    stats_.in_flight.store(task_count_, std::memory_order_relaxed);
    return task;
}

void SessionImpl::start_deadline(const std::shared_ptr<Task>& task) {
    const auto deadline = task->context.deadline();
    if (!deadline)
        return;
    task->timer.emplace(strand_);
    task->timer->expires_at(*deadline);
    task->timer->async_wait([self = shared_from_this(),
                             weak = std::weak_ptr<Task>(task)](boost::system::error_code ec) {
        if (ec)
            return;
        if (const auto t = weak.lock())
            self->cancel_task(*t, Status::deadline_exceeded);
    });
}

// Queues a task; the reader starts the workers once per record (start_workers).
void SessionImpl::schedule(std::shared_ptr<Task> task) {
    ready_.push_back(std::move(task));
}

// After the reader dispatched a record: an idle worker runs what was queued at once, on this
// stack, back to back (one resumption per record, not per request); a worker that takes a task
// while others wait arranges a standby (ensure_worker), so a handler that blocks never holds
// up the queue.
void SessionImpl::start_workers() {
    if (ready_.empty() || worker_wake_pending_ || starting_workers_ != 0)
        return;
    if (!parked_workers_.empty()) {
        resume_parked(parked_workers_, true);
    } else {
        spawn_worker();
    }
}

// Makes sure a worker will look at the queue once the strand is free: one already posted or
// starting, else an idle one resumed by a post (never inline: the caller is a worker, and
// standbys must not nest), else a new one.
void SessionImpl::ensure_worker() {
    if (worker_wake_pending_ || starting_workers_ != 0)
        return;
    if (!parked_workers_.empty()) {
        worker_wake_pending_ = true;
        asio::post(strand_, [self = shared_from_this()] {
            self->worker_wake_pending_ = false;
            if (!self->ready_.empty())
                resume_parked(self->parked_workers_, true);
        });
    } else {
        spawn_worker();
    }
}

void SessionImpl::spawn_worker() {
    auto worker = std::make_shared<Worker>();
    ++starting_workers_;
    // Started by a post, not inline: a standby worker must only run once the strand is free
    // (the handler before it suspended, or every queued task ran), or standbys would nest.
    asio::post(strand_, [self = shared_from_this(), worker] {
        asio::co_spawn(self->strand_, self->worker_loop(worker),
                       asio::bind_cancellation_slot(
                           worker->signal.slot(), [self, worker](std::exception_ptr error) {
                               // worker_loop handles every task's failure; this is a bug.
                               if (error) {
                                   self->config_.logger.error("{}: worker failed: {}",
                                                              self->config_.side, describe(error));
                               }
                           }));
    });
}

// Runs queued tasks one after another. Each handler is its own coroutine awaited here, with this
// worker's cancellation signal as its slot (cancel_task emits it); the state is reset between
// tasks so one task's cancellation never reaches the next. Taking a task while others wait
// arranges a standby worker, which runs once this one suspends: a handler that blocks never
// holds up the queue, and handlers that complete at once run back to back.
asio::awaitable<void> SessionImpl::worker_loop(std::shared_ptr<Worker> worker) {
    --starting_workers_;
    bool emitted = false;  // this worker's signal was emitted since the last reset
    for (;;) {
        if (emitted) {
            co_await asio::this_coro::reset_cancellation_state();
            emitted = false;
        }
        if (ready_.empty()) {
            if (workers_closed_ || parked_workers_.size() >= k_max_idle_workers)
                co_return;
            if (!co_await park(parked_workers_))
                co_return;  // the session ended
            continue;
        }
        std::shared_ptr<Task> task = std::move(ready_.front());
        ready_.pop_front();
        if (!ready_.empty())
            ensure_worker();
        task->worker = worker.get();
        // A fresh cancellation state per handler, as if it had a coroutine of its own (a
        // handler may have changed the filter or throw_if_cancelled of the one before).
        co_await asio::this_coro::reset_cancellation_state();
        co_await asio::this_coro::throw_if_cancelled(true);
        if (task->context.cancelled()) {
            // Cancelled while queued: the handler's first co_await sees it.
            worker->signal.emit(asio::cancellation_type::terminal);
        }
        std::exception_ptr error;
        // More tasks queued behind this one: the writer lets them answer first (see
        // write_loop). Not a ProducerScope: a scope must not span a suspension point.
        const bool more = !ready_.empty();
        if (more)
            ++producers_with_more_;
        try {
            if (task->request_id != 0) {
                co_await serve_request(*task);
            } else {
                co_await serve_notification(*task);
            }
        } catch (...) {
            // Not a std::exception (those are answered in serve_*): recorded by task_finished.
            error = std::current_exception();
        }
        if (more)
            --producers_with_more_;
        task->worker = nullptr;
        // cancel_task emits only after setting the reason, so this tells whether it did.
        emitted = emitted || task->context.cancelled();
        task_finished(task, error);
        flush();
    }
}

void SessionImpl::cancel_task(Task& task, Status reason) {
    if (task.done || task.context.cancel_reason_ != Status::ok)
        return;
    task.context.cancel_reason_ = reason;
    // The handler runs with its worker's signal bound: whatever it awaits now is cancelled
    // (and later awaits throw operation_aborted). A queued task is cancelled when it starts.
    if (task.worker != nullptr)
        task.worker->signal.emit(asio::cancellation_type::terminal);
}

asio::awaitable<void> SessionImpl::serve_request(Task& task) {
    Reply reply;
    try {
        reply = co_await (*task.handler)(task.context, std::move(task.body));
    } catch (const StatusError& e) {
        reply = Reply::error(e.status(), e.what());
    } catch (const std::exception& e) {
        if (task.context.cancelled()) {
            reply = Reply::error(task.context.cancel_reason(),
                                 cancel_message(task.context.cancel_reason()));
        } else {
            config_.logger.debug("{}: handler '{}' threw: {}", config_.side, task.context.method(),
                                 e.what());
            reply = Reply::error(Status::application_error, e.what());
        }
    }
    task.done = true;
    if (task.timer)
        task.timer->cancel();
    // The handler's cancellation must not also cancel sending its answer.
    if (task.context.cancelled())
        co_await asio::this_coro::reset_cancellation_state();
    co_await send_response(task, std::move(reply));
}

asio::awaitable<void> SessionImpl::send_response(Task& task, Reply reply) {
    if (state_ == State::closing || state_ == State::closed)
        co_return;  // nobody to answer
    const bool no_compress = reply.no_compress || task.no_compress;
    protocol::Message message{std::in_place_type<protocol::Response>,
                              protocol::Response{task.request_id, reply.status,
                                                 std::move(reply.metadata), std::move(reply.body)}};
    for (bool fallback = false;; fallback = true) {
        const std::size_t size = protocol::encoded_size(message);
        // protocol.md §6.2: the limit counts the envelope, not its frame.
        if (protocol::envelope_size(message) <= send_queue_.limits().encode.max_message_size) {
            if (!try_reserve(size)) {
                Waiter waiter(strand_);
                if (co_await reserve(waiter, size))
                    co_return;  // closing: nobody to answer
            }
            const auto ec = enqueue(message, size, no_compress, false);
            if (!ec) {
                task.responded = true;
                config_.metrics->request_served(task.context.method(),
                                                std::get<protocol::Response>(message).status,
                                                SteadyClock::now() - task.started);
                co_return;
            }
            release(size, 0);
            if (fallback) {
                config_.logger.error("{}: cannot encode an error answer: {}", config_.side,
                                     ec.message());
                co_return;
            }
        }
        // protocol.md §6.3: the answer itself is over a limit.
        config_.logger.warn("{}: answer of '{}' exceeds a message limit", config_.side,
                            task.context.method());
        message = protocol::Response{task.request_id,
                                     Status::too_large,
                                     {},
                                     bytes_of("response exceeds a message size limit")};
    }
}

asio::awaitable<void> SessionImpl::serve_notification(Task& task) {
    try {
        co_await (*task.notification_handler)(task.context, std::move(task.body));
    } catch (const std::exception& e) {
        if (!task.context.cancelled()) {
            config_.logger.warn("{}: notification handler '{}' threw: {}", config_.side,
                                task.context.method(), e.what());
        }
    }
    task.done = true;
}

void SessionImpl::task_finished(const std::shared_ptr<Task>& task, std::exception_ptr error) {
    if (error) {
        config_.logger.error("{}: handler '{}' failed: {}", config_.side, task->context.method(),
                             describe(error));
        if (task->request_id != 0 && !task->responded) {
            answer_now(task->request_id, Status::application_error, "handler failed",
                       task->context.method());
        }
    }
    task->done = true;
    if (task->timer)
        task->timer->cancel();
    if (task->request_id != 0)
        requests_.erase(task->request_id);
    if (task->prev != nullptr) {
        task->prev->next = task->next;
    } else {
        tasks_head_ = task->next;
    }
    if (task->next != nullptr)
        task->next->prev = task->prev;
    task->prev = task->next = nullptr;
    --task_count_;
    stats_.in_flight.store(task_count_, std::memory_order_relaxed);
    touch_activity();
    if (task_count_ == 0)
        tasks_idle_.try_send(boost::system::error_code{});
    maybe_finish_drain();
}

// ---------------------------------------------------------------------------------------------
// Calls and notifications

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
    for (std::size_t i = 0; i < inbox_draining_.size(); ++i) {
        const ProducerScope scope(*this, i + 1 < inbox_draining_.size());
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
    if (state_ == State::closing || state_ == State::closed) {
        finish_call(*op, close_reason_ ? close_reason_ : std::error_code(errc::connection_closed),
                    std::nullopt);
        return;
    }
    if (peer_goaway_last_ || peer_ended_) {
        finish_call(*op, {}, Reply::error(Status::shutting_down, "the peer is shutting down"));
        return;
    }
    if (op->deadline && *op->deadline <= SteadyClock::now()) {
        finish_call(*op, {},
                    Reply::error(Status::deadline_exceeded,
                                 "the deadline passed before the call was sent"));
        return;
    }
    std::uint64_t timeout_ms = 0;
    if (op->deadline) {
        // protocol.md §6.2: the remaining budget, rounded up so it never reads as "none".
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(*op->deadline - SteadyClock::now());
        timeout_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(left.count(), 1));
    }

    op->id = ++next_call_id_;
    if (op->no_compress)
        op->metadata.emplace_back(protocol::k_metadata_no_compress,
                                  "1");  // the answer too (protocol.md §6.2, §6.7)
    // Built in place: a Request passed as `const Message&` would be copied into a temporary.
    protocol::Message message{std::in_place_type<protocol::Request>,
                              protocol::Request{op->id, std::move(op->method), timeout_ms,
                                                std::move(op->metadata), std::move(op->body)}};
    const std::size_t size = protocol::encoded_size(message);
    pending_.emplace(op->id, op);
    stats_.pending_calls.store(pending_.size(), std::memory_order_relaxed);
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
        finish_call(*op, ec, std::nullopt);  // also leaves pending_
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
void SessionImpl::finish_call(CallOp& op, std::error_code error, std::optional<Reply> reply) {
    if (op.phase == CallOp::Phase::done)
        return;
    op.phase = CallOp::Phase::done;
    op.timer.reset();
    withdraw(op);
    std::shared_ptr<CallOp> keep;  // op may be owned by the table alone
    if (op.id != 0) {
        const auto it = pending_.find(op.id);
        if (it != pending_.end() && it->second.get() == &op) {
            keep = std::move(it->second);
            pending_.erase(it);
            stats_.pending_calls.store(pending_.size(), std::memory_order_relaxed);
        }
    }
    touch_activity();
    if (reply) {
        config_.metrics->call_completed(op.method, reply->status, SteadyClock::now() - op.started);
        op.deliver(nullptr, std::move(*reply));
    } else {
        op.deliver(std::make_exception_ptr(boost::system::system_error(
                       boost::system::error_code(error), "call '" + op.method + "'")),
                   Reply{});
    }
    if (state_ == State::draining) {
        // Not inline: finish_call runs inside loops over the tables that this may change.
        asio::post(strand_, [self = shared_from_this()] { self->maybe_finish_drain(); });
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
    if (state_ == State::closing || state_ == State::closed || peer_ended_) {
        throw_error(close_reason_ ? close_reason_ : std::error_code(errc::connection_closed),
                    "notify '" + method + "'");
    }
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

// ---------------------------------------------------------------------------------------------
// Keepalive and idle timeout

asio::awaitable<void> SessionImpl::keepalive_loop() {
    while (state_ == State::open || state_ == State::draining) {
        const auto next = keepalive_.next_wake(state_ == State::open);
        if (!next)
            co_return;
        keepalive_timer_.expires_at(*next);
        auto [ec] = co_await keepalive_timer_.async_wait(use_tuple);
        if (ec || state_ == State::closing || state_ == State::closed)
            co_return;
        const auto due = keepalive_.on_timer(SteadyClock::now(), state_ == State::open,
                                             task_count_ != 0 || !pending_.empty());
        if (due.peer_silent) {
            config_.logger.warn("{}: {} sent nothing for {} ms; closing", config_.side,
                                peer_->fingerprint.short_hex(),
                                2 * config_.options.keepalive_interval.count());
            do_abort(to_std(asio::error::timed_out));
            co_return;
        }
        if (due.ping)
            send_control(protocol::Ping{*due.ping});
        if (due.idle) {
            config_.logger.info("{}: session with {} idle; closing", config_.side,
                                peer_->fingerprint.short_hex());
            begin_drain(config_.options.drain_timeout);
        }
        flush();  // the ping, or the goaway of an idle drain
    }
}

}  // namespace detail

// -------------------------------------------------------------------------------------------------
// Public handles

bool Session::is_open() const noexcept {
    return impl_ != nullptr && impl_->is_open();
}

const PeerInfo& Session::peer() const {
    if (!impl_)
        throw std::logic_error("sdmp::Session: empty handle");
    return *impl_->peer();
}

boost::asio::awaitable<Reply> Session::call(std::string method, Bytes body,
                                            CallOptions options) const {
    if (!impl_)
        throw std::logic_error("sdmp::Session: empty handle");
    return detail::SessionImpl::call(impl_, std::move(method), std::move(body), std::move(options));
}

boost::asio::awaitable<Reply> Session::call(std::string method, Bytes body) const {
    return call(std::move(method), std::move(body), CallOptions{});
}

boost::asio::awaitable<void> Session::notify(std::string method, Bytes body,
                                             CallOptions options) const {
    if (!impl_)
        throw std::logic_error("sdmp::Session: empty handle");
    return detail::SessionImpl::notify(impl_, std::move(method), std::move(body),
                                       std::move(options));
}

boost::asio::awaitable<void> Session::notify(std::string method, Bytes body) const {
    return notify(std::move(method), std::move(body), CallOptions{});
}

void Session::close() const {
    if (impl_)
        impl_->close(impl_->options().drain_timeout);
}

void Session::close(std::chrono::milliseconds drain) const {
    if (impl_)
        impl_->close(drain);
}

void Session::abort() const {
    if (impl_)
        impl_->abort(errc::connection_closed);
}

boost::asio::awaitable<std::error_code> Session::wait_closed() const {
    if (!impl_)
        throw std::logic_error("sdmp::Session: empty handle");
    return detail::SessionImpl::wait_closed(impl_);
}

SessionStats Session::stats() const {
    return impl_ ? impl_->stats() : SessionStats{};
}

Session Context::session() const {
    return session_->handle();
}

boost::asio::awaitable<Reply> Context::call(const Session& target, std::string method,
                                            Bytes body) const {
    return call(target, std::move(method), std::move(body), CallOptions{});
}

boost::asio::awaitable<Reply> Context::call(const Session& target, std::string method, Bytes body,
                                            CallOptions options) const {
    // The earliest deadline wins when the call starts (CallInitiation), so inheriting never
    // extends a budget.
    options.parent = this;
    return target.call(std::move(method), std::move(body), std::move(options));
}

}  // namespace sdmp
