// The server: accept loops, admission limits, the responder handshake, sessions, and a
// structured shutdown (async_run completes only after every connection coroutine, and so every
// handler, has finished).
#include <algorithm>
#include <array>
#include <list>
#include <map>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "detail/handshake_table.hpp"
#include "detail/refusal_log.hpp"
#include "detail/session_impl.hpp"
#include "detail/source_limiter.hpp"
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
          pinned_(std::move(pinned)),
          pinned_load_(pinned_.size()),
          strand_(asio::make_strand(executor)),
          identity_(std::move(identity)),
          trust_(std::make_shared<const crypto::TrustStore>(std::move(trust))),
          router_(std::make_shared<const Router>(std::move(router))),
          options_(std::move(options)),
          metrics_(options_.metrics ? options_.metrics : std::make_shared<Metrics>()),
          provider_(options_.handshake.provider != nullptr ? options_.handshake.provider
                                                           : &crypto::default_provider()),
          // protocol.md §3.5 step 6: a message passes the clock check for 2 x skew of local
          // time, so values must be remembered at least that long.
          replay_cache_(
              2 * static_cast<std::uint64_t>(
                      options_.handshake.max_clock_skew.value_or(std::chrono::minutes(2)).count()),
              options_.replay_cache_capacity),
          sources_(options_.source_limits),
          handshakes_(options_.max_handshakes),
          refusal_gate_(options_.max_refusal_drains),
          refusal_log_(options_.logger),
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
        self->refusal_log_.flush();
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
            self->handshakes_.evict_all();
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

    static constexpr std::size_t k_not_pinned = static_cast<std::size_t>(-1);

    // context_per_thread: the io_context with the fewest connections; ties go round-robin, so
    // short connections (all counts 0) still spread. Runs on strand_ (every accept loop does).
    std::size_t pick_context() {
        if (pinned_.empty())
            return k_not_pinned;
        const std::size_t n = pinned_.size();
        std::size_t best = next_pinned_ % n;
        std::size_t best_load = pinned_load_[best].load(std::memory_order_relaxed);
        for (std::size_t i = 1; i < n && best_load != 0; ++i) {
            const std::size_t candidate = (next_pinned_ + i) % n;
            const std::size_t load = pinned_load_[candidate].load(std::memory_order_relaxed);
            if (load < best_load) {
                best = candidate;
                best_load = load;
            }
        }
        next_pinned_ = best + 1;
        return best;
    }

    asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
        auto self = shared_from_this();
        for (;;) {
            // Every connection gets its own strand, or (context_per_thread) one io_context that
            // only one thread runs, so it needs none (see server.hpp on threading). Chosen before
            // the accept: the socket is created on the connection's own context and stays there.
            const std::size_t slot = pick_context();
            const Executor connection_strand =
                slot == k_not_pinned ? Executor(asio::make_strand(executor_)) : pinned_[slot];
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
            if (slot != k_not_pinned)
                pinned_load_[slot].fetch_add(1, std::memory_order_relaxed);
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
                               if (slot != k_not_pinned)
                                   self->pinned_load_[slot].fetch_sub(1, std::memory_order_relaxed);
                               self->task_done();
                           });
        }
    }

    struct CountGuard {
        std::atomic<std::size_t>* counter;
        ~CountGuard() {
            if (counter != nullptr)
                counter->fetch_sub(1);
        }
        void release() {
            if (counter != nullptr)
                counter->fetch_sub(1);
            counter = nullptr;
        }
    };

    bool take_peer_slot(const crypto::Fingerprint& peer) {
        if (options_.max_sessions_per_peer == 0)
            return true;
        const std::lock_guard lock(mutex_);
        std::size_t& count = peer_sessions_[peer];
        if (count >= options_.max_sessions_per_peer)
            return false;
        ++count;
        return true;
    }
    void give_peer_slot(const crypto::Fingerprint& peer) {
        if (options_.max_sessions_per_peer == 0)
            return;
        const std::lock_guard lock(mutex_);
        const auto it = peer_sessions_.find(peer);
        if (it != peer_sessions_.end() && --it->second == 0)
            peer_sessions_.erase(it);
    }

    // Refuses with `nope` (protocol.md §3.6), logged at a bounded rate. The caller has given
    // back its admission slots: a refusal is not a connection being served.
    asio::awaitable<void> refuse(tcp::socket& socket, const std::string& remote,
                                 std::string_view cause) {
        metrics_->handshake_refused(cause);
        refusal_log_.refused(remote, cause);
        co_await detail::refuse(socket, options_.handshake, &refusal_gate_);
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

        // Admission limits. A refusal looks like any other: `nope` (protocol.md §3.6).
        CountGuard connection_slot{&connections_};
        if (connections_.fetch_add(1) + 1 > options_.max_sessions) {
            connection_slot.release();
            co_await refuse(socket, remote, "max_sessions");
            co_return;
        }
        // Per source before the handshake table, so a flooding source does not take slots
        // even for a moment.
        SourceSlot source_slot;
        if (remote_address) {
            switch (sources_.admit(*remote_address, source_slot.key)) {
                case SourceLimiter::Verdict::admitted:
                    source_slot.limiter = &sources_;
                    break;
                case SourceLimiter::Verdict::unlimited:
                    break;
                case SourceLimiter::Verdict::rate_limited:
                    connection_slot.release();
                    co_await refuse(socket, remote, "rate_limited");
                    co_return;
                case SourceLimiter::Verdict::too_many_handshakes:
                    connection_slot.release();
                    co_await refuse(socket, remote, "max_handshakes_per_source");
                    co_return;
            }
        }
        const auto watch = std::make_shared<HandshakeWatch>(co_await asio::this_coro::executor);
        if (handshakes_.enter(watch) == HandshakeTable::Admission::full) {
            source_slot.release();
            connection_slot.release();
            co_await refuse(socket, remote, "max_handshakes");
            co_return;
        }

        // This handshake keeps the store it started with, even if update_trust() swaps it.
        std::shared_ptr<const crypto::TrustStore> trust;
        {
            const std::lock_guard lock(mutex_);
            trust = trust_;
        }
        options_.logger.debug("server: handshake with {} started", remote);
        protocol::HandshakeConfig config;
        config.provider = provider_;
        config.self = &identity_;
        config.trust = trust.get();
        config.max_clock_skew = options_.handshake.max_clock_skew;
        config.replay_cache = &replay_cache_;
        config.suites = options_.handshake.suites;
        // protocol.md §3.5 step 8: a peer at max_sessions_per_peer is declined with `nope`.
        // The slot is taken here, so concurrent handshakes of one peer cannot overshoot.
        std::optional<crypto::Fingerprint> peer_slot;
        config.accept_peer = [&](const crypto::Fingerprint& fingerprint) {
            if (!take_peer_slot(fingerprint))
                return false;
            peer_slot = fingerprint;
            return true;
        };
        struct PeerSlotGuard {
            ServerImpl* server;
            std::optional<crypto::Fingerprint>* slot;
            ~PeerSlotGuard() {
                if (slot->has_value())
                    server->give_peer_slot(**slot);
            }
        } const peer_slot_guard{this, &peer_slot};
        auto state = protocol::HandshakeState::responder(std::move(config));
        HandshakeOutcome outcome =
            co_await run_handshake(socket, state, options_.handshake, true, watch.get());
        handshakes_.leave(*watch);
        source_slot.release();
        if (!outcome.established) {
            connection_slot.release();
            if (outcome.refused_locally) {
                // The cause stays local (protocol.md §3.6); the peer only sees `nope`.
                co_await refuse(socket, remote,
                                outcome.evicted ? std::string_view("evicted")
                                                : protocol::to_string(outcome.reason));
            } else {
                metrics_->handshake_failed();
                options_.logger.debug("server: handshake from {} failed: {}", remote,
                                      protocol::to_string(outcome.reason));
            }
            co_return;
        }
        metrics_->handshake_completed();

        SessionConfig session_config{options_.session, router_, options_.logger, metrics_,
                                     provider_,        false,   "server"};
        const crypto::Fingerprint peer = outcome.established->peer_fingerprint;
        auto session = std::make_shared<SessionImpl>(
            std::move(socket), std::move(*outcome.established), std::move(session_config));
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
    std::vector<Executor> pinned_;  // context_per_thread: one io_context's executor per thread
    std::vector<std::atomic<std::size_t>> pinned_load_;  // connections on each of them
    std::size_t next_pinned_ = 0;                        // strand_ only
    Executor strand_;                                    // acceptors and shutdown
    crypto::Identity identity_;
    std::shared_ptr<const crypto::TrustStore> trust_;  // guarded by mutex_
    std::shared_ptr<const Router> router_;
    ServerOptions options_;
    std::shared_ptr<Metrics> metrics_;
    crypto::CryptoProvider* provider_;
    protocol::ReplayCache replay_cache_;
    SourceLimiter sources_;
    HandshakeTable handshakes_;
    RefusalGate refusal_gate_;
    RefusalLog refusal_log_;

    mutable std::mutex mutex_;  // acceptors_, sessions_, trust_, flags, error_
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
    std::unordered_map<SessionImpl*, std::shared_ptr<SessionImpl>> sessions_;
    // Sessions (and handshakes past validation) per peer (max_sessions_per_peer).
    std::unordered_map<crypto::Fingerprint, std::size_t, crypto::FingerprintHash> peer_sessions_;
    bool stopping_ = false;
    bool running_ = false;
    std::exception_ptr error_;

    std::atomic<std::size_t> connections_{0};
    std::atomic<std::size_t> live_tasks_{0};
    ConcurrentWakeChannel idle_;
};

