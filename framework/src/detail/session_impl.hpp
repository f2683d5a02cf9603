// The engine of one established session (protocol.md §5, §6): a reader coroutine, a writer
// coroutine that coalesces queued messages into records, a bounded send queue, the pending-call
// table and the handler tasks. Its members are defined by concern in session.cpp (lifecycle,
// keepalive, handles), session_reader.cpp, session_writer.cpp, session_handlers.cpp and
// session_calls.cpp; what they share is in session_support.hpp.
//
// Threading: every member runs on the session's strand (`strand_`), so no state here needs a
// lock; public entry points hop onto it (the call inbox, co_spawn or post). Only the atomics in
// `stats_`, the call inbox and the handle block mutex are touched from other threads.
//
// Cost model (docs/performance.md): a call costs one allocation (its CallOp, holding the
// caller's handler; async_call's type-erased handler adds one more, from Asio's per-thread
// recycling allocator), one post back to the caller and a share of one strand post (the inbox
// drains every call submitted meanwhile);
// a request costs one allocation (its Task) and a share of one worker wake-up (a worker runs
// every queued request in turn). Messages are encoded straight into the record being built.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>

#include "detail/asio.hpp"
#include "detail/call_table.hpp"
#include "detail/compression_chooser.hpp"
#include "detail/keepalive_clock.hpp"
#include "detail/request_table.hpp"
#include "detail/send_queue.hpp"
#include "detail/session_lifecycle.hpp"
#include "sdmp/framework/context.hpp"
#include "sdmp/framework/metrics.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/framework/reply.hpp"
#include "sdmp/framework/router.hpp"
#include "sdmp/framework/session.hpp"
#include "sdmp/protocol/handshake.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"

namespace sdmp::detail {

struct SessionConfig {
    SessionOptions options;
    std::shared_ptr<const Router> router;  // may be null: every request is unknown_method
    Logger logger;
    std::shared_ptr<Metrics> metrics;  // never null
    crypto::CryptoProvider* provider = nullptr;
    // Client sessions close when the application drops its last Session handle; server
    // sessions belong to the server.
    bool close_on_last_handle = false;
    const char* side = "session";  // for logs
};

class SessionImpl : public std::enable_shared_from_this<SessionImpl> {
  public:
    // `socket` must be bound to a strand, or to an io_context that one thread runs; that
    // executor becomes the session's.
    SessionImpl(tcp::socket socket, protocol::Established established, SessionConfig config);
    ~SessionImpl();
    SessionImpl(const SessionImpl&) = delete;
    SessionImpl& operator=(const SessionImpl&) = delete;

    // The connection's main coroutine; must be started on the strand. Completes once the
    // connection is closed and every task (handlers, writer) has finished. Never throws for
    // connection errors; they become the close reason.
    asio::awaitable<void> run();

    // --- entry points (any thread unless noted) ---
    static asio::awaitable<Reply> call(std::shared_ptr<SessionImpl> self, std::string method,
                                       Bytes body, CallOptions options);
    using CallHandler = asio::any_completion_handler<Session::CallSignature>;
    static void async_call(std::shared_ptr<SessionImpl> self, std::string method, Bytes body,
                           CallOptions options, CallHandler handler);
    static asio::awaitable<void> notify(std::shared_ptr<SessionImpl> self, std::string method,
                                        Bytes body, CallOptions options);
    void close(std::chrono::milliseconds drain);
    void abort(std::error_code reason);
    static asio::awaitable<std::error_code> wait_closed(std::shared_ptr<SessionImpl> self);
    static asio::awaitable<std::optional<IncomingNotification>> next_notification(
        std::shared_ptr<SessionImpl> self);
    SessionStats stats() const;
    bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }
    std::uint64_t id() const noexcept { return id_; }
    const std::shared_ptr<const PeerInfo>& peer() const noexcept { return peer_; }
    const Executor& strand() const noexcept { return strand_; }
    const SessionOptions& options() const noexcept { return config_.options; }
    // A handle sharing the application's handle block (see SessionConfig::close_on_last_handle).
    Session handle();

