// Client side: connect (TCP + initiator handshake + session) and a reconnecting client.
#include <random>
#include <stdexcept>

#include "detail/establish.hpp"
#include "detail/session_impl.hpp"
#include "detail/transport.hpp"
#include "sdmp/error.hpp"
#include "sdmp/framework/client.hpp"

namespace sdmp {

namespace asio = boost::asio;
using detail::Executor;
using detail::use_tuple;

namespace {

// Where to dial and whom to expect, from a Target and the trust store.
struct Resolved {
    std::string endpoint;
    crypto::Fingerprint peer;
};

Resolved resolve(const Target& target, const crypto::TrustStore& trust) {
    if (target.is_address()) {
        if (trust.find(target.fingerprint()) == nullptr) {
            // protocol.md §1: the initiator must know the responder's public identity.
            detail::throw_error(errc::unknown_peer, "connect " + target.endpoint() + ": peer " +
                                                        target.fingerprint().short_hex() +
                                                        " is not in the trust store");
        }
        return Resolved{target.endpoint(), target.fingerprint()};
    }
    const crypto::TrustedPeer* entry = trust.find(std::string_view(target.name()));
    if (entry == nullptr) {
        detail::throw_error(errc::unknown_peer,
                            "connect: " + target.to_string() + " is not in the trust store");
    }
    if (entry->address.empty()) {
        throw std::invalid_argument("connect: trust store entry " + target.to_string() +
                                    " has no address");
    }
    return Resolved{entry->address, entry->fingerprint};
}

}  // namespace

boost::asio::awaitable<Session> connect(boost::asio::any_io_executor executor, Target target,
                                        crypto::Identity identity, crypto::TrustStore trust,
                                        ClientOptions options) {
    const Resolved resolved = resolve(target, trust);
    const std::string& endpoint = resolved.endpoint;
    const EndpointSpec spec = EndpointSpec::parse(endpoint);
    auto metrics = options.metrics ? options.metrics : std::make_shared<Metrics>();

    // Everything of this connection runs on one strand, the handshake included: the `||`
    // inside run_handshake must not race with itself on a multi-threaded executor.
    const Executor strand = asio::make_strand(executor);
    detail::tcp::socket socket = co_await detail::tcp_connect(strand, spec);

    const detail::EstablishParams params{.handshake = options.handshake,
                                         .identity = identity,
                                         .trust = trust,
                                         .session = options.session,
                                         .router = options.router,
                                         .logger = options.logger,
                                         .metrics = metrics};
    detail::EstablishResult established = co_await asio::co_spawn(
        strand, detail::establish(socket, detail::Initiator{.responder = resolved.peer}, params),
        asio::use_awaitable);
    if (!established.session) {
        const detail::HandshakeOutcome& outcome = established.failure;
        if (outcome.refused_locally) {
            co_await asio::co_spawn(strand, detail::refuse(socket, options.handshake),
                                    asio::use_awaitable);
        }
        if (outcome.reason == protocol::HandshakeError::refused_by_peer) {
            metrics->handshake_refused_by_peer();
        } else if (outcome.refused_locally) {
            metrics->handshake_refused(protocol::to_string(outcome.reason));
        } else {
            metrics->handshake_failed();
        }
        options.logger.info("client: handshake with {} failed: {}", endpoint,
                            protocol::to_string(outcome.reason));
        detail::throw_error(
            outcome.error,
            "connect " + endpoint + " (" + std::string(protocol::to_string(outcome.reason)) + ")");
    }
    const std::shared_ptr<detail::SessionImpl> session = std::move(established.session);
    Session handle = session->handle();
    asio::co_spawn(strand, session->run(),
                   [session, logger = options.logger](std::exception_ptr error) {
                       if (!error)
                           return;
                       try {
                           std::rethrow_exception(error);
                       } catch (const std::exception& e) {
                           logger.error("client: session failed: {}", e.what());
                       }
                   });
    co_return handle;
}

// A plain function (not a coroutine): the default options are built here, outside any co_await
// expression of the caller (see client.hpp).
boost::asio::awaitable<Session> connect(boost::asio::any_io_executor executor, Target target,
                                        crypto::Identity identity, crypto::TrustStore trust) {
    return connect(std::move(executor), std::move(target), std::move(identity), std::move(trust),
                   ClientOptions{});
}

// -------------------------------------------------------------------------------------------------

namespace detail {

class ReconnectingClientImpl : public std::enable_shared_from_this<ReconnectingClientImpl> {
  public:
    ReconnectingClientImpl(Executor executor, Target target, crypto::Identity identity,
                           crypto::TrustStore trust, ClientOptions options,
                           ReconnectOptions reconnect)
        : executor_(executor),
          strand_(asio::make_strand(executor)),
          target_(std::move(target)),
          identity_(std::move(identity)),
          trust_(std::move(trust)),
          options_(std::move(options)),
          reconnect_(reconnect),
          random_(std::random_device{}()) {}

