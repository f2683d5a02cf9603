// The server: accept loops, the connection coroutine (admission, establishment, session) and a
// structured shutdown (async_run completes only after every connection coroutine, and so every
// handler, has finished). Admission limits, establishment and the server's own threads each
// live in their own file (admission.cpp, establish.cpp, server_runner.cpp).
#include <stdexcept>
#include <unordered_map>

#include "detail/admission.hpp"
#include "detail/establish.hpp"
#include "detail/server_runner.hpp"
#include "detail/session_impl.hpp"
#include "detail/transport.hpp"
#include "sdmp/error.hpp"
#include "sdmp/framework/server.hpp"
#include "sdmp/protocol/replay_cache.hpp"

namespace sdmp {
namespace detail {

class ServerImpl : public std::enable_shared_from_this<ServerImpl> {
  public:
    // `pinned`: the executors of a context_per_thread server's io_contexts, one per thread;
    // empty for strand_per_session (every connection gets a strand on `executor`).
    ServerImpl(Executor executor, std::vector<Executor> pinned, crypto::Identity identity,
               crypto::TrustStore trust, Router router, ServerOptions options)
        : executor_(executor),
          placement_(executor, std::move(pinned)),
          strand_(asio::make_strand(executor)),
          identity_(std::move(identity)),
          trust_(std::make_shared<const crypto::TrustStore>(std::move(trust))),
          router_(std::make_shared<const Router>(std::move(router))),
          options_(std::move(options)),
          metrics_(options_.metrics ? options_.metrics : std::make_shared<Metrics>()),
          replay_cache_(replay_window_ms(options_.handshake), options_.replay_cache_capacity),
          admission_(options_, metrics_),
          idle_(executor, 1) {}

    EndpointSpec listen(std::string_view text) {
        const EndpointSpec spec = EndpointSpec::parse(text);
        const tcp::endpoint endpoint = resolve_listen_endpoint(spec);
        auto acceptor = std::make_unique<tcp::acceptor>(strand_);
        boost::system::error_code ec;
        acceptor->open(endpoint.protocol(), ec);
        if (!ec)
            acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec)
            acceptor->bind(endpoint, ec);
        if (!ec)
            acceptor->listen(options_.listen_backlog, ec);
        if (ec)
            throw boost::system::system_error(ec, "listen on " + spec.to_string());
        const EndpointSpec bound = to_spec(acceptor->local_endpoint());
        options_.logger.info("server: listening on {}", bound.to_string());
        const std::lock_guard lock(mutex_);
        acceptors_.push_back(std::move(acceptor));
        return bound;
    }

    std::vector<EndpointSpec> local_endpoints() const {
        std::vector<EndpointSpec> out;
        const std::lock_guard lock(mutex_);
        for (const auto& acceptor : acceptors_) {
            boost::system::error_code ec;
            const auto endpoint = acceptor->local_endpoint(ec);
            if (!ec)
                out.push_back(to_spec(endpoint));
        }
        return out;
    }

    static asio::awaitable<void> run(std::shared_ptr<ServerImpl> self) {
        std::vector<tcp::acceptor*> acceptors;
        {
            const std::lock_guard lock(self->mutex_);
            if (self->running_)
                throw std::logic_error("sdmp::Server: already running");
            self->running_ = true;
            for (const auto& acceptor : self->acceptors_)
                acceptors.push_back(acceptor.get());
        }
        for (tcp::acceptor* acceptor : acceptors) {
            self->live_tasks_.fetch_add(1);
            asio::co_spawn(self->strand_, self->accept_loop(*acceptor),
                           [self](std::exception_ptr error) {
                               if (error) {
                                   self->options_.logger.error("server: accept loop failed");
                                   const std::lock_guard lock(self->mutex_);
                                   if (!self->error_)
                                       self->error_ = error;
                               }
                               self->task_done();
                           });
        }
        // Structured shutdown: wait for every accept loop and connection coroutine.
        while (self->live_tasks_.load() > 0) {
            co_await self->idle_.async_receive(use_tuple);
        }
        self->admission_.flush_log();
        std::exception_ptr error;
        {
            const std::lock_guard lock(self->mutex_);
            self->running_ = false;
            error = self->error_;
        }
        if (error)
            std::rethrow_exception(error);
    }

    void shutdown() {
        asio::dispatch(strand_, [self = shared_from_this()] {
            std::vector<std::shared_ptr<SessionImpl>> sessions;
            {
                const std::lock_guard lock(self->mutex_);
                if (self->stopping_)
                    return;
                self->stopping_ = true;
                for (const auto& acceptor : self->acceptors_) {
                    boost::system::error_code ignored;
                    acceptor->close(ignored);  // completes the accept loops
                }
                for (const auto& [ptr, session] : self->sessions_)
                    sessions.push_back(session);
            }
            self->admission_.evict_handshakes();
            self->options_.logger.info("server: shutting down, {} sessions to drain",
                                       sessions.size());
            for (const auto& session : sessions)
                session->close(self->options_.drain_timeout);
        });
    }

