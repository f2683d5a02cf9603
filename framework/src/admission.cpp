// Admission of a server's connections (see detail/admission.hpp).
#include "detail/admission.hpp"

#include <utility>

namespace sdmp::detail {

AdmissionTicket::~AdmissionTicket() {
    if (admission_ == nullptr)
        return;
    if (peer_)
        admission_->give_peer_slot(*peer_);
    source_.release();
    admission_->release_connection(*this);
}

Admission::Admission(const ServerOptions& options, std::shared_ptr<Metrics> metrics)
    : max_sessions_(options.max_sessions),
      max_sessions_per_peer_(options.max_sessions_per_peer),
      handshake_(options.handshake),
      metrics_(std::move(metrics)),
      sources_(options.source_limits),
      handshakes_(options.max_handshakes, options.handshake_eviction_age),
      refusal_gate_(options.max_refusal_drains),
      refusal_log_(options.logger) {}

asio::awaitable<bool> Admission::enter(tcp::socket& socket, const std::string& remote,
                                       std::optional<asio::ip::address> address,
                                       AdmissionTicket& ticket) {
    ticket.admission_ = this;
    ticket.connection_ = true;
    if (connections_.fetch_add(1) + 1 > max_sessions_) {
        release_connection(ticket);
        co_await refuse(socket, remote, "max_sessions");
        co_return false;
    }
    if (address) {
        switch (sources_.admit(*address, ticket.source_.key)) {
            case SourceLimiter::Verdict::admitted:
                ticket.source_.limiter = &sources_;
                break;
            case SourceLimiter::Verdict::unlimited:
                break;
            case SourceLimiter::Verdict::rate_limited:
                release_connection(ticket);
                co_await refuse(socket, remote, "rate_limited");
                co_return false;
            case SourceLimiter::Verdict::too_many_handshakes:
                release_connection(ticket);
                co_await refuse(socket, remote, "max_handshakes_per_source");
                co_return false;
        }
    }
    const Executor executor = co_await asio::this_coro::executor;
    ticket.watch_ = std::make_shared<HandshakeWatch>(executor, socket.native_handle());
    // No slot to take now is no reason to refuse: complete handshakes are about to finish and
    // incomplete ones age into eviction. Wait, as long as a connection message may take.
    const auto until = SteadyClock::now() + handshake_.message_timeout;
    if (co_await handshakes_.enter(ticket.watch_, until) == HandshakeTable::Admission::full) {
        ticket.source_.release();
        release_connection(ticket);
        co_await refuse(socket, remote, "max_handshakes");
        co_return false;
    }
    co_return true;
}

std::function<bool(const crypto::Fingerprint&)> Admission::peer_gate(AdmissionTicket& ticket) {
    return [this, &ticket](const crypto::Fingerprint& fingerprint) {
        if (!take_peer_slot(fingerprint))
            return false;
        ticket.peer_ = fingerprint;
        return true;
    };
}

void Admission::end_handshake(AdmissionTicket& ticket) {
    if (ticket.watch_)
        handshakes_.leave(*ticket.watch_);
    ticket.source_.release();
}

void Admission::release_connection(AdmissionTicket& ticket) {
    if (!ticket.connection_)
        return;
    ticket.connection_ = false;
    connections_.fetch_sub(1);
}

asio::awaitable<void> Admission::refuse(tcp::socket& socket, const std::string& remote,
                                        std::string_view cause) {
    metrics_->handshake_refused(cause);
    refusal_log_.refused(remote, cause);
    co_await detail::refuse(socket, handshake_, &refusal_gate_);
}

bool Admission::take_peer_slot(const crypto::Fingerprint& peer) {
    if (max_sessions_per_peer_ == 0)
        return true;
    const std::lock_guard lock(mutex_);
    std::size_t& count = peer_sessions_[peer];
    if (count >= max_sessions_per_peer_)
        return false;
    ++count;
    return true;
}

void Admission::give_peer_slot(const crypto::Fingerprint& peer) {
    if (max_sessions_per_peer_ == 0)
        return;
    const std::lock_guard lock(mutex_);
    const auto it = peer_sessions_.find(peer);
    if (it != peer_sessions_.end() && --it->second == 0)
        peer_sessions_.erase(it);
}

}  // namespace sdmp::detail
