// TCP transport and handshake driver (protocol.md §3). One straight-line coroutine per step;
// deadlines are `||` races with a timer (the loser is cancelled through its cancellation slot).
#include "detail/transport.hpp"

#include <algorithm>
#include <array>
#include <variant>
#include <vector>

#include "sdmp/error.hpp"
#include "sdmp/framework/error.hpp"

namespace sdmp::detail {

using namespace boost::asio::experimental::awaitable_operators;

std::string format_endpoint(const tcp::endpoint& endpoint) {
    const auto address = endpoint.address();
    if (address.is_v6())
        return "[" + address.to_string() + "]:" + std::to_string(endpoint.port());
    return address.to_string() + ":" + std::to_string(endpoint.port());
}

asio::awaitable<tcp::socket> tcp_connect(Executor executor, EndpointSpec spec) {
    std::vector<tcp::endpoint> candidates;
    boost::system::error_code numeric_error;
    const auto address = asio::ip::make_address(spec.host, numeric_error);
    if (!numeric_error) {
        // A literal address needs no resolver: Asio's runs getaddrinfo on a thread of its own,
        // a round trip between threads that cost a few percent of a connect.
        candidates.emplace_back(address, spec.port);
    } else {
        tcp::resolver resolver(executor);
        auto [rec, results] = co_await resolver.async_resolve(
            spec.host, std::to_string(spec.port), tcp::resolver::numeric_service, use_tuple);
        if (rec)
            throw_error(rec, "resolve " + spec.to_string());
        for (const auto& entry : results)
            candidates.push_back(entry.endpoint());
    }

    tcp::socket socket(executor);
    boost::system::error_code last = asio::error::host_not_found;
    for (const auto& candidate : candidates) {
        boost::system::error_code ignored;
        socket.close(ignored);
        auto [ec] = co_await socket.async_connect(candidate, use_tuple);
        if (!ec) {
            // Requests are small and latency-bound; the writer already coalesces.
            socket.set_option(tcp::no_delay(true), ignored);
            co_return std::move(socket);
        }
        last = ec;
    }
    throw boost::system::system_error(last, "connect " + spec.to_string());
}

tcp::endpoint resolve_listen_endpoint(const EndpointSpec& spec) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(spec.host, ec);
    if (!ec)
        return {address, spec.port};
    asio::io_context io;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(spec.host, std::to_string(spec.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
        throw boost::system::system_error(ec ? ec : asio::error::host_not_found,
                                          "resolve " + spec.to_string());
    }
    return results.begin()->endpoint();
}

namespace {

asio::awaitable<void> drain_input(tcp::socket& socket, std::size_t max_bytes) {
    std::array<std::uint8_t, 4096> sink{};
    std::size_t total = 0;
    while (total < max_bytes) {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink), use_tuple);
        if (ec)
            co_return;  // end of stream (the normal case) or an error: either way, done
        total += n;
    }
}

asio::awaitable<void> send_refusal(tcp::socket& socket, std::size_t drain_bytes) {
    auto [ec, n] = co_await asio::async_write(
        socket, asio::buffer(protocol::k_nope.data(), protocol::k_nope.size()), use_tuple);
    if (ec)
        co_return;
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    co_await drain_input(socket, drain_bytes);
}

// I/O-level failure while exchanging connection messages.
struct IoFailure {
    std::error_code error;
};
using ExchangeResult = std::variant<protocol::action::Done, protocol::action::Failed, IoFailure>;
// Wrapped so that `||` does not flatten the variant into its own result.
struct Exchanged {
    ExchangeResult result;
};

// The exchange itself: ask the state machine, do what it says (protocol.md §3). A responder
// moves its deadline as the peer's connection message arrives (see run_handshake).
asio::awaitable<Exchanged> exchange(tcp::socket& socket, protocol::HandshakeState& state,
                                    HandshakeWatch& watch, const HandshakeOptions& options,
                                    bool responder) {
    const SteadyClock::time_point start = SteadyClock::now();
    const auto capped = [&](std::chrono::milliseconds limit) {
        return start + std::min(limit, options.timeout);
    };
    watch.set_deadline(responder ? capped(options.first_byte_timeout) : capped(options.timeout));
    std::size_t received = 0;
    // Reading more than asked is fine: bytes after the connection message come back as
    // Established::leftover (the peer's first records).
    std::array<std::uint8_t, 2048> buffer{};
    for (;;) {
        protocol::HandshakeAction action = state.next();
        if (auto* send = std::get_if<protocol::action::Send>(&action)) {
            auto [ec, n] = co_await asio::async_write(socket, asio::buffer(send->bytes), use_tuple);
            if (ec)
                co_return Exchanged{IoFailure{ec}};
        } else if (std::holds_alternative<protocol::action::Need>(action)) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_tuple);
            if (ec == asio::error::eof) {
                state.feed_eof();
            } else if (ec) {
                co_return Exchanged{IoFailure{ec}};
            } else {
                state.feed(ByteView(buffer.data(), n));
                received += n;
                if (received >= protocol::k_connection_message_size) {
                    watch.message_complete();
                    watch.set_deadline(capped(options.timeout));
                } else if (responder) {
                    watch.set_deadline(capped(options.message_timeout));
                }
            }
        } else if (auto* done = std::get_if<protocol::action::Done>(&action)) {
            co_return Exchanged{std::move(*done)};
        } else {
            co_return Exchanged{std::move(std::get<protocol::action::Failed>(action))};
        }
    }
}