    std::size_t session_count() const noexcept {
        const std::lock_guard lock(mutex_);
        return sessions_.size();
    }

    std::size_t update_trust(crypto::TrustStore trust) {
        auto fresh = std::make_shared<const crypto::TrustStore>(std::move(trust));
        std::vector<std::shared_ptr<SessionImpl>> removed;
        {
            // Swapped and scanned under the lock that also guards registering a new session,
            // so no session of a removed peer can slip in between (see serve_connection).
            const std::lock_guard lock(mutex_);
            trust_ = fresh;
            for (const auto& [ptr, session] : sessions_) {
                if (fresh->find(session->peer()->fingerprint) == nullptr)
                    removed.push_back(session);
            }
        }
        options_.logger.info("server: trust store updated: {} peers; closing {} sessions",
                             fresh->size(), removed.size());
        for (const auto& session : removed) {
            options_.logger.info("server: closing session of {}: no longer trusted",
                                 session->peer()->fingerprint.short_hex());
            session->abort(errc::unknown_peer);
        }
        return removed.size();
    }
    const std::shared_ptr<Metrics>& metrics() const noexcept { return metrics_; }
    const Executor& executor() const noexcept { return executor_; }

  private:
    static EndpointSpec to_spec(const tcp::endpoint& endpoint) {
        return EndpointSpec{endpoint.address().to_string(), endpoint.port()};
    }

    void task_done() {
        if (live_tasks_.fetch_sub(1) == 1)
            idle_.try_send(boost::system::error_code{});
    }

    asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
        auto self = shared_from_this();
        for (;;) {
            // Every connection gets its own strand, or (context_per_thread) one io_context that
            // only one thread runs, so it needs none (see server.hpp on threading). Chosen before
            // the accept: the socket is created on the connection's own context and stays there.
            const std::size_t slot = placement_.pick();
            const Executor connection_strand = placement_.executor(slot);
            auto [ec, socket] = co_await acceptor.async_accept(connection_strand, use_tuple);
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open())
                    co_return;
                options_.logger.warn("server: accept failed: {}", ec.message());
                // Out of descriptors and the like: back off instead of spinning.
                Timer backoff(strand_);
                backoff.expires_after(std::chrono::milliseconds(100));
                co_await backoff.async_wait(use_tuple);
                continue;
            }
            live_tasks_.fetch_add(1);
            placement_.add(slot);
            asio::co_spawn(connection_strand, serve_connection(std::move(socket)),
                           [self, slot](std::exception_ptr error) {
                               if (error) {
                                   try {
                                       std::rethrow_exception(error);
                                   } catch (const std::exception& e) {
                                       self->options_.logger.error("server: connection failed: {}",
                                                                   e.what());
                                   }
                               }
                               self->placement_.remove(slot);
                               self->task_done();
                           });
        }
    }

    // One straight-line coroutine per connection: admission, handshake, session, cleanup.
    asio::awaitable<void> serve_connection(tcp::socket socket) {
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::string remote = "?";
        std::optional<asio::ip::address> remote_address;
        if (const auto endpoint = socket.remote_endpoint(ignored); !ignored) {
            remote = format_endpoint(endpoint);
            remote_address = endpoint.address();
        }

        // A refusal looks like any other: `nope` (protocol.md §3.6).
        AdmissionTicket ticket;
        if (!co_await admission_.enter(socket, remote, remote_address, ticket))
            co_return;

        // This handshake keeps the store it started with, even if update_trust() swaps it.
        std::shared_ptr<const crypto::TrustStore> trust;
        {
            const std::lock_guard lock(mutex_);
            trust = trust_;
        }
        options_.logger.debug("server: handshake with {} started", remote);
        const EstablishParams params{.handshake = options_.handshake,
                                     .identity = identity_,
                                     .trust = *trust,
                                     .session = options_.session,
                                     .router = router_,
                                     .logger = options_.logger,
                                     .metrics = metrics_};
        // protocol.md §3.5 step 8: a peer at max_sessions_per_peer is declined with `nope`.
        EstablishResult established =
            co_await establish(socket,
                               Responder{.replay_cache = &replay_cache_,
                                         .accept_peer = admission_.peer_gate(ticket),
                                         .watch = ticket.watch()},
                               params);
        admission_.end_handshake(ticket);
        if (!established.session) {
            admission_.release_connection(ticket);
            const HandshakeOutcome& outcome = established.failure;
            if (outcome.refused_locally) {
                // The cause stays local (protocol.md §3.6); the peer only sees `nope`.
                co_await admission_.refuse(socket, remote,
                                           outcome.evicted ? std::string_view("evicted")
                                                           : protocol::to_string(outcome.reason));
            } else {
                metrics_->handshake_failed();
                options_.logger.debug("server: handshake from {} failed: {}", remote,
                                      protocol::to_string(outcome.reason));
            }
            co_return;
        }
        const std::shared_ptr<SessionImpl> session = std::move(established.session);
        const crypto::Fingerprint peer = session->peer()->fingerprint;
        bool stopping = false;
        bool revoked = false;
        {
            const std::lock_guard lock(mutex_);
            // update_trust() ran during the handshake and removed this peer: the session
            // would have been closed had it been registered a moment earlier.
            revoked = trust_ != trust && trust_->find(peer) == nullptr;
            if (!revoked)
                sessions_.emplace(session.get(), session);
            stopping = stopping_;
        }
        if (revoked) {
            options_.logger.info("server: closing session of {}: no longer trusted",
                                 peer.short_hex());
            co_return;  // never run: dropping it closes the socket
        }
        if (stopping) {
            session->close(options_.drain_timeout);
        } else if (options_.on_session) {
            try {
                options_.on_session(session->handle());
            } catch (const std::exception& e) {
                options_.logger.error("server: on_session threw: {}", e.what());
            }
        }
        co_await session->run();
        const std::lock_guard lock(mutex_);
        sessions_.erase(session.get());
    }

    Executor executor_;
    ConnectionPlacement placement_;  // picked on strand_; counted on every connection's
    Executor strand_;                // acceptors and shutdown
    crypto::Identity identity_;
    std::shared_ptr<const crypto::TrustStore> trust_;  // guarded by mutex_
    std::shared_ptr<const Router> router_;
    ServerOptions options_;
    std::shared_ptr<Metrics> metrics_;
    protocol::ReplayCache replay_cache_;
    Admission admission_;

    mutable std::mutex mutex_;  // acceptors_, sessions_, trust_, flags, error_
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
    std::unordered_map<SessionImpl*, std::shared_ptr<SessionImpl>> sessions_;
    bool stopping_ = false;
    bool running_ = false;
    std::exception_ptr error_;

    std::atomic<std::size_t> live_tasks_{0};
    ConcurrentWakeChannel idle_;
};

}  // namespace detail

