// The engine of one established session (protocol.md §5, §6): a reader coroutine, a writer
// coroutine that coalesces queued messages into records, a bounded send queue, the pending-call
// table and the handler tasks.
//
// Threading: every member runs on the session's strand (`strand_`), so no state here needs a
// lock; public entry points hop onto it (co_spawn or dispatch). Only the atomics in `stats_`
// and the handle block mutex are touched from other threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "detail/asio.hpp"
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
    // `socket` must be bound to a strand; that strand becomes the session's.
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
    static asio::awaitable<void> notify(std::shared_ptr<SessionImpl> self, std::string method,
                                        Bytes body, CallOptions options);
    void close(std::chrono::milliseconds drain);
    void abort(std::error_code reason);
    static asio::awaitable<std::error_code> wait_closed(std::shared_ptr<SessionImpl> self);
    SessionStats stats() const;
    bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }
    const std::shared_ptr<const PeerInfo>& peer() const noexcept { return peer_; }
    const Executor& strand() const noexcept { return strand_; }
    const SessionOptions& options() const noexcept { return config_.options; }
    // A handle sharing the application's handle block (see SessionConfig::close_on_last_handle).
    Session handle();

  private:
    enum class State { open, draining, closing, closed };

    // Something a coroutine waits for on the strand: woken by `wake`, decided by its fields.
    struct Waiter {
        explicit Waiter(const Executor& ex) : wake(ex, 1) {}
        void notify() { wake.try_send(boost::system::error_code{}); }
        WakeChannel wake;
        std::size_t need = 0;  // queue bytes asked for
        bool queued = false;   // in space_waiters_
        bool granted = false;  // space reserved for it
        std::error_code failed;
    };
    struct CallState : Waiter {
        explicit CallState(const Executor& ex) : Waiter(ex), timer(ex) {}
        Timer timer;
        std::optional<protocol::Response> response;
        bool deadline_hit = false;
    };
    // One incoming request or notification being handled.
    struct Task {
        Task(const Executor& ex, Context ctx) : timer(ex), context(std::move(ctx)) {}
        std::uint64_t serial = 0;
        std::uint64_t request_id = 0;      // 0: notification
        std::string metric_method;         // registered method name
        asio::cancellation_signal signal;  // bound to the handler coroutine
        Timer timer;                       // the caller's deadline
        Context context;
        SteadyClock::time_point started;
        bool done = false;
        bool responded = false;
    };
    struct Outgoing {
        Bytes bytes;  // varint(len) || envelope (protocol.md §5.1)
        bool no_compress = false;
        bool control = false;
    };
    class HandleBlock;

    // Strand-only implementation.
    asio::awaitable<Reply> call_on_strand(std::string method, Bytes body, CallOptions options);
    asio::awaitable<void> notify_on_strand(std::string method, Bytes body, CallOptions options);
    template <typename Predicate>
    asio::awaitable<bool> wait_until(Waiter& waiter, Predicate ready);
    asio::awaitable<std::error_code> reserve(Waiter& waiter, std::size_t size);
    bool fits(std::size_t size) const noexcept;
    void withdraw(Waiter& waiter);
    void release(std::size_t data_bytes, std::size_t control_bytes);
    void push_data(Bytes bytes, bool no_compress);
    void send_control(const protocol::Message& message);
    void wake_writer();
    void update_queue_stats();

    asio::awaitable<boost::system::error_code> read_loop();
    asio::awaitable<void> write_loop();
    asio::awaitable<void> keepalive_loop();
    int compression_level(std::size_t payload_size, bool no_compress) const noexcept;

    void dispatch(protocol::Message&& message);
    void on_request(protocol::Request&& request, std::size_t size);
    void on_response(protocol::Response&& response, std::size_t size);
    void on_notification(protocol::Notification&& notification);
    void on_cancel(std::uint64_t id);
    void on_goaway(const protocol::GoAway& goaway);
    void answer_now(std::uint64_t id, Status status, std::string_view message,
                    std::string_view metric_method);

    std::shared_ptr<Task> make_task(std::uint64_t request_id, std::string method, Metadata metadata,
                                    std::optional<SteadyClock::time_point> deadline);
    void start_deadline(const std::shared_ptr<Task>& task);
    asio::awaitable<void> serve_request(std::shared_ptr<Task> task, const Handler* handler,
                                        Bytes body);
    asio::awaitable<void> serve_notification(std::shared_ptr<Task> task,
                                             const NotificationHandler* handler, Bytes body);
    asio::awaitable<void> send_response(Task& task, Reply reply);
    void task_finished(const std::shared_ptr<Task>& task, std::exception_ptr error);
    void cancel_task(Task& task, Status reason);

    void begin_drain(std::chrono::milliseconds drain);
    void maybe_finish_drain();
    void begin_closing();
    void do_abort(std::error_code reason);
    void fail_pending(std::error_code reason);
    void fail_waiters(std::error_code reason);
    void cancel_all_tasks(Status reason);
    void start_linger();
    void mark_not_open() noexcept { open_.store(false, std::memory_order_release); }
    void touch_activity() noexcept { last_activity_ = SteadyClock::now(); }

    Executor strand_;
    tcp::socket socket_;
    SessionConfig config_;
    std::shared_ptr<const PeerInfo> peer_;
    protocol::RecordSealer sealer_;
    protocol::RecordOpener opener_;
    protocol::MessageLimits encode_limits_;
    protocol::MessageLimits decode_limits_;

    State state_ = State::open;
    std::atomic<bool> open_{true};
    std::error_code close_reason_;
    bool aborted_ = false;

    // Send queue (bounded: send_queue_bytes for data, max_control_bytes for control).
    std::deque<Outgoing> queue_;
    std::size_t data_bytes_ = 0;
    std::size_t control_bytes_ = 0;
    std::deque<Waiter*> space_waiters_;
    WakeChannel writer_wake_;
    bool writer_finish_ = false;  // flush what is queued, shut down sending, stop
    bool writer_done_ = false;
    WakeChannel writer_done_wake_;

    // Our calls.
    std::uint64_t next_call_id_ = 0;
    std::unordered_map<std::uint64_t, CallState*> pending_;
    std::optional<std::uint64_t> peer_goaway_last_;  // the peer sent goaway

    // Peer requests and notifications being handled.
    std::uint64_t next_task_serial_ = 0;
    std::map<std::uint64_t, std::shared_ptr<Task>> tasks_;  // by serial
    std::unordered_map<std::uint64_t, Task*> requests_;     // by request id
    WakeChannel tasks_idle_;
    std::uint64_t highest_peer_request_ = 0;

    // Lifecycle timers.
    Timer drain_timer_;
    Timer linger_timer_;
    Timer keepalive_timer_;
    SteadyClock::time_point last_receive_;
    SteadyClock::time_point last_activity_;
    bool ping_outstanding_ = false;
    SteadyClock::time_point ping_sent_;
    std::uint64_t ping_counter_ = 0;

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
    } stats_;

    std::mutex handle_mutex_;
    std::weak_ptr<HandleBlock> handle_block_;
};

}  // namespace sdmp::detail
