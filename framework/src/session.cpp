// One established session (protocol.md §5, §6). Every function of SessionImpl runs on the
// session's strand unless its comment says otherwise; see detail/session_impl.hpp.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "detail/session_support.hpp"
#include "sdmp/error.hpp"

namespace sdmp {
namespace detail {

namespace {

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

// protocol.md §6.2: no envelope is over the protocol's limit, and one must fit in a record with
// its varint frame (§5.1, §6.1).
SessionConfig clamped(SessionConfig config) {
    SessionOptions& o = config.options;
    const std::size_t payload_cap = o.record_limits.max_payload_size;
    const std::size_t protocol_cap = protocol::MessageLimits{}.max_message_size;
    o.max_message_size = std::min({o.max_message_size, protocol_cap, payload_cap - 10});
    o.max_record_payload = std::clamp<std::size_t>(o.max_record_payload, 1, payload_cap);
    return config;
}

SendQueue::Limits queue_limits(const SessionOptions& o) {
    SendQueue::Limits limits;
    limits.data_bytes = o.send_queue_bytes;
    limits.control_bytes = o.max_control_bytes;
    limits.max_record_payload = o.max_record_payload;
    limits.encode.max_message_size = o.max_message_size;
    return limits;
}

// Session ids: 0 is the empty handle's, so the first session is 1. Relaxed is enough: only
// uniqueness matters, not order between threads.
std::atomic<std::uint64_t> g_next_session_id{1};

}  // namespace

SessionHandle::SessionHandle(const std::shared_ptr<SessionImpl>& impl, bool owning)
    : strong_(owning ? impl : nullptr),
      weak_(impl),
      owning_(owning),
      id_(impl->id()),
      peer_(impl->peer()) {}

SessionHandle::~SessionHandle() {
    if (owning_)
        strong_->close(strong_->options().drain_timeout);
}

void SessionHandle::record_end(std::error_code reason) {
    const std::lock_guard lock(end_mutex_);
    end_reason_ = reason;
}

std::error_code SessionHandle::end_reason() const {
    const std::lock_guard lock(end_mutex_);
    return end_reason_;
}

SessionImpl::SessionImpl(tcp::socket socket, protocol::Established established,
                         SessionConfig config)
    : id_(g_next_session_id.fetch_add(1, std::memory_order_relaxed)),
      strand_(socket.get_executor()),
      socket_(std::move(socket)),
      config_(clamped(std::move(config))),
      sealer_(*config_.provider, established.suite.aead, established.keys.send_key,
              config_.options.record_limits),
      opener_(*config_.provider, established.suite.aead, established.keys.receive_key,
              config_.options.record_limits),
      send_queue_(queue_limits(config_.options)),
      writer_done_wake_(strand_, 1),
      requests_({config_.options.max_in_flight, config_.options.max_message_size}, &table_pool_),
      tasks_idle_(strand_, 1),
      pulled_wake_(strand_, 1),
      drain_timer_(strand_),
      linger_timer_(strand_),
      keepalive_timer_(strand_),
      closed_event_(strand_, 1) {
    // Everything within the protocol's limit decodes; the local limit is applied per message,
    // so that an oversized request gets `too_large` instead of a closed connection.
    decode_limits_.max_message_size = protocol::MessageLimits{}.max_message_size;

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

SessionImpl::~SessionImpl() {
    // A server session's handles outlive it (session.hpp, "Lifetime"): they keep its reason.
    if (const std::shared_ptr<SessionHandle> block = handle_block_.lock()) {
        const std::lock_guard lock(close_reason_mutex_);
        block->record_end(published_close_reason_);
    }
}

Session SessionImpl::handle() {
    const std::lock_guard lock(handle_mutex_);
    std::shared_ptr<SessionHandle> block = handle_block_.lock();
    if (!block) {
        block = std::make_shared<SessionHandle>(shared_from_this(), config_.close_on_last_handle);
        handle_block_ = block;
    }
    return Session(std::move(block));
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
            self->do_abort(framework_errc::connection_closed);
        }
        self->writer_done_ = true;
        self->writer_done_wake_.try_send(boost::system::error_code{});
        // Our side has finished sending; give the peer close_linger to finish too.
        if (!self->lifecycle_.aborted())
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
    apply(lifecycle_.read_ended(read_error == asio::error::eof, opener_.buffered() != 0,
                                to_std(read_error)));
    if (const auto reason = lifecycle_.reason();
        reason && reason != framework_errc::connection_closed) {
        config_.logger.warn("{}: session with {} ends: {}", config_.side,
                            peer_->fingerprint.short_hex(), reason.message());
    }

    // Every handler finishes (they were cancelled), then the writer.
    while (!requests_.empty()) {
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
    lifecycle_.finished();
    mark_not_open();
    fail_pending(lifecycle_.reason_or_closed());
    fail_waiters(framework_errc::connection_closed);
    {
        const std::lock_guard lock(close_reason_mutex_);
        published_close_reason_ = lifecycle_.reason();
    }
    end_notifications();
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
    drain_for_ = drain;
    apply(lifecycle_.close());
}

// In the order SessionLifecycle::Actions declares them.
void SessionImpl::apply(const SessionLifecycle::Actions& actions) {
    if (lifecycle_.state() != SessionLifecycle::State::open || lifecycle_.peer_ended())
        mark_not_open();
    if (actions.cancel_tasks)
        cancel_all_tasks(*actions.cancel_tasks);
    if (actions.fail_waiters)
        fail_waiters(actions.fail_waiters);
    if (actions.fail_calls)
        fail_pending(actions.fail_calls);
    if (actions.send_goaway)
        send_control(protocol::GoAway{requests_.highest_request(), "closing"});
    if (actions.arm_drain_timer) {
        drain_timer_.expires_after(drain_for_);
        drain_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec || self->lifecycle_.state() != SessionLifecycle::State::draining)
                return;
            self->config_.logger.info("{}: drain deadline passed; cancelling what is left",
                                      self->config_.side);
            self->apply(self->lifecycle_.drain_deadline());
        });
    }
    if (actions.stop_drain_timer)
        drain_timer_.cancel();
    if (actions.close_socket) {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }
    if (actions.finish_writer) {
        writer_finish_ = true;
        flush_later();  // a flush point of its own, once this step is complete
    }
    if (actions.start_linger)
        start_linger();
    check_drained();
}

