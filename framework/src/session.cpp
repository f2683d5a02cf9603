// One established session (protocol.md §5, §6). Every function of SessionImpl runs on the
// session's strand unless its comment says otherwise; see detail/session_impl.hpp.
#include <algorithm>
#include <limits>
#include <utility>
#include <variant>
#include <vector>

#include "detail/session_impl.hpp"
#include "sdmp/error.hpp"

namespace sdmp {
namespace detail {

namespace {

constexpr std::size_t k_write_batch = std::size_t{1} << 20;  // record bytes per socket write
constexpr std::size_t k_min_read = std::size_t{16} << 10;
constexpr std::size_t k_max_read = std::size_t{1} << 20;
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

SessionImpl::SessionImpl(tcp::socket socket, protocol::Established established,
                         SessionConfig config)
    : strand_(socket.get_executor()),
      socket_(std::move(socket)),
      config_(std::move(config)),
      sealer_(*config_.provider, established.suite.aead, established.keys.send_key,
              config_.options.record_limits),
      opener_(*config_.provider, established.suite.aead, established.keys.receive_key,
              config_.options.record_limits),
      writer_wake_(strand_, 1),
      writer_done_wake_(strand_, 1),
      tasks_idle_(strand_, 1),
      drain_timer_(strand_),
      linger_timer_(strand_),
      keepalive_timer_(strand_),
      closed_event_(strand_, 1) {
    SessionOptions& o = config_.options;
    // A message must fit in one record with its varint frame (protocol.md §5.1, §6.1).
    const std::size_t payload_cap = o.record_limits.max_payload_size;
    o.max_message_size = std::min(o.max_message_size, payload_cap - 10);
    o.max_record_payload = std::clamp<std::size_t>(o.max_record_payload, 1, payload_cap);
    encode_limits_.max_message_size = o.max_message_size;
    // Anything up to the record payload limit decodes; the application limit is applied per
    // message so that an oversized request gets `too_large` instead of a closed connection.
    decode_limits_.max_message_size = payload_cap;

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

    // The first records may have arrived with the peer's connection message.
    if (!established.leftover.empty())
        opener_.feed(established.leftover);
    last_receive_ = last_activity_ = SteadyClock::now();
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
    const SessionOptions& o = config_.options;
    if (o.keepalive_interval.count() > 0 || o.idle_timeout.count() > 0) {
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
        if (read_error == asio::error::eof) {
            // The peer finished sending. After its goaway that is a graceful close; without
            // one the connection ended under our calls.
            if (!peer_goaway_last_ && state_ == State::open && !close_reason_) {
                close_reason_ = errc::connection_closed;
            }
            cancel_all_tasks(Status::cancelled);
            fail_pending(errc::connection_closed);
            begin_closing();
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
    while (!tasks_.empty()) {
        co_await tasks_idle_.async_receive(use_tuple);
    }
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
    asio::post(strand_, [self = shared_from_this(), drain] { self->begin_drain(drain); });
}

void SessionImpl::abort(std::error_code reason) {
    asio::post(strand_, [self = shared_from_this(), reason] { self->do_abort(reason); });
}

void SessionImpl::begin_drain(std::chrono::milliseconds drain) {
    if (state_ != State::open)
        return;
    state_ = State::draining;
    mark_not_open();
    // protocol.md §6.2: requests up to the highest we have seen are still answered.
    send_control(protocol::GoAway{highest_peer_request_, "closing"});
    drain_timer_.expires_after(drain);
    drain_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec || self->state_ != State::draining)
            return;
        self->config_.logger.info("{}: drain deadline passed; cancelling what is left",
                                  self->config_.side);
        self->cancel_all_tasks(Status::shutting_down);
        self->fail_pending(errc::session_shutting_down);
        // Answers still waiting for queue space (a peer that does not read) give up too.
        self->fail_waiters(errc::session_shutting_down);
        self->maybe_finish_drain();
    });
    maybe_finish_drain();
}

void SessionImpl::maybe_finish_drain() {
    if (state_ == State::draining && tasks_.empty() && pending_.empty())
        begin_closing();
}

void SessionImpl::begin_closing() {
    if (state_ == State::closing || state_ == State::closed)
        return;
    state_ = State::closing;
    mark_not_open();
    drain_timer_.cancel();
    fail_pending(errc::connection_closed);
    fail_waiters(errc::connection_closed);
    writer_finish_ = true;
    wake_writer();
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
    wake_writer();
}

void SessionImpl::fail_pending(std::error_code reason) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        CallState& call = *it->second;
        if (peer_goaway_last_ && it->first > *peer_goaway_last_) {
            // Above the peer's goaway: certainly not handled, safe to retry elsewhere.
            call.response =
                protocol::Response{it->first,
                                   Status::shutting_down,
                                   {},
                                   bytes_of("the peer is shutting down; the call was not handled")};
        } else {
            call.failed = reason;
        }
        call.notify();
        it = pending_.erase(it);
    }
    stats_.pending_calls.store(0, std::memory_order_relaxed);
}