  private:
    // One call in progress and the initiation that makes it (session.cpp).
    struct CallOp;
    template <typename Handler>
    struct CallOpImpl;
    struct CallInitiation;

    // A coroutine waiting for space (notifications, answers of handlers): woken through a
    // channel and decided by the fields above.
    struct Waiter final : SpaceWaiter {
        explicit Waiter(const Executor& ex) : wake(ex, 1) {}
        void on_space() override { wake.try_send(boost::system::error_code{}); }
        WakeChannel wake;
    };
    struct Worker;
    // One incoming request or notification: queued until a worker runs it, then handled.
    // In requests_ from its arrival until it has finished.
    struct Task : RequestTable::Entry {
        explicit Task(Context ctx) : context(std::move(ctx)) {}
        const Handler* handler = nullptr;
        const NotificationHandler* notification_handler = nullptr;
        Bytes body;                  // until the handler takes it
        Worker* worker = nullptr;    // running it, or null
        std::optional<Timer> timer;  // the caller's deadline, when it set one
        Context context;
        SteadyClock::time_point started;
        bool done = false;
        bool responded = false;
        bool no_compress = false;  // the request carried `sdmp-no-compress` (protocol.md §6.2)
    };
    // A coroutine that runs queued tasks one after another; its cancellation signal is bound
    // to it, so emitting it cancels whatever the handler it runs awaits.
    struct Worker {
        asio::cancellation_signal signal;
    };

    // Strand-only implementation.
    asio::awaitable<void> notify_on_strand(std::string method, Bytes body, CallOptions options);
    template <typename Predicate>
    asio::awaitable<bool> wait_until(Waiter& waiter, Predicate ready);
    asio::awaitable<std::error_code> reserve(Waiter& waiter, std::size_t size);
    // The send queue's operations, with the statistics published and the writer woken.
    bool try_reserve(std::size_t size) noexcept;
    void withdraw(SpaceWaiter& waiter);
    void wait_for_space(SpaceWaiter& waiter, std::size_t size);
    void release(std::size_t data_bytes, std::size_t control_bytes);
    std::error_code enqueue(protocol::Message& message, std::size_t size, bool no_compress,
                            bool control);
    void enqueue_encoded(Bytes encoded, bool no_compress);
    void send_control(protocol::Message message);
    // Resumes the writer when it waits for what was queued: only at the end of a step of work
    // (see session.cpp), never from inside the code that queues.
    void flush();
    void flush_later();
    void update_queue_stats();

    // Calls (see CallOp).
    void submit(std::shared_ptr<CallOp> op);
    void drain_inbox();
    void start_call(const std::shared_ptr<CallOp>& op);
    void call_granted(CallOp& op);
    void cancel_call(CallOp& op);
    // `completed_at`: when the outcome arrived, if the caller already knows (else read now).
    void finish_call(CallOp& op, std::error_code error, std::optional<Reply> reply,
                     std::optional<SteadyClock::time_point> completed_at = std::nullopt);

    asio::awaitable<boost::system::error_code> read_loop();
    asio::awaitable<void> write_loop();
    asio::awaitable<void> keepalive_loop();

    // Dispatches the framed messages of one record payload (`size` = envelope length).
    asio::awaitable<std::error_code> dispatch_payload(ByteView payload);
    void dispatch(protocol::Message&& message, std::size_t size);
    void on_end();
    void on_request(protocol::Request&& request, std::size_t size);
    void on_response(protocol::Response&& response, std::size_t size);
    void on_notification(protocol::Notification&& notification, std::size_t size);
    void on_cancel(std::uint64_t id);
    // A notification nobody takes: counted, and logged the first time.
    void drop_notification(std::string_view method, std::string_view why);
    asio::awaitable<std::optional<IncomingNotification>> next_notification_on_strand();
    void end_notifications();
    void on_goaway(const protocol::GoAway& goaway);
    void answer_now(std::uint64_t id, Status status, std::string_view message,
                    std::string_view metric_method);

