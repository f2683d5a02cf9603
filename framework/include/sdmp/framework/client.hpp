// Connecting to a server: TCP connect, the initiator's handshake (protocol.md §3), a session.
//
//   sdmp::Session session = co_await sdmp::connect(
//       executor, sdmp::Target::address("server.example:7000", server_fingerprint), identity,
//       trust);
//   sdmp::Session db = co_await sdmp::connect(executor, sdmp::Target::named("db"), identity,
//                                             trust);  // address from the trust store
//   sdmp::Reply reply = co_await session.call("echo", sdmp::bytes_of("hi"),
//                                             sdmp::CallOptions{}.with_timeout(2s));
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/framework/endpoint.hpp"
#include "sdmp/framework/error.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/framework/session.hpp"

namespace sdmp {

// Connects to `target` and authenticates the server. `identity` and `trust` are copied. The
// session runs on its own strand of `executor`; it closes gracefully when the last Session
// handle is dropped. Throws boost::system::system_error: errc::unknown_peer (the target's
// fingerprint or name is not in `trust`), framework_errc::refused_by_peer (the server answered
// `nope`), errc::handshake_rejected (we refused the server's message: wrong or unknown key,
// bad signature, ...), framework_errc::handshake_timeout, or the socket/resolver error;
// std::invalid_argument when a named target's entry has no address or a malformed one.
boost::asio::awaitable<Session> connect(boost::asio::any_io_executor executor, Target target,
                                        crypto::Identity identity, crypto::TrustStore trust,
                                        ClientOptions options);
// With default options. An overload, not a defaulted argument: GCC 12 destroys a defaulted
// class-type argument of a call inside `co_await` twice (a double free of its vectors).
boost::asio::awaitable<Session> connect(boost::asio::any_io_executor executor, Target target,
                                        crypto::Identity identity, crypto::TrustStore trust);

struct ReconnectOptions {
    std::chrono::milliseconds initial_backoff{100};
    std::chrono::milliseconds max_backoff{10000};
    double multiplier = 2.0;
    double jitter = 0.2;  // each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    // Give up after this many consecutive failed attempts (0 = never).
    std::size_t max_attempts = 0;
};

namespace detail {
class ReconnectingClientImpl;
}

// A client that keeps one session to a server, reconnecting with exponential backoff and
// jitter when it breaks. Calls made while disconnected wait for the next session (within their
// own deadline). A refusal (`nope`) is retried too: the server may not trust us yet. Every
// attempt connects to `target` as connect() does.
class ReconnectingClient {
  public:
    ReconnectingClient(boost::asio::any_io_executor executor, Target target,
                       crypto::Identity identity, crypto::TrustStore trust,
                       ClientOptions options = {}, ReconnectOptions reconnect = {});
    ~ReconnectingClient();  // closes the current session
    ReconnectingClient(const ReconnectingClient&) = delete;
    ReconnectingClient& operator=(const ReconnectingClient&) = delete;

    // The current session, connecting first when there is none (retrying per ReconnectOptions).
    // Throws the last connect error once max_attempts is reached, system_error
    // (operation_aborted) after close().
    boost::asio::awaitable<Session> session();
    // session() then Session::call; a call that fails with connection_closed before it was
    // answered is not retried (it may have been handled).
    boost::asio::awaitable<Reply> call(std::string method, Bytes body, CallOptions options);
    boost::asio::awaitable<Reply> call(std::string method, Bytes body);  // default options
    // Closes the current session gracefully and stops reconnecting; thread-safe, returns at
    // once. A session() (or call()) waiting out a backoff or in the middle of a connect
    // attempt completes at once with system_error(operation_aborted); the attempt is ended.
    // Cancelling a waiting session() through its cancellation slot ends an attempt the same way.
    void close();

    std::uint64_t connects() const noexcept;  // sessions established so far

  private:
    std::shared_ptr<detail::ReconnectingClientImpl> impl_;
};

}  // namespace sdmp