void SessionImpl::fail_waiters(std::error_code reason) {
    for (Waiter* waiter : space_waiters_) {
        waiter->queued = false;
        waiter->failed = reason;
        waiter->notify();
    }
    space_waiters_.clear();
    update_queue_stats();
}

void SessionImpl::cancel_all_tasks(Status reason) {
    // cancel_task never completes a task inline, so iterating is safe.
    for (auto& [serial, task] : tasks_)
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

// ---------------------------------------------------------------------------------------------
// Send queue

bool SessionImpl::fits(std::size_t size) const noexcept {
    // A message larger than the whole bound still goes, alone, when the queue is empty.
    return data_bytes_ == 0 || data_bytes_ + size <= config_.options.send_queue_bytes;
}

void SessionImpl::update_queue_stats() {
    stats_.queued_bytes.store(data_bytes_, std::memory_order_relaxed);
    if (data_bytes_ > stats_.max_queued_bytes.load(std::memory_order_relaxed)) {
        stats_.max_queued_bytes.store(data_bytes_, std::memory_order_relaxed);
    }
    stats_.control_bytes.store(control_bytes_, std::memory_order_relaxed);
    stats_.blocked_senders.store(space_waiters_.size(), std::memory_order_relaxed);
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

asio::awaitable<std::error_code> SessionImpl::reserve(Waiter& waiter, std::size_t size) {
    if (state_ == State::closing || state_ == State::closed) {
        co_return std::error_code(errc::connection_closed);
    }
    if (space_waiters_.empty() && fits(size)) {
        data_bytes_ += size;
        update_queue_stats();
        co_return std::error_code{};
    }
    waiter.need = size;
    waiter.queued = true;
    space_waiters_.push_back(&waiter);
    stats_.send_waits.fetch_add(1, std::memory_order_relaxed);
    config_.metrics->send_queue_wait();
    update_queue_stats();

    bool woke = false;
    try {
        woke = co_await wait_until(waiter, [&] { return waiter.granted || waiter.failed; });
    } catch (const boost::system::system_error&) {
        withdraw(waiter);  // cancelled before the wait started
        throw;
    }
    if (woke && waiter.granted) {
        waiter.granted = false;  // handed over to the caller's push_data
        co_return std::error_code{};
    }
    withdraw(waiter);
    co_return woke ? waiter.failed : to_std(asio::error::operation_aborted);
}

void SessionImpl::withdraw(Waiter& waiter) {
    if (waiter.queued) {
        waiter.queued = false;
        const auto it = std::find(space_waiters_.begin(), space_waiters_.end(), &waiter);
        if (it != space_waiters_.end())
            space_waiters_.erase(it);
        release(0, 0);  // it may have been blocking the head of the line
    } else if (waiter.granted) {
        waiter.granted = false;
        release(waiter.need, 0);
    }
}

void SessionImpl::release(std::size_t data_bytes, std::size_t control_bytes) {
    data_bytes_ -= std::min(data_bytes, data_bytes_);
    control_bytes_ -= std::min(control_bytes, control_bytes_);
    // First come, first served: a big message at the head is not overtaken by small ones.
    while (!space_waiters_.empty()) {
        Waiter* waiter = space_waiters_.front();
        if (!fits(waiter->need))
            break;
        space_waiters_.pop_front();
        waiter->queued = false;
        waiter->granted = true;
        data_bytes_ += waiter->need;
        waiter->notify();
    }
    update_queue_stats();
}

void SessionImpl::push_data(Bytes bytes, bool no_compress) {
    // The space was reserved (reserve()) by the caller.
    queue_.push_back(Outgoing{std::move(bytes), no_compress, false});
    touch_activity();
    wake_writer();
}

void SessionImpl::send_control(const protocol::Message& message) {
    if (writer_done_ || aborted_)
        return;
    Bytes encoded;
    if (const auto ec = protocol::encode_message(message, encoded, encode_limits_)) {
        config_.logger.error("{}: cannot encode a control message: {}", config_.side, ec.message());
        return;
    }
    if (control_bytes_ + encoded.size() > config_.options.max_control_bytes) {
        // The peer keeps sending requests or pings while not reading our answers.
        config_.logger.warn("{}: {} does not read its answers; closing", config_.side,
                            peer_->fingerprint.short_hex());
        do_abort(errc::queue_full);
        return;
    }
    control_bytes_ += encoded.size();
    queue_.push_back(Outgoing{std::move(encoded), false, true});
    update_queue_stats();
    wake_writer();
}

void SessionImpl::wake_writer() {
    writer_wake_.try_send(boost::system::error_code{});
}

int SessionImpl::compression_level(std::size_t payload_size, bool no_compress) const noexcept {
    // Level 0 (stored blocks) is a plain copy; level 1 costs more than the AEAD on small
    // records, so it is only used where it can pay (protocol.md §5.1, DESIGN measurements).
    if (no_compress)
        return 0;
    switch (config_.options.compression) {
        case CompressionPolicy::never:
            return 0;
        case CompressionPolicy::always:
            return config_.options.compression_level;
        case CompressionPolicy::automatic:
            return payload_size < config_.options.compress_threshold
                       ? 0
                       : config_.options.compression_level;
    }
    return 0;
}

// The writer: everything queued goes out in as few records (and writes) as possible. One
// record carries many messages up to max_record_payload; a no_compress message goes alone at
// level 0. Each record is compressed on its own (RecordSealer, protocol.md §5.1).
asio::awaitable<void> SessionImpl::write_loop() {
    Bytes wire;
    Bytes payload;
    const std::size_t cap = config_.options.max_record_payload;
    for (;;) {
        if (aborted_)
            break;
        if (queue_.empty()) {
            if (writer_finish_)
                break;
            auto [ec] = co_await writer_wake_.async_receive(use_tuple);
            if (ec)
                break;
            continue;
        }
        wire.clear();
        std::size_t batch_data = 0;
        std::size_t batch_control = 0;
        std::size_t records = 0;
        std::size_t messages = 0;
        auto take = [&](const Outgoing& item) {
            (item.control ? batch_control : batch_data) += item.bytes.size();
            ++messages;
        };
        std::error_code seal_error;
        while (!queue_.empty() && wire.size() < k_write_batch && !seal_error) {
            Outgoing first = std::move(queue_.front());
            queue_.pop_front();
            take(first);
            const bool alone = first.no_compress || queue_.empty() || queue_.front().no_compress ||
                               first.bytes.size() + queue_.front().bytes.size() > cap;
            if (alone) {
                seal_error = sealer_.seal(
                    first.bytes, compression_level(first.bytes.size(), first.no_compress), wire);
            } else {
                payload.assign(first.bytes.begin(), first.bytes.end());
                while (!queue_.empty() && !queue_.front().no_compress &&
                       payload.size() + queue_.front().bytes.size() <= cap) {
                    const Outgoing& next = queue_.front();
                    payload.insert(payload.end(), next.bytes.begin(), next.bytes.end());
                    take(next);
                    queue_.pop_front();
                }
                seal_error = sealer_.seal(payload, compression_level(payload.size(), false), wire);
            }
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
        auto [ec, written] = co_await asio::async_write(socket_, asio::buffer(wire), use_tuple);
        release(batch_data, batch_control);
        if (ec) {
            do_abort(ec);
            break;
        }
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
    Bytes payload;
    std::vector<protocol::Message> messages;
    for (;;) {
        for (;;) {
            std::error_code ec = opener_.next(payload);
            if (ec == errc::need_more_data)
                break;
            // protocol.md §5.6: any record or decode error closes the connection, no `nope`.
            if (ec)
                co_return boost::system::error_code(ec);
            config_.metrics->bytes_received(0, 1);
            messages.clear();
            ec = protocol::decode_messages(payload, messages, decode_limits_);
            if (ec)
                co_return boost::system::error_code(ec);
            config_.metrics->messages_received(messages.size());
            for (protocol::Message& message : messages) {
                dispatch(std::move(message));
                if (aborted_)
                    co_return boost::system::error_code(close_reason_);
            }
        }
        const std::size_t want = std::clamp(opener_.bytes_wanted(), k_min_read, k_max_read);
        const MutableByteView space = opener_.prepare(want);
        auto [ec, n] =
            co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), use_tuple);
        if (ec)
            co_return ec;
        opener_.commit(n);
        last_receive_ = SteadyClock::now();
        ping_outstanding_ = false;
        config_.metrics->bytes_received(n, 0);
    }
}

void SessionImpl::dispatch(protocol::Message&& message) {
    const std::size_t size = protocol::encoded_size(message);
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
                   [&](protocol::Ping& m) { send_control(protocol::Pong{m.opaque}); },
                   [&](protocol::Pong&) {},
                   [&](protocol::GoAway& m) { on_goaway(m); },
               },
               message);
}