void SessionImpl::check_drained() {
    if (lifecycle_.state() == SessionLifecycle::State::draining && requests_.empty() &&
        calls_.empty()) {
        apply(lifecycle_.drained());
    }
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

void SessionImpl::fail_waiters(std::error_code reason) {
    send_queue_.fail_waiters(reason);
    update_queue_stats();
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
    s.notifications_dropped = stats_.notifications_dropped.load(std::memory_order_relaxed);
    s.open = is_open();
    return s;
}

// ---------------------------------------------------------------------------------------------
// Keepalive and idle timeout

asio::awaitable<void> SessionImpl::keepalive_loop() {
    while (lifecycle_.sending()) {
        const bool open = lifecycle_.state() == SessionLifecycle::State::open;
        const auto next = keepalive_.next_wake(open);
        if (!next)
            co_return;
        keepalive_timer_.expires_at(*next);
        auto [ec] = co_await keepalive_timer_.async_wait(use_tuple);
        if (ec || !lifecycle_.sending())
            co_return;
        const auto due = keepalive_.on_timer(SteadyClock::now(),
                                             lifecycle_.state() == SessionLifecycle::State::open,
                                             !requests_.empty() || !calls_.empty());
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

std::shared_ptr<detail::SessionImpl> Session::lock() const noexcept {
    return handle_ ? handle_->lock() : nullptr;
}

std::shared_ptr<detail::SessionImpl> Session::checked_impl() const {
    if (!handle_)
        throw std::logic_error("sdmp::Session: empty handle");
    return handle_->lock();
}

namespace {

// What a handle of a released server session throws (session.hpp, "Lifetime").
[[noreturn]] void throw_released(const char* what) {
    throw boost::system::system_error(framework_errc::connection_closed, what);
}

}  // namespace

std::uint64_t Session::id() const noexcept {
    return handle_ ? handle_->id() : 0;
}

bool Session::is_open() const noexcept {
    const auto impl = lock();
    return impl != nullptr && impl->is_open();
}

const PeerInfo& Session::peer() const {
    if (!handle_)
        throw std::logic_error("sdmp::Session: empty handle");
    return handle_->peer();
}

boost::asio::awaitable<Reply> Session::call(std::string method, Bytes body,
                                            CallOptions options) const {
    auto impl = checked_impl();
    if (!impl)
        throw_released("call");
    return detail::SessionImpl::call(std::move(impl), std::move(method), std::move(body),
                                     std::move(options));
}

void Session::initiate_call(std::shared_ptr<detail::SessionImpl> impl, std::string method,
                            Bytes body, CallOptions options, CallHandler handler) {
    if (!impl) {
        // Released with the server's io_context: no executor is left to complete on, and the
        // handler's own may run it inline, inside this initiation.
        throw_released("async_call");
    }
    detail::SessionImpl::async_call(std::move(impl), std::move(method), std::move(body),
                                    std::move(options), std::move(handler));
}

boost::asio::awaitable<Reply> Session::call(std::string method, Bytes body) const {
    return call(std::move(method), std::move(body), CallOptions{});
}

boost::asio::awaitable<void> Session::notify(std::string method, Bytes body,
                                             CallOptions options) const {
    auto impl = checked_impl();
    if (!impl)
        throw_released("notify");
    return detail::SessionImpl::notify(std::move(impl), std::move(method), std::move(body),
                                       std::move(options));
}

boost::asio::awaitable<void> Session::notify(std::string method, Bytes body) const {
    return notify(std::move(method), std::move(body), CallOptions{});
}

void Session::close() const {
    if (const auto impl = lock())
        impl->close(impl->options().drain_timeout);
}

void Session::close(std::chrono::milliseconds drain) const {
    if (const auto impl = lock())
        impl->close(drain);
}

void Session::abort() const {
    if (const auto impl = lock())
        impl->abort(framework_errc::connection_closed);
}

namespace {

boost::asio::awaitable<std::error_code> released_reason(std::error_code reason) {
    co_return reason;
}

boost::asio::awaitable<std::optional<IncomingNotification>> no_notification() {
    co_return std::nullopt;
}

}  // namespace

boost::asio::awaitable<std::error_code> Session::wait_closed() const {
    auto impl = checked_impl();
    if (!impl)
        return released_reason(handle_->end_reason());
    return detail::SessionImpl::wait_closed(std::move(impl));
}

boost::asio::awaitable<std::optional<IncomingNotification>> Session::next_notification() const {
    auto impl = checked_impl();
    if (!impl)
        return no_notification();  // released, so closed, and nothing left buffered
    if (impl->options().notification_buffer_bytes == 0) {
        throw std::logic_error(
            "sdmp::Session::next_notification: the session has no notification buffer (set "
            "SessionOptions::notification_buffer_bytes)");
    }
    return detail::SessionImpl::next_notification(std::move(impl));
}

SessionStats Session::stats() const {
    const auto impl = lock();
    return impl ? impl->stats() : SessionStats{};
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
    options.inherit(*this);
    return target.call(std::move(method), std::move(body), std::move(options));
}

}  // namespace sdmp