std::error_code error_for(protocol::HandshakeError reason, bool refused_locally) {
    switch (reason) {
        case protocol::HandshakeError::refused_by_peer:
            return framework_errc::refused_by_peer;
        case protocol::HandshakeError::timeout:
            return framework_errc::handshake_timeout;
        case protocol::HandshakeError::truncated:
            return framework_errc::connection_closed;
        default:
            if (refused_locally)
                return errc::handshake_rejected;
            return framework_errc::connection_closed;
    }
}

}  // namespace

asio::awaitable<HandshakeOutcome> run_handshake(tcp::socket& socket,
                                                protocol::HandshakeState& state,
                                                const HandshakeOptions& options, bool responder,
                                                HandshakeWatch* watch) {
    HandshakeOutcome outcome;
    std::optional<HandshakeWatch> own_watch;
    if (watch == nullptr)
        watch = &own_watch.emplace(co_await asio::this_coro::executor);

    auto raced = co_await (exchange(socket, state, *watch, options, responder) || watch->expire());

    std::optional<protocol::action::Failed> failed;
    if (raced.index() == 1) {
        // protocol.md §3.6: a handshake that does not complete in time (or is evicted) is
        // refused like any other validation failure. The exchange was cancelled; the state
        // machine decides.
        outcome.evicted = watch->evicted();
        state.abort(protocol::HandshakeError::timeout);
        protocol::HandshakeAction action = state.next();
        if (auto* f = std::get_if<protocol::action::Failed>(&action)) {
            failed = std::move(*f);
        } else {
            failed = protocol::action::Failed{protocol::HandshakeError::timeout, {}};
        }
    } else {
        ExchangeResult& result = std::get<0>(raced).result;
        if (auto* done = std::get_if<protocol::action::Done>(&result)) {
            outcome.established = std::move(done->result);
            co_return outcome;
        }
        if (auto* io = std::get_if<IoFailure>(&result)) {
            // A reset or another socket error: nothing can be sent any more.
            outcome.reason = protocol::HandshakeError::truncated;
            outcome.error = io->error;
            boost::system::error_code ignored;
            socket.close(ignored);
            co_return outcome;
        }
        failed = std::move(std::get<protocol::action::Failed>(result));
    }

    outcome.reason = failed->reason;
    outcome.refused_locally = !failed->reply.empty();
    outcome.reply = std::move(failed->reply);
    outcome.error = error_for(failed->reason, outcome.refused_locally);
    if (!outcome.refused_locally) {
        boost::system::error_code ignored;
        socket.close(ignored);
    }
    co_return outcome;
}

asio::awaitable<void> refuse(tcp::socket& socket, const HandshakeOptions& options,
                             RefusalGate* gate) {
    boost::system::error_code ignored;
    if (gate != nullptr && !gate->try_enter()) {
        // Too many refusals are draining already: `nope` goes out only if the kernel takes it
        // at once, and the close may turn into a reset. Still nothing but `nope` is sent.
        // What the peer sent is read first, as far as it is there: closing with unread input
        // would turn the close into a reset.
        socket.non_blocking(true, ignored);
        socket.write_some(asio::buffer(protocol::k_nope.data(), protocol::k_nope.size()), ignored);
        socket.shutdown(tcp::socket::shutdown_send, ignored);
        std::array<std::uint8_t, 4096> sink{};
        for (std::size_t total = 0; total < options.refuse_drain_bytes;) {
            boost::system::error_code read_error;
            const std::size_t n = socket.read_some(asio::buffer(sink), read_error);
            if (read_error)
                break;
            total += n;
        }
        socket.close(ignored);
        co_return;
    }
    struct Leave {
        RefusalGate* gate;
        ~Leave() {
            if (gate != nullptr)
                gate->leave();
        }
    } const leave{gate};
    Timer timer(co_await asio::this_coro::executor);
    timer.expires_after(options.refuse_drain_time);
    // The write is inside the bound too: a peer that never reads cannot hold us.
    co_await (send_refusal(socket, options.refuse_drain_bytes) || timer.async_wait(use_tuple));
    socket.close(ignored);
}

}  // namespace sdmp::detail