    std::shared_ptr<Task> make_task(std::uint64_t request_id, std::string method, Metadata metadata,
                                    std::optional<SteadyClock::time_point> deadline);
    void start_deadline(const std::shared_ptr<Task>& task);
    void schedule(std::shared_ptr<Task> task);
    void start_workers();
    void ensure_worker();
    void spawn_worker();
    asio::awaitable<void> worker_loop(std::shared_ptr<Worker> worker);
    asio::awaitable<void> serve_request(Task& task);
    asio::awaitable<void> serve_notification(Task& task);
    asio::awaitable<void> send_response(Task& task, Reply reply);
    void task_finished(const std::shared_ptr<Task>& task, std::exception_ptr error);
    void cancel_task(Task& task, Status reason);

    // The lifecycle's decisions carried out (session.cpp), then drained() when it applies.
    void apply(const SessionLifecycle::Actions& actions);
    void check_drained();
    void begin_drain(std::chrono::milliseconds drain);
    void do_abort(std::error_code reason) { apply(lifecycle_.abort(reason)); }
    void fail_pending(std::error_code reason);
    void fail_waiters(std::error_code reason);
    void cancel_all_tasks(Status reason);
    void start_linger();
    void mark_not_open() noexcept { open_.store(false, std::memory_order_release); }
    Task& task_of(RequestTable::Entry& entry) noexcept { return static_cast<Task&>(entry); }
    void touch_activity() noexcept;

    const std::uint64_t id_;  // Session::id()
    Executor strand_;
    tcp::socket socket_;
    SessionConfig config_;
    std::shared_ptr<const PeerInfo> peer_;
    protocol::RecordSealer sealer_;
    protocol::RecordOpener opener_;
    protocol::MessageLimits decode_limits_;

    SessionLifecycle lifecycle_;
    std::atomic<bool> open_{true};  // Session::is_open(): open, and neither side said goodbye
    std::chrono::milliseconds drain_for_{};  // the drain timer's budget, set before close()

    // Bounded: send_queue_bytes for data, max_control_bytes for control.
    SendQueue send_queue_;
    CompressionChooser compression_{config_.options};
    // Where the writer and idle workers wait. resume_parked() continues a parked coroutine at
    // once on the caller's stack (a flush point or the reader, on the strand): what a step
    // queued or scheduled is acted on without a trip through the scheduler. A parked coroutine
    // holds no outstanding work of its own.
    using Parked = asio::any_completion_handler<void(bool)>;
    asio::awaitable<bool> park(std::vector<Parked>& spot);
    static void resume_parked(std::vector<Parked>& spot, bool go_on);
    std::vector<Parked> writer_parked_;  // at most one
    // The writer gathering a batch (see write_loop): resumed by the end_gathering() it posted,
    // or earlier by flush() once flush_after_messages are queued.
    std::vector<Parked> writer_gathering_;  // at most one
    std::uint64_t gathering_generation_ = 0;
    void end_gathering(std::uint64_t generation);
    class ProducerScope;
    std::size_t producers_with_more_ = 0;  // see ProducerScope
    bool writer_finish_ = false;           // flush what is queued, shut down sending, stop
    bool writer_done_ = false;
    WakeChannel writer_done_wake_;
    // The last socket write could not be taken whole at once (CompressionPolicy::automatic).
    bool link_backlogged_ = false;
    bool try_write_at_once_ = false;  // the socket is non-blocking (write_loop)

    // Our calls. Calls from other threads go through the inbox: one strand post per batch.
    std::atomic<std::size_t> calls_active_{0};  // submitted and not finished (any thread)
    std::mutex inbox_mutex_;
    std::vector<std::shared_ptr<CallOp>> inbox_;  // guarded by inbox_mutex_
    bool inbox_scheduled_ = false;                // guarded by inbox_mutex_
    std::vector<std::shared_ptr<CallOp>> inbox_draining_;
    // Nodes of calls_ and requests_ (one insert and one erase per call or request) come from
    // a per-session pool instead of malloc.
    std::pmr::unsynchronized_pool_resource table_pool_;
    CallTable<std::shared_ptr<CallOp>> calls_{&table_pool_};
    bool end_sent_ = false;  // our `end` is queued: the writer's last record
    // Pings of the record being dispatched are answered by one pong (protocol.md §6.2).
    std::optional<std::uint64_t> pong_due_;