// The io_contexts of a server that owns them: one run by every thread (strand_per_session) or
// one per thread (context_per_thread).
class ServerContexts {
  public:
    ServerContexts(ThreadingModel model, std::size_t threads)
        : model_(model), threads_(std::max<std::size_t>(1, threads)) {
        if (model_ == ThreadingModel::context_per_thread) {
            // Hint 1: each is run by exactly one thread. Posting from other threads stays safe
            // (only the "unsafe" hints drop the scheduler's and reactor's locks).
            for (std::size_t i = 0; i < threads_; ++i)
                contexts_.push_back(std::make_unique<OwnedContext>(1));
        } else {
            contexts_.push_back(std::make_unique<OwnedContext>(static_cast<int>(threads_)));
        }
    }
    // Sockets, timers and handlers of one context can be owned by objects that another
    // context's pending handlers keep alive (the ServerImpl holds the acceptors on the first
    // context and sessions on every other). So every context is shut down, which destroys all
    // pending handlers and with them those objects, before any context is destroyed.
    ~ServerContexts() {
        for (auto& context : contexts_)
            context->shutdown();
        contexts_.clear();
    }
    ServerContexts(const ServerContexts&) = delete;
    ServerContexts& operator=(const ServerContexts&) = delete;

    std::size_t count() const noexcept { return contexts_.size(); }
    Executor main_executor() const { return contexts_.front()->get_executor(); }
    std::vector<Executor> pinned_executors() const {
        std::vector<Executor> out;
        if (model_ == ThreadingModel::context_per_thread) {
            for (const auto& context : contexts_)
                out.emplace_back(context->get_executor());
        }
        return out;
    }