    static asio::awaitable<Session> session(std::shared_ptr<ReconnectingClientImpl> self) {
        co_return co_await asio::co_spawn(self->strand_, self->session_on_strand(),
                                          asio::use_awaitable);
    }

    void close() {
        asio::post(strand_, [self = shared_from_this()] {
            self->closed_ = true;
            if (self->session_)
                self->session_->close();
            self->session_.reset();
            // A connecting session() may be in an attempt or waiting out its backoff: end
            // either now.
            if (self->attempt_running_)
                self->connect_cancel_.emit(asio::cancellation_type::terminal);
            if (self->backoff_ != nullptr)
                self->backoff_->cancel();
            if (self->attempt_done_)
                self->attempt_done_->close();
        });
    }

    std::uint64_t connects() const noexcept { return connects_.load(); }

  private:
    // Strand only.
    asio::awaitable<Session> session_on_strand() {
        for (;;) {
            if (closed_)
                throw boost::system::system_error(asio::error::operation_aborted);
            if (session_ && session_->is_open())
                co_return *session_;
            if (!connecting_)
                break;
            // Another caller is connecting: wait for its attempt to end, then look again.
            const auto done = attempt_done_;
            co_await done->async_receive(use_tuple);
        }
        connecting_ = true;
        attempt_done_ = std::make_shared<WakeChannel>(strand_, 1);
        struct Finish {
            ReconnectingClientImpl* self;
            ~Finish() {
                self->connecting_ = false;
                if (self->attempt_done_)
                    self->attempt_done_->close();  // wakes every waiter
                self->attempt_done_.reset();
            }
        } finish{this};

        auto delay = reconnect_.initial_backoff;
        for (std::size_t attempt = 1;; ++attempt) {
            std::exception_ptr failure;
            try {
                // Spawned with its own cancellation slot, so that close() can end the attempt
                // (TCP connect or handshake) instead of waiting for its timeout. The signal is
                // emitted only while the attempt runs: after it, the handler the attempt left
                // in the slot refers to finished work.
                struct Running {
                    bool& flag;
                    explicit Running(bool& f) : flag(f) { flag = true; }
                    ~Running() { flag = false; }
                    Running(const Running&) = delete;
                    Running& operator=(const Running&) = delete;
                } running{attempt_running_};
                // That slot replaces the one this coroutine would pass on, so the caller's own
                // cancellation (a timeout around session(), a cancelled parent) is forwarded
                // into it, or the attempt would outlive a caller who gave up. co_spawn delivers
                // it on the strand, where the signal lives.
                asio::cancellation_slot caller =
                    (co_await asio::this_coro::cancellation_state).slot();
                if (caller.is_connected()) {
                    caller.assign([this](asio::cancellation_type type) {
                        if (attempt_running_)
                            connect_cancel_.emit(type);
                    });
                }
                Session fresh = co_await asio::co_spawn(
                    strand_, connect(executor_, target_, identity_, trust_, options_),
                    asio::bind_cancellation_slot(connect_cancel_.slot(), asio::use_awaitable));
                if (closed_) {
                    fresh.close();
                    throw boost::system::system_error(asio::error::operation_aborted);
                }
                session_ = fresh;
                connects_.fetch_add(1);
                co_return fresh;
            } catch (const boost::system::system_error& e) {
                // The code's message only: what() may carry Boost source locations.
                options_.logger.info("client: connect to {} failed (attempt {}): {}",
                                     target_.to_string(), attempt, e.code().message());
                failure = std::current_exception();
            }
            if (closed_)
                throw boost::system::system_error(asio::error::operation_aborted);
            if (reconnect_.max_attempts != 0 && attempt >= reconnect_.max_attempts)
                std::rethrow_exception(failure);
            // Exponential backoff with jitter, so clients do not reconnect in lockstep.
            std::uniform_real_distribution<double> factor(1.0 - reconnect_.jitter,
                                                          1.0 + reconnect_.jitter);
            const auto jittered = std::chrono::milliseconds(
                static_cast<std::int64_t>(static_cast<double>(delay.count()) * factor(random_)));
            Timer timer(strand_);
            timer.expires_after(jittered);
            {
                // close() cancels the wait (both run on the strand); the guard also clears the
                // pointer if this frame is destroyed while suspended.
                struct BackoffGuard {
                    Timer*& slot;
                    ~BackoffGuard() { slot = nullptr; }
                } guard{backoff_};
                backoff_ = &timer;
                co_await timer.async_wait(use_tuple);
            }
            if (closed_)
                throw boost::system::system_error(asio::error::operation_aborted);
            delay = std::min(reconnect_.max_backoff,
                             std::chrono::milliseconds(static_cast<std::int64_t>(
                                 static_cast<double>(delay.count()) * reconnect_.multiplier)));
        }
    }