void SessionImpl::answer_now(std::uint64_t id, Status status, std::string_view message,
                             std::string_view metric_method) {
    send_control(protocol::Response{id, status, {}, bytes_of(message)});
    config_.metrics->request_served(metric_method, status, std::chrono::nanoseconds{0});
}

void SessionImpl::on_request(protocol::Request&& request, std::size_t size) {
    touch_activity();
    highest_peer_request_ = std::max(highest_peer_request_, request.id);
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
    if (tasks_.size() >= config_.options.max_in_flight) {
        answer_now(request.id, Status::overloaded, "too many requests in flight", metric);
        return;
    }
    std::optional<SteadyClock::time_point> deadline;
    if (request.timeout_ms > 0) {
        // protocol.md §6.2: a relative budget, so the clocks need not agree.
        deadline = SteadyClock::now() +
                   std::chrono::milliseconds(std::min(request.timeout_ms, k_max_timeout_ms));
    }
    const std::uint64_t id = request.id;
    auto task = make_task(id, std::move(request.method), std::move(request.metadata), deadline);
    start_deadline(task);
    asio::co_spawn(
        strand_, serve_request(task, handler, std::move(request.body)),
        asio::bind_cancellation_slot(task->signal.slot(),
                                     [self = shared_from_this(), task](std::exception_ptr error) {
                                         self->task_finished(task, error);
                                     }));
}