    // Runs ServerImpl::run on the first context and every context on its threads (the calling
    // thread runs the first). Work guards keep a context without connections from returning
    // early; they are dropped when the run coroutine completes, after which each context
    // returns once the last of its work (posted completions, closing sockets) is done.
    void run(std::shared_ptr<ServerImpl> impl) {
        struct RunState {
            std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
            std::exception_ptr error;
        };
        auto state = std::make_shared<RunState>();
        for (auto& context : contexts_)
            state->guards.push_back(asio::make_work_guard(*context));
        const std::size_t per_context = model_ == ThreadingModel::context_per_thread ? 1 : threads_;
        std::vector<std::thread> threads;
        try {
            for (std::size_t c = 0; c < contexts_.size(); ++c) {
                for (std::size_t t = (c == 0 ? 1 : 0); t < per_context; ++t)
                    threads.emplace_back([context = contexts_[c].get()] { context->run(); });
            }
        } catch (...) {
            // A context without its thread could not serve: stop them all and report.
            for (auto& context : contexts_)
                context->stop();
            for (auto& thread : threads)
                thread.join();
            for (auto& guard : state->guards)
                guard.reset();
            for (auto& context : contexts_)
                context->restart();
            throw;
        }
        // Only once every thread runs (the guards keep them waiting): if one could not be
        // started, nothing was queued that a later run() would find.
        asio::co_spawn(*contexts_.front(), ServerImpl::run(std::move(impl)),
                       [state](std::exception_ptr e) {
                           state->error = e;
                           for (auto& guard : state->guards)
                               guard.reset();
                       });
        contexts_.front()->run();
        for (auto& thread : threads)
            thread.join();
        for (auto& context : contexts_)
            context->restart();
        if (state->error)
            std::rethrow_exception(state->error);
    }

  private:
    // execution_context::shutdown() is protected; the destructor above needs it.
    struct OwnedContext : asio::io_context {
        using asio::execution_context::shutdown;
        using asio::io_context::io_context;
    };

    ThreadingModel model_;
    std::size_t threads_;
    std::vector<std::unique_ptr<OwnedContext>> contexts_;
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
    contexts_->run(impl_);
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
