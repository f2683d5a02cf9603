// A secured, established connection: either side may call the other and send notifications
// (protocol.md §6). A Session is a cheap, thread-safe handle; like any Asio I/O object it must
// not outlive the execution context (io_context, thread_pool) it runs on.
//
// Lifetime: every handle of one session shares one handle block. For a client session (from
// connect(); a ReconnectingClient holds a handle of its current one) the handles own it:
// dropping the last one closes the session gracefully, so a kept handle keeps it open until
// close(), abort() or the peer ends it; such a handle must not outlive its io_context. Server
// sessions (the ones a Server accepts: ServerOptions::on_session, Context::session() in the
// server's handlers) belong to the server: a kept handle keeps neither the connection open nor
// the session's Asio objects alive, and dropping the last one closes nothing. Once the
// connection has ended and its handlers have finished, the session is released and its
// handles read as closed: is_open() false, call() and notify() throw connection_closed,
// wait_closed() returns the reason at once, peer() and id() still answer. So a server
// session handle may be kept anywhere, e.g. in handler state that outlives the Server.
//
// Identity: id() names the session, whichever handle it is read from; handles compare equal
// and hash alike when they refer to the same session (std::hash<sdmp::Session>), so a Session
// can be a key of an unordered container.
//
// Error contract of the outer API (Asio's convention): failures of the transport (session
// closed, connection lost, message over the local limit) are thrown as
// boost::system::system_error carrying an sdmp::errc or sdmp::framework_errc code (async_call
// passes the same code as its first argument instead); the outcome of a call that was
// answered — or timed out, was cancelled, or was refused because the peer is draining — is a
// Status inside the Reply.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "sdmp/framework/context.hpp"
#include "sdmp/framework/error.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/framework/reply.hpp"

namespace sdmp {

namespace detail {
class SessionHandle;
}  // namespace detail

// A snapshot of a session's queues (for tests and monitoring; approximate while running).
struct SessionStats {
    std::size_t queued_bytes = 0;      // data messages accepted and not yet written
    std::size_t max_queued_bytes = 0;  // high-water mark of queued_bytes
    std::size_t control_bytes = 0;
    std::size_t blocked_senders = 0;  // coroutines waiting for queue space now
    std::uint64_t send_waits = 0;     // times a sender had to wait, in total
    std::size_t pending_calls = 0;    // our calls awaiting a response
    std::size_t in_flight = 0;        // peer requests/notifications being handled
    // Notifications from the peer that nobody took: no handler and no room in the
    // notification buffer, over max_in_flight, or over max_message_size.
    std::uint64_t notifications_dropped = 0;
    bool open = false;
};

// A notification from the peer, as Session::next_notification() hands it over.
struct IncomingNotification {
    std::string method;
    Metadata metadata;
    Bytes body;
};

class Session {
  public:
    // How a call completes with async_call (Asio's convention: the error first). On error the
    // Reply is empty.
    using CallSignature = void(boost::system::error_code, Reply);

    Session() = default;

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    // Unique among the sessions of this process (never reused) and fixed for the session's life;
    // 0 for an empty handle.
    std::uint64_t id() const noexcept;
    // Same session, whichever handles; two empty handles are equal.
    friend bool operator==(const Session& a, const Session& b) noexcept { return a.id() == b.id(); }
    // False once the session started closing (goaway received or sent, or connection lost).
    bool is_open() const noexcept;
    const PeerInfo& peer() const;

    // Calls `method` on the peer. Completes with the peer's reply, or with a local status:
    // deadline_exceeded (budget ran out; a cancel is sent), cancelled (the awaiting coroutine
    // was cancelled through its cancellation slot; a cancel is sent), shutting_down (the peer
    // sent goaway and will not handle this call). Throws system_error with errc::limit_exceeded
    // when the request is larger than max_message_size (nothing is sent), and with
    // framework_errc::connection_closed when the session is or becomes closed before an answer.
    // May be awaited from any executor; the work runs on the session's strand.
    boost::asio::awaitable<Reply> call(std::string method, Bytes body, CallOptions options) const;
    // With default options. Overloads, not defaulted arguments: GCC 12 destroys a defaulted
    // class-type argument of a call inside `co_await` twice.
    boost::asio::awaitable<Reply> call(std::string method, Bytes body) const;