void SessionImpl::on_response(protocol::Response&& response, std::size_t size) {
    touch_activity();
    const auto it = pending_.find(response.id);
    if (it == pending_.end())
        return;  // the call timed out or was cancelled meanwhile
    CallState& call = *it->second;
    pending_.erase(it);
    stats_.pending_calls.store(pending_.size(), std::memory_order_relaxed);
    if (size > config_.options.max_message_size) {
        response.status = Status::too_large;
        response.metadata.clear();
        response.body = bytes_of("response exceeds max_message_size");
    }
    call.response = std::move(response);
    call.notify();
}

void SessionImpl::on_notification(protocol::Notification&& notification) {
    touch_activity();
    config_.metrics->notification_received();
    const NotificationHandler* handler =
        config_.router ? config_.router->find_notification(notification.method) : nullptr;
    if (handler == nullptr || state_ != State::open ||
        tasks_.size() >= config_.options.max_in_flight) {
        config_.metrics->notification_dropped();
        config_.logger.debug("{}: notification '{}' dropped", config_.side, notification.method);
        return;
    }
    auto task = make_task(0, std::move(notification.method), std::move(notification.metadata),
                          std::nullopt);
    asio::co_spawn(
        strand_, serve_notification(task, handler, std::move(notification.body)),
        asio::bind_cancellation_slot(task->signal.slot(),
                                     [self = shared_from_this(), task](std::exception_ptr error) {
                                         self->task_finished(task, error);
                                     }));
}