    // Peer requests and notifications: every unfinished task is in requests_; queued ones
    // also in ready_, until a worker takes them.
    RequestTable requests_;
    std::deque<std::shared_ptr<Task>> ready_;
    std::vector<Parked> parked_workers_;  // idle workers
    bool workers_closed_ = false;         // run() is ending: no worker parks any more
    std::size_t starting_workers_ = 0;
    bool worker_wake_pending_ = false;  // a standby worker's resumption is posted
    WakeChannel tasks_idle_;

    // Notifications for next_notification() (SessionOptions::notification_buffer_bytes).
    std::deque<std::pair<IncomingNotification, std::size_t>> pulled_;  // with envelope size
    std::size_t pulled_bytes_ = 0;
    bool pulled_ended_ = false;  // the session has closed: nothing more arrives
    WakeChannel pulled_wake_;    // a notification arrived, or the end (closed)
    bool drop_logged_ = false;

    // Lifecycle timers.
    Timer drain_timer_;
    Timer linger_timer_;
    Timer keepalive_timer_;
    KeepaliveClock keepalive_{config_.options.keepalive_interval, config_.options.idle_timeout,
                              SteadyClock::now()};
    SteadyClock::time_point received_at_;  // when the records being dispatched were read

    // Closed event: closing the channel wakes every waiter (channel_closed) and stays set.
    asio::experimental::concurrent_channel<void(boost::system::error_code)> closed_event_;
    std::mutex close_reason_mutex_;  // guards published_close_reason_
    std::error_code published_close_reason_;

    // Stats readable from any thread.
    struct AtomicStats {
        std::atomic<std::size_t> queued_bytes{0};
        std::atomic<std::size_t> max_queued_bytes{0};
        std::atomic<std::size_t> control_bytes{0};
        std::atomic<std::size_t> blocked_senders{0};
        std::atomic<std::uint64_t> send_waits{0};
        std::atomic<std::size_t> pending_calls{0};
        std::atomic<std::size_t> in_flight{0};
        std::atomic<std::uint64_t> notifications_dropped{0};
    } stats_;

    std::mutex handle_mutex_;
    std::weak_ptr<SessionHandle> handle_block_;
};

// The application's share of a session, behind every Session handle of it (session.hpp,
// "Lifetime"). An owning block (client sessions) holds the session and closes it when the last
// handle goes; a server's block only refers to it, so that the session and its Asio objects
// are released with the server's io_context, and keeps what a handle still answers after that.
class SessionHandle {
  public:
    SessionHandle(const std::shared_ptr<SessionImpl>& impl, bool owning);
    ~SessionHandle();
    SessionHandle(const SessionHandle&) = delete;
    SessionHandle& operator=(const SessionHandle&) = delete;

    std::shared_ptr<SessionImpl> lock() const noexcept { return owning_ ? strong_ : weak_.lock(); }
    std::uint64_t id() const noexcept { return id_; }
    const PeerInfo& peer() const noexcept { return *peer_; }
    // Set by the session as it is destroyed: what wait_closed() returns after that.
    void record_end(std::error_code reason);
    std::error_code end_reason() const;

  private:
    std::shared_ptr<SessionImpl> strong_;  // owning only
    std::weak_ptr<SessionImpl> weak_;
    bool owning_;
    std::uint64_t id_;
    std::shared_ptr<const PeerInfo> peer_;
    mutable std::mutex end_mutex_;
    std::error_code end_reason_ = framework_errc::connection_closed;
};

}  // namespace sdmp::detail