    // call() with any Asio completion token (a callback, use_future, deferred, use_awaitable,
    // ...), completing with CallSignature: a transport failure is the error_code (the codes
    // call() throws), and every other outcome a Reply as with call(). The handler runs on its
    // associated executor, by default the session's strand; cancellation through the token's
    // cancellation slot (terminal, partial or total) completes the call with Status::cancelled
    // and sends a cancel. The operation starts when the token initiates it (at once, or later
    // for deferred); throws std::logic_error on an empty handle, and system_error with
    // connection_closed for a released server session (see "Lifetime").
    template <boost::asio::completion_token_for<CallSignature> CompletionToken>
    auto async_call(std::string method, Bytes body, CallOptions options,
                    CompletionToken&& token) const {
        return boost::asio::async_initiate<CompletionToken, CallSignature>(
            [](auto handler, std::shared_ptr<detail::SessionImpl> impl, std::string m, Bytes b,
               CallOptions o) {
                initiate_call(std::move(impl), std::move(m), std::move(b), std::move(o),
                              CallHandler(std::move(handler)));
            },
            token, checked_impl(), std::move(method), std::move(body), std::move(options));
    }

    // Sends a one-way notification (only `metadata` and `no_compress` of `options` apply).
    // Completes when the message is queued (it may wait for queue space). Same exceptions as
    // call().
    boost::asio::awaitable<void> notify(std::string method, Bytes body, CallOptions options) const;
    boost::asio::awaitable<void> notify(std::string method, Bytes body) const;

    // The next notification from the peer that no handler of the session's router took, in
    // the order they arrived; std::nullopt once the session has closed and every buffered one
    // was taken. Needs SessionOptions::notification_buffer_bytes (else std::logic_error, at
    // once). Any number of coroutines may wait, each notification goes to one of them. May be
    // awaited from any executor; cancelling the awaiting coroutine throws
    // system_error(operation_aborted) and loses no notification.
    boost::asio::awaitable<std::optional<IncomingNotification>> next_notification() const;

    // Graceful close, returns at once (thread-safe): sends goaway, lets calls in both directions
    // finish for up to `drain` (SessionOptions::drain_timeout by default; then what remains is
    // cancelled), flushes, shuts down sending, waits for the peer's end of stream (close_linger)
    // and closes. A client session also closes like this when its last handle is dropped.
    void close() const;
    void close(std::chrono::milliseconds drain) const;
    // Immediate close: in-flight handlers are cancelled, pending calls fail.
    void abort() const;

    // Completes once the session is fully closed (every handler finished), with the reason:
    // empty for a graceful close by either side, otherwise what broke the connection.
    boost::asio::awaitable<std::error_code> wait_closed() const;

    SessionStats stats() const;

  private:
    friend class detail::SessionImpl;
    explicit Session(std::shared_ptr<detail::SessionHandle> handle) : handle_(std::move(handle)) {}

    // async_call's one non-template step: the session is behind pimpl, so the handler is
    // type-erased (one allocation, from Asio's per-thread recycling allocator unless the
    // handler has an allocator of its own).
    using CallHandler = boost::asio::any_completion_handler<CallSignature>;
    static void initiate_call(std::shared_ptr<detail::SessionImpl> impl, std::string method,
                              Bytes body, CallOptions options, CallHandler handler);
    // The session; null once a server session has been released. logic_error if empty.
    std::shared_ptr<detail::SessionImpl> checked_impl() const;
    // The same without the check: null for an empty handle too.
    std::shared_ptr<detail::SessionImpl> lock() const noexcept;

    std::shared_ptr<detail::SessionHandle> handle_;
};

}  // namespace sdmp

template <>
struct std::hash<sdmp::Session> {
    std::size_t operator()(const sdmp::Session& session) const noexcept {
        return std::hash<std::uint64_t>{}(session.id());
    }
};