void SessionImpl::on_cancel(std::uint64_t id) {
    const auto it = requests_.find(id);
    if (it != requests_.end())
        cancel_task(*it->second, Status::cancelled);
}

void SessionImpl::on_goaway(const protocol::GoAway& goaway) {
    peer_goaway_last_ = peer_goaway_last_ ? std::min(*peer_goaway_last_, goaway.last_request_id)
                                          : goaway.last_request_id;
    mark_not_open();
    config_.logger.info("{}: {} sent goaway (last request {})", config_.side,
                        peer_->fingerprint.short_hex(), goaway.last_request_id);
    // Calls above the peer's last id will not be handled (protocol.md §6.2).
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->first > *peer_goaway_last_) {
            it->second->response =
                protocol::Response{it->first,
                                   Status::shutting_down,
                                   {},
                                   bytes_of("the peer is shutting down; the call was not handled")};
            it->second->notify();
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
    stats_.pending_calls.store(pending_.size(), std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Handler tasks

std::shared_ptr<SessionImpl::Task> SessionImpl::make_task(
    std::uint64_t request_id, std::string method, Metadata metadata,
    std::optional<SteadyClock::time_point> deadline) {
    auto task =
        std::make_shared<Task>(strand_, Context(shared_from_this(), peer_, request_id,
                                                std::move(method), std::move(metadata), deadline));
    task->serial = ++next_task_serial_;
    task->request_id = request_id;
    task->started = SteadyClock::now();
    tasks_.emplace(task->serial, task);
    if (request_id != 0)
        requests_.emplace(request_id, task.get());
    stats_.in_flight.store(tasks_.size(), std::memory_order_relaxed);
    return task;
}

void SessionImpl::start_deadline(const std::shared_ptr<Task>& task) {
    const auto deadline = task->context.deadline();
    if (!deadline)
        return;
    task->timer.expires_at(*deadline);
    task->timer.async_wait([self = shared_from_this(),
                            weak = std::weak_ptr<Task>(task)](boost::system::error_code ec) {
        if (ec)
            return;
        if (const auto t = weak.lock())
            self->cancel_task(*t, Status::deadline_exceeded);
    });
}

void SessionImpl::cancel_task(Task& task, Status reason) {
    if (task.done || task.context.cancel_reason_ != Status::ok)
        return;
    task.context.cancel_reason_ = reason;
    // The handler's coroutine runs with this signal's slot bound: whatever it awaits now is
    // cancelled (and later awaits throw operation_aborted).
    task.signal.emit(asio::cancellation_type::terminal);
}

asio::awaitable<void> SessionImpl::serve_request(std::shared_ptr<Task> task, const Handler* handler,
                                                 Bytes body) {
    Reply reply;
    try {
        reply = co_await (*handler)(task->context, std::move(body));
    } catch (const StatusError& e) {
        reply = Reply::error(e.status(), e.what());
    } catch (const std::exception& e) {
        if (task->context.cancelled()) {
            reply = Reply::error(task->context.cancel_reason(),
                                 cancel_message(task->context.cancel_reason()));
        } else {
            config_.logger.debug("{}: handler '{}' threw: {}", config_.side, task->context.method(),
                                 e.what());
            reply = Reply::error(Status::application_error, e.what());
        }
    }
    task->done = true;
    task->timer.cancel();
    // The handler's cancellation must not also cancel sending its answer.
    co_await asio::this_coro::reset_cancellation_state();
    co_await send_response(*task, std::move(reply));
}

asio::awaitable<void> SessionImpl::send_response(Task& task, Reply reply) {
    protocol::Response response{task.request_id, reply.status, std::move(reply.metadata),
                                std::move(reply.body)};
    Bytes encoded;
    if (protocol::encode_message(response, encoded, encode_limits_)) {
        // protocol.md §6.3: the answer itself is over a limit.
        config_.logger.warn("{}: answer of '{}' exceeds a message limit", config_.side,
                            task.context.method());
        response = protocol::Response{task.request_id,
                                      Status::too_large,
                                      {},
                                      bytes_of("response exceeds a message size limit")};
        encoded.clear();
        if (const auto ec = protocol::encode_message(response, encoded, encode_limits_)) {
            config_.logger.error("{}: cannot encode an error answer: {}", config_.side,
                                 ec.message());
            co_return;
        }
    }
    Waiter waiter(strand_);
    if (co_await reserve(waiter, encoded.size()))
        co_return;  // closing: nobody to answer
    push_data(std::move(encoded), false);
    task.responded = true;
    config_.metrics->request_served(task.context.method(), response.status,
                                    SteadyClock::now() - task.started);
}

asio::awaitable<void> SessionImpl::serve_notification(std::shared_ptr<Task> task,
                                                      const NotificationHandler* handler,
                                                      Bytes body) {
    try {
        co_await (*handler)(task->context, std::move(body));
    } catch (const std::exception& e) {
        if (!task->context.cancelled()) {
            config_.logger.warn("{}: notification handler '{}' threw: {}", config_.side,
                                task->context.method(), e.what());
        }
    }
    task->done = true;
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
    task->timer.cancel();
    if (task->request_id != 0)
        requests_.erase(task->request_id);
    tasks_.erase(task->serial);
    stats_.in_flight.store(tasks_.size(), std::memory_order_relaxed);
    touch_activity();
    if (tasks_.empty())
        tasks_idle_.try_send(boost::system::error_code{});
    maybe_finish_drain();
}

// ---------------------------------------------------------------------------------------------
// Calls and notifications

asio::awaitable<Reply> SessionImpl::call(std::shared_ptr<SessionImpl> self, std::string method,
                                         Bytes body, CallOptions options) {
    const Executor executor = co_await asio::this_coro::executor;
    if (executor == self->strand_) {
        co_return co_await self->call_on_strand(std::move(method), std::move(body),
                                                std::move(options));
    }
    // Cancellation of the awaiting coroutine reaches the call through co_spawn.
    co_return co_await asio::co_spawn(
        self->strand_, self->call_on_strand(std::move(method), std::move(body), std::move(options)),
        asio::use_awaitable);
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

asio::awaitable<Reply> SessionImpl::call_on_strand(std::string method, Bytes body,
                                                   CallOptions options) {
    const auto started = SteadyClock::now();
    std::optional<SteadyClock::time_point> deadline;
    const auto timeout =
        options.timeout.count() > 0 ? options.timeout : config_.options.default_call_timeout;
    if (timeout.count() > 0)
        deadline = started + timeout;
    auto earliest = [&](SteadyClock::time_point t) {
        if (!deadline || t < *deadline)
            deadline = t;
    };
    if (options.deadline)
        earliest(*options.deadline);
    if (options.parent != nullptr) {
        if (const auto inherited = options.parent->deadline())
            earliest(*inherited);
    }
    auto finish = [&](Reply reply) {
        config_.metrics->call_completed(method, reply.status, SteadyClock::now() - started);
        return reply;
    };

    if (state_ == State::closing || state_ == State::closed) {
        throw_error(close_reason_ ? close_reason_ : std::error_code(errc::connection_closed),
                    "call '" + method + "'");
    }
    if (peer_goaway_last_) {
        co_return finish(Reply::error(Status::shutting_down, "the peer is shutting down"));
    }
    if (deadline && *deadline <= started) {
        co_return finish(Reply::error(Status::deadline_exceeded,
                                      "the deadline passed before the call was sent"));
    }
    std::uint64_t timeout_ms = 0;
    if (deadline) {
        // protocol.md §6.2: the remaining budget, rounded up so it never reads as "none".
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - started);
        timeout_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(left.count(), 1));
    }

    const std::uint64_t id = ++next_call_id_;
    Bytes encoded;
    {
        const protocol::Request request{id, method, timeout_ms, std::move(options.metadata),
                                        std::move(body)};
        if (const auto ec = protocol::encode_message(request, encoded, encode_limits_)) {
            throw_error(ec, "call '" + method + "': request exceeds a message limit");
        }
    }

    CallState call(strand_);
    pending_.emplace(id, &call);
    stats_.pending_calls.store(pending_.size(), std::memory_order_relaxed);
    struct Cleanup {
        SessionImpl* self;
        CallState* call;
        std::uint64_t id;
        ~Cleanup() {
            call->timer.cancel();
            self->withdraw(*call);
            if (self->pending_.erase(id) != 0) {
                self->stats_.pending_calls.store(self->pending_.size(), std::memory_order_relaxed);
            }
            self->maybe_finish_drain();
        }
    } cleanup{this, &call, id};

    if (deadline) {
        call.timer.expires_at(*deadline);
        call.timer.async_wait([self = shared_from_this(), id](boost::system::error_code ec) {
            if (ec)
                return;
            const auto it = self->pending_.find(id);
            if (it == self->pending_.end())
                return;
            it->second->deadline_hit = true;
            it->second->notify();
        });
    }

    // Phase 1: queue space. A peer that reads slowly makes us wait here, not buffer.
    if (space_waiters_.empty() && fits(encoded.size())) {
        data_bytes_ += encoded.size();
        update_queue_stats();
    } else {
        call.need = encoded.size();
        call.queued = true;
        space_waiters_.push_back(&call);
        stats_.send_waits.fetch_add(1, std::memory_order_relaxed);
        config_.metrics->send_queue_wait();
        update_queue_stats();
        const bool woke = co_await wait_until(call, [&] {
            return call.granted || call.deadline_hit || call.response.has_value() ||
                   static_cast<bool>(call.failed);
        });
        if (!woke)
            co_return finish(Reply::error(Status::cancelled, "cancelled by the caller"));
        if (call.response) {
            co_return finish(Reply{call.response->status, std::move(call.response->body),
                                   std::move(call.response->metadata)});
        }
        if (call.deadline_hit) {
            co_return finish(Reply::error(Status::deadline_exceeded, "deadline exceeded"));
        }
        if (call.failed)
            throw_error(call.failed, "call '" + method + "'");
        call.granted = false;  // the grant becomes the queued request below
    }
    push_data(std::move(encoded), options.no_compress);

    // Phase 2: the answer, the deadline, the end of the session, or our own cancellation.
    const bool woke = co_await wait_until(call, [&] {
        return call.response.has_value() || call.deadline_hit || static_cast<bool>(call.failed);
    });
    if (!woke) {
        // Our caller was cancelled: tell the peer to stop (protocol.md §6.2).
        send_control(protocol::Cancel{id});
        co_return finish(Reply::error(Status::cancelled, "cancelled by the caller"));
    }
    if (call.response) {
        co_return finish(Reply{call.response->status, std::move(call.response->body),
                               std::move(call.response->metadata)});
    }
    if (call.deadline_hit) {
        // No cancel message: the request carried the same budget and the peer enforces it.
        co_return finish(Reply::error(Status::deadline_exceeded, "deadline exceeded"));
    }
    throw_error(call.failed, "call '" + method + "'");
}

asio::awaitable<void> SessionImpl::notify_on_strand(std::string method, Bytes body,
                                                    CallOptions options) {
    if (state_ == State::closing || state_ == State::closed) {
        throw_error(close_reason_ ? close_reason_ : std::error_code(errc::connection_closed),
                    "notify '" + method + "'");
    }
    Bytes encoded;
    {
        const protocol::Notification notification{method, std::move(options.metadata),
                                                  std::move(body)};
        if (const auto ec = protocol::encode_message(notification, encoded, encode_limits_)) {
            throw_error(ec, "notify '" + method + "': message exceeds a limit");
        }
    }
    Waiter waiter(strand_);
    if (const auto ec = co_await reserve(waiter, encoded.size())) {
        throw_error(ec, "notify '" + method + "'");
    }
    push_data(std::move(encoded), options.no_compress);
    config_.metrics->notification_sent();
}

// ---------------------------------------------------------------------------------------------
// Keepalive and idle timeout

asio::awaitable<void> SessionImpl::keepalive_loop() {
    const auto interval = config_.options.keepalive_interval;
    const auto idle = config_.options.idle_timeout;
    while (state_ == State::open || state_ == State::draining) {
        auto next = SteadyClock::time_point::max();
        if (interval.count() > 0) {
            next = std::min(next,
                            ping_outstanding_ ? ping_sent_ + interval : last_receive_ + interval);
        }
        if (idle.count() > 0 && state_ == State::open)
            next = std::min(next, last_activity_ + idle);
        if (next == SteadyClock::time_point::max())
            co_return;
        keepalive_timer_.expires_at(next);
        auto [ec] = co_await keepalive_timer_.async_wait(use_tuple);
        if (ec || state_ == State::closing || state_ == State::closed)
            co_return;

        const auto now = SteadyClock::now();
        if (interval.count() > 0) {
            if (ping_outstanding_ && now - ping_sent_ >= interval) {
                config_.logger.warn("{}: {} sent nothing for {} ms; closing", config_.side,
                                    peer_->fingerprint.short_hex(), 2 * interval.count());
                do_abort(to_std(asio::error::timed_out));
                co_return;
            }
            if (!ping_outstanding_ && now - last_receive_ >= interval) {
                send_control(protocol::Ping{++ping_counter_});
                ping_outstanding_ = true;
                ping_sent_ = now;
            }
        }
        if (idle.count() > 0 && state_ == State::open && now - last_activity_ >= idle) {
            if (tasks_.empty() && pending_.empty()) {
                config_.logger.info("{}: session with {} idle; closing", config_.side,
                                    peer_->fingerprint.short_hex());
                begin_drain(config_.options.drain_timeout);
            } else {
                touch_activity();  // calls in flight are activity
            }
        }
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

boost::asio::awaitable<void> Session::notify(std::string method, Bytes body,
                                             CallOptions options) const {
    if (!impl_)
        throw std::logic_error("sdmp::Session: empty handle");
    return detail::SessionImpl::notify(impl_, std::move(method), std::move(body),
                                       std::move(options));
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

boost::asio::awaitable<Reply> Context::call(const Session& target, std::string method, Bytes body,
                                            CallOptions options) const {
    // The earliest deadline wins in call_on_strand, so inheriting never extends a budget.
    options.parent = this;
    return target.call(std::move(method), std::move(body), std::move(options));
}

}  // namespace sdmp
