// What a handler knows about the call it serves (the peer, the deadline, cancellation).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/suite.hpp"

#include "sdmp/framework/body_codec.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/framework/reply.hpp"

namespace sdmp {

namespace detail {
class SessionImpl;
struct ContextAccess;  // the framework's factory (framework/src/detail/context_access.hpp)
}  // namespace detail
class Session;

// The authenticated peer of a session (fixed once the handshake completed).
struct PeerInfo {
    crypto::Fingerprint fingerprint;
    std::string name;             // trust-store name, may be empty
    std::string remote_endpoint;  // "192.0.2.1:7000" / "[2001:db8::1]:7000"
    std::string local_endpoint;
    crypto::SuiteId suite{};
    crypto::Digest transcript_hash{};  // protocol.md §4: usable as a channel binding
};

// One incoming request or notification. A handler gets it by reference; it stays valid until
// the handler's coroutine completes. Every member function must be called from the handler's
// own coroutine (the session's strand). Only the framework makes one: a Context always belongs
// to a request that a session received.
class Context {
  public:
    using Clock = std::chrono::steady_clock;

    const PeerInfo& peer() const noexcept { return *peer_; }
    const crypto::Fingerprint& peer_fingerprint() const noexcept { return peer_->fingerprint; }
    std::string_view peer_name() const noexcept { return peer_->name; }
    std::string_view remote_endpoint() const noexcept { return peer_->remote_endpoint; }

    std::string_view method() const noexcept { return method_; }
    std::uint64_t request_id() const noexcept { return request_id_; }  // 0 for a notification
    bool is_notification() const noexcept { return request_id_ == 0; }
    const Metadata& metadata() const noexcept { return metadata_; }
    // Value of the first metadata entry named `key`, or empty.
    std::string_view find_metadata(std::string_view key) const noexcept;

    // The caller's budget as an absolute time on this host; nullopt when the caller set none.
    std::optional<Clock::time_point> deadline() const noexcept { return deadline_; }
    // What is left of it (zero once passed); nullopt when there is no deadline.
    std::optional<std::chrono::milliseconds> remaining() const noexcept;

    // True once the handler has been asked to stop: its deadline passed, the caller sent a
    // cancel, or the session is closing. The handler's coroutine runs with a cancellation slot
    // bound, so a pending co_await has already been cancelled (it throws operation_aborted,
    // or completes with it); this flag is for loops that do not co_await.
    bool cancelled() const noexcept { return cancel_reason_ != Status::ok; }
    // deadline_exceeded, cancelled or shutting_down; ok while not cancelled.
    Status cancel_reason() const noexcept { return cancel_reason_; }

    // The session the call arrived on: the handler may call the peer back or notify it.
    Session session() const;

    // Calls `target` (any session, this one included) on behalf of this call, with
    // `options.inherit(*this)`: the remaining budget is inherited unless `options` sets an
    // earlier deadline, so a chain of calls never outlives its first caller's deadline. Same
    // contract as Session::call.
    boost::asio::awaitable<Reply> call(const Session& target, std::string method, Bytes body,
                                       CallOptions options) const;
    boost::asio::awaitable<Reply> call(const Session& target, std::string method,
                                       Bytes body) const;  // default options

    // The typed form of call(), as sdmp::call_as (codec.hpp, which defines it): encodes
    // `request` at once, inherits the remaining budget as call() does, throws StatusError for
    // a non-ok status and decodes the reply into Resp.
    template <typename Resp, typename Codec = JsonCodec, typename Req>
    requires BodyCodec<Codec, Req> && BodyCodec<Codec, Resp> boost::asio::awaitable<Resp> call_as(
        const Session& target, std::string method, const Req& request, CallOptions options)
    const;
    template <typename Resp, typename Codec = JsonCodec, typename Req>
    requires BodyCodec<Codec, Req> && BodyCodec<Codec, Resp> boost::asio::awaitable<Resp> call_as(
        const Session& target, std::string method, const Req& request)
    const;

  private:
    friend struct detail::ContextAccess;

    Context(std::shared_ptr<detail::SessionImpl> session, std::shared_ptr<const PeerInfo> peer,
            std::uint64_t request_id, std::string method, Metadata metadata,
            std::optional<Clock::time_point> deadline);

    std::shared_ptr<detail::SessionImpl> session_;
    std::shared_ptr<const PeerInfo> peer_;
    std::uint64_t request_id_;
    std::string method_;
    Metadata metadata_;
    std::optional<Clock::time_point> deadline_;
    Status cancel_reason_ = Status::ok;
};

}  // namespace sdmp