    Executor executor_;
    Executor strand_;
    Target target_;
    crypto::Identity identity_;
    crypto::TrustStore trust_;
    ClientOptions options_;
    ReconnectOptions reconnect_;
    std::mt19937_64 random_;

    std::optional<Session> session_;
    bool connecting_ = false;
    bool closed_ = false;
    std::shared_ptr<WakeChannel> attempt_done_;  // closed when the current attempt ends
    Timer* backoff_ = nullptr;  // the backoff being waited out, if any (strand only)
    asio::cancellation_signal connect_cancel_;  // ends the attempt in progress (strand only)
    bool attempt_running_ = false;              // a connect attempt is awaited (strand only)
    std::atomic<std::uint64_t> connects_{0};
};

}  // namespace detail

ReconnectingClient::ReconnectingClient(boost::asio::any_io_executor executor, Target target,
                                       crypto::Identity identity, crypto::TrustStore trust,
                                       ClientOptions options, ReconnectOptions reconnect)
    : impl_(std::make_shared<detail::ReconnectingClientImpl>(std::move(executor), std::move(target),
                                                             std::move(identity), std::move(trust),
                                                             std::move(options), reconnect)) {}

ReconnectingClient::~ReconnectingClient() {
    if (impl_)
        impl_->close();
}

boost::asio::awaitable<Session> ReconnectingClient::session() {
    return detail::ReconnectingClientImpl::session(impl_);
}

boost::asio::awaitable<Reply> ReconnectingClient::call(std::string method, Bytes body) {
    return call(std::move(method), std::move(body), CallOptions{});
}

boost::asio::awaitable<Reply> ReconnectingClient::call(std::string method, Bytes body,
                                                       CallOptions options) {
    // A coroutine holding its own reference: `this` may go away while the call is pending.
    return [](std::shared_ptr<detail::ReconnectingClientImpl> impl, std::string m, Bytes b,
              CallOptions o) -> boost::asio::awaitable<Reply> {
        Session session = co_await detail::ReconnectingClientImpl::session(impl);
        co_return co_await session.call(std::move(m), std::move(b), std::move(o));
    }(impl_, std::move(method), std::move(body), std::move(options));
}

void ReconnectingClient::close() {
    impl_->close();
}

std::uint64_t ReconnectingClient::connects() const noexcept {
    return impl_->connects();
}

}  // namespace sdmp