Server::Server(crypto::Identity identity, crypto::TrustStore trust, Router router,
               ServerOptions options)
    : contexts_(std::make_unique<detail::ServerContexts>(options.threading, options.threads)) {
    impl_ = std::make_shared<detail::ServerImpl>(
        contexts_->main_executor(), contexts_->pinned_executors(), std::move(identity),
        std::move(trust), std::move(router), std::move(options));
}

Server::Server(boost::asio::any_io_executor executor, crypto::Identity identity,
               crypto::TrustStore trust, Router router, ServerOptions options)
    // No io_contexts of its own to pin connections to: ServerOptions::threading does not apply
    // and every connection gets a strand on `executor` (server.hpp).
    : impl_(std::make_shared<detail::ServerImpl>(
          std::move(executor), std::vector<detail::Executor>{}, std::move(identity),
          std::move(trust), std::move(router), std::move(options))) {}

Server::~Server() {
    if (impl_)
        impl_->shutdown();
    impl_.reset();  // before the contexts: see ~ServerContexts
}

EndpointSpec Server::listen(std::string_view endpoint) {
    return impl_->listen(endpoint);
}

std::vector<EndpointSpec> Server::local_endpoints() const {
    return impl_->local_endpoints();
}

boost::asio::awaitable<void> Server::async_run() {
    if (contexts_ && contexts_->count() > 1) {
        // Whoever runs get_executor()'s context would leave the others without a thread.
        throw std::logic_error(
            "sdmp::Server::async_run(): this server has one io_context per thread "
            "(context_per_thread, threads > 1); use run()");
    }
    return detail::ServerImpl::run(impl_);
}

void Server::run() {
    if (!contexts_) {
        throw std::logic_error(
            "sdmp::Server::run() needs a server with its own io_context; use async_run()");
    }
    contexts_->run(detail::ServerImpl::run(impl_));
}

void Server::shutdown() {
    impl_->shutdown();
}

std::size_t Server::session_count() const noexcept {
    return impl_->session_count();
}

std::size_t Server::update_trust(crypto::TrustStore trust) {
    return impl_->update_trust(std::move(trust));
}

MetricsSnapshot Server::metrics() const {
    return impl_->metrics()->snapshot();
}

std::shared_ptr<Metrics> Server::metrics_registry() const noexcept {
    return impl_->metrics();
}

boost::asio::any_io_executor Server::get_executor() const noexcept {
    return impl_->executor();
}

}  // namespace sdmp
