// A server: accepts on one or more endpoints, runs the responder handshake and serves the
// router's handlers on every session.
//
//   sdmp::Router router;
//   router.add("echo", [](sdmp::Context&, sdmp::Bytes b) -> boost::asio::awaitable<sdmp::Reply> {
//       co_return sdmp::Reply::ok(std::move(b));
//   });
//   sdmp::Server server(identity, trust, std::move(router), {.threads = 4});
//   server.listen("[::]:7000");
//   server.run();   // until server.shutdown() (from a signal handler thread, a handler, ...)
//
// Threading (ServerOptions::threading, ThreadingModel in options.hpp). Every coroutine of one
// connection (handshake, reader, writer, keepalive, handlers) runs serially, so no session state
// needs a lock. By default (context_per_thread) a server with its own io_contexts runs
// `threads` of them, one thread each, and pins every accepted connection to the one with the
// fewest connections at that moment; its coroutines run only there, with no strand. With
// strand_per_session one io_context is run by all `threads` threads and each connection gets a
// strand on it: any thread can pick up any session with work, and a busy session never pins a
// thread. Pinning was measured faster on the development machine even when two busy sessions
// share a thread (docs/performance.md, "Server threading model"); strands suit handlers that
// block their thread. A server on the application's executor always gives each connection a
// strand on that executor (ServerOptions::threading and threads do not apply).
//
// Admission (ServerOptions, defaults in options.hpp): every connection over a limit is refused
// exactly like a failed handshake, `nope` then close (protocol.md §3.6), and counted in
// MetricsSnapshot::handshakes_refused under the limit's name.
//   max_sessions (10 000)        connections, handshaking or established  "max_sessions"
//   source_limits.handshake_rate / handshake_burst (50/s, burst 100)
//                                new connections per source               "rate_limited"
//   source_limits.max_handshakes_per_source (64)
//                                handshakes in progress per source "max_handshakes_per_source"
//   max_handshakes (256)         handshakes in progress in total          "max_handshakes"
//   handshake.timeout (10 s)     a handshake not done by then gets `nope` "timeout"
// A source is an IPv4 address or an IPv6 /64; loopback is exempt by default
// (SourceLimits::exempt_loopback); at most source_limits.max_sources (16 384) are remembered.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/framework/endpoint.hpp"
#include "sdmp/framework/metrics.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/framework/router.hpp"

namespace sdmp {

namespace detail {
class ServerImpl;
class ServerContexts;
}  // namespace detail

class Server {
  public:
    // A server with its own io_context(s), run by ServerOptions::threads threads in run():
    // one io_context shared by every thread, or one per thread (ServerOptions::threading).
    Server(crypto::Identity identity, crypto::TrustStore trust, Router router,
           ServerOptions options = {});
    // A server on the application's executor (the application runs it; use async_run()). Each
    // connection gets a strand on that executor: ServerOptions::threads and threading do not
    // apply (the server cannot pin connections to io_contexts that the application runs).
    Server(boost::asio::any_io_executor executor, crypto::Identity identity,
           crypto::TrustStore trust, Router router, ServerOptions options = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and listens (port 0 picks a free port). Returns the bound endpoint. Throws
    // std::invalid_argument for a malformed endpoint string and boost::system::system_error
    // when the address cannot be bound. Call before running.
    EndpointSpec listen(std::string_view endpoint);
    std::vector<EndpointSpec> local_endpoints() const;

    // Serves until shutdown(), then until every session has closed and every handler has
    // finished. Exceptions of the accept loops are rethrown here. A server with several
    // io_contexts of its own (context_per_thread, threads > 1) throws std::logic_error at
    // once: only run() runs all of them.
    boost::asio::awaitable<void> async_run();
    // For a server with its own io_context(s): runs async_run() on `threads` threads (the
    // calling thread is one of them) and returns when it completes and every io_context has
    // run out of work. Rethrows its exception.
    void run();

    // Graceful shutdown; thread-safe, returns at once: stops accepting, sends goaway on every
    // session, lets calls in flight finish for up to ServerOptions::drain_timeout, cancels what
    // remains, closes. async_run()/run() complete after that.
    void shutdown();

    // Replaces the trust store (key rotation, revocation; e.g. on SIGHUP). Thread-safe, returns
    // at once. Handshakes that start afterwards use `trust`: a removed peer is refused with
    // `nope`, an added one gets in. A handshake already in progress finishes with the store it
    // started with, but its session is closed at once if its peer is not in `trust`.
    // Established sessions whose peer is not in `trust` are aborted (their calls in flight are
    // cancelled); the others are left alone. Returns how many sessions it aborted.
    std::size_t update_trust(crypto::TrustStore trust);

    std::size_t session_count() const noexcept;
    MetricsSnapshot metrics() const;
    std::shared_ptr<Metrics> metrics_registry() const noexcept;
    // The executor of the accept loops and of async_run() (context_per_thread: the first
    // io_context's).
    boost::asio::any_io_executor get_executor() const noexcept;

  private:
    std::unique_ptr<detail::ServerContexts> contexts_;  // own io_contexts; destroyed last
    std::shared_ptr<detail::ServerImpl> impl_;
};

}  // namespace sdmp
