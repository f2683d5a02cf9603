// Connection establishment shared by the server and the client (see detail/establish.hpp).
#include "detail/establish.hpp"

#include <utility>

namespace sdmp::detail {

crypto::CryptoProvider& provider_of(const HandshakeOptions& options) {
    return options.provider != nullptr ? *options.provider : crypto::default_provider();
}

std::uint64_t replay_window_ms(const HandshakeOptions& options) {
    // The fallback is the documented default, not a copy of its value.
    const std::chrono::milliseconds skew =
        options.max_clock_skew.value_or(*HandshakeOptions{}.max_clock_skew);
    return 2 * static_cast<std::uint64_t>(skew.count());
}

asio::awaitable<EstablishResult> establish(tcp::socket& socket, Role role,
                                           const EstablishParams& params) {
    crypto::CryptoProvider& provider = provider_of(params.handshake);
    protocol::HandshakeConfig config;
    config.provider = &provider;
    config.self = &params.identity;
    config.trust = &params.trust;
    config.max_clock_skew = params.handshake.max_clock_skew;
    config.suites = params.handshake.suites;

    Responder* responder = std::get_if<Responder>(&role);
    if (responder != nullptr) {
        config.replay_cache = responder->replay_cache;
        config.accept_peer = std::move(responder->accept_peer);
    }
    auto state = responder != nullptr ? protocol::HandshakeState::responder(std::move(config))
                                      : protocol::HandshakeState::initiator(
                                            std::move(config), std::get<Initiator>(role).responder);

    EstablishResult result;
    HandshakeOutcome outcome =
        co_await run_handshake(socket, state, params.handshake, responder != nullptr,
                               responder != nullptr ? responder->watch : nullptr);
    if (!outcome.established) {
        result.failure = std::move(outcome);
        co_return result;
    }
    params.metrics->handshake_completed();

    SessionConfig session_config;
    session_config.options = params.session;
    session_config.router = params.router;
    session_config.logger = params.logger;
    session_config.metrics = params.metrics;
    session_config.provider = &provider;
    // The client owns its session through its handles; the server's belong to the server.
    session_config.close_on_last_handle = responder == nullptr;
    session_config.side = responder != nullptr ? "server" : "client";
    result.session = std::make_shared<SessionImpl>(
        std::move(socket), std::move(*outcome.established), std::move(session_config));
    co_return result;
}

}  // namespace sdmp::detail
