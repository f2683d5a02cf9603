// Helpers for the framework's loopback tests: identities, a server on its own threads, and a
// runner that drives a coroutine on an io_context to completion and rethrows its exception.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <thread>

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "sdmp/protocol/handshake.hpp"
#include "sdmp/sdmp.hpp"

namespace fwtest {

namespace asio = boost::asio;
using asio::awaitable;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Only a safety net: a test that hangs fails instead of blocking the suite.
inline constexpr auto k_safety_net = 30s;

inline sdmp::crypto::CryptoProvider& provider() {
    return sdmp::crypto::default_provider();
}

inline sdmp::crypto::TrustedPeer peer_entry(const sdmp::crypto::Identity& id, std::string name) {
    return sdmp::crypto::TrustedPeer{id.public_identity(), id.fingerprint(), std::move(name), {}};
}

struct Keys {
    sdmp::crypto::Identity server = sdmp::crypto::Identity::generate(provider());
    sdmp::crypto::Identity client = sdmp::crypto::Identity::generate(provider());
    sdmp::crypto::Identity stranger = sdmp::crypto::Identity::generate(provider());
    sdmp::crypto::TrustStore server_trust;    // knows the client
    sdmp::crypto::TrustStore client_trust;    // knows the server
    sdmp::crypto::TrustStore stranger_trust;  // knows the server (the server does not know it)

    Keys() {
        REQUIRE_FALSE(server_trust.add(peer_entry(client, "client")));
        REQUIRE_FALSE(client_trust.add(peer_entry(server, "server")));
        REQUIRE_FALSE(stranger_trust.add(peer_entry(server, "server")));
    }
};

inline const Keys& keys() {
    static const Keys k;
    return k;
}

inline sdmp::Logger quiet() {
    return sdmp::Logger::null();
}

inline sdmp::ServerOptions server_options() {
    sdmp::ServerOptions o;
    o.threads = 2;
    o.logger = quiet();
    // Tests connect many sessions with the one test client identity; the per-peer cap has its
    // own test (test_abuse.cpp).
    o.max_sessions_per_peer = 0;
    return o;
}

inline sdmp::ClientOptions client_options() {
    sdmp::ClientOptions o;
    o.logger = quiet();
    return o;
}

// Runs `a` on `io` until it completes (other work on `io` may remain) and returns its value.
template <typename T>
T run(asio::io_context& io, awaitable<T> a) {
    std::optional<T> result;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e)
            result.emplace(std::move(value));
        done = true;
    });
    const auto give_up = std::chrono::steady_clock::now() + k_safety_net;
    while (!done) {
        if (io.stopped())
            io.restart();
        if (io.run_one_until(give_up) == 0 && std::chrono::steady_clock::now() >= give_up) {
            FAIL("coroutine did not complete within the safety net");
        }
    }
    if (error)
        std::rethrow_exception(error);
    return std::move(*result);
}

inline void run(asio::io_context& io, awaitable<void> a) {
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e) {
        error = e;
        done = true;
    });
    const auto give_up = std::chrono::steady_clock::now() + k_safety_net;
    while (!done) {
        if (io.stopped())
            io.restart();
        if (io.run_one_until(give_up) == 0 && std::chrono::steady_clock::now() >= give_up) {
            FAIL("coroutine did not complete within the safety net");
        }
    }
    if (error)
        std::rethrow_exception(error);
}

// A server on its own io_context and threads, listening on 127.0.0.1:0.
class TestServer {
  public:
    explicit TestServer(sdmp::Router router, sdmp::ServerOptions options = server_options(),
                        std::string listen = "127.0.0.1:0")
        : server_(keys().server, keys().server_trust, std::move(router), std::move(options)) {
        endpoint_ = server_.listen(listen).to_string();
        thread_ = std::thread([this] {
            try {
                server_.run();
            } catch (const std::exception& e) {
                error_ = e.what();
            }
        });
    }
    ~TestServer() { stop(); }
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    // Graceful shutdown; returns when run() has returned (every handler finished).
    void stop() {
        if (thread_.joinable()) {
            server_.shutdown();
            thread_.join();
        }
    }

    sdmp::Server& server() { return server_; }
    const std::string& endpoint() const { return endpoint_; }
    const std::string& error() const { return error_; }

  private:
    sdmp::Server server_;
    std::string endpoint_;
    std::thread thread_;
    std::string error_;
};

inline awaitable<sdmp::Session> connect_client(const TestServer& server,
                                               sdmp::ClientOptions options = client_options()) {
    co_return co_await sdmp::connect(
        co_await asio::this_coro::executor,
        sdmp::Target::address(server.endpoint(), keys().server.fingerprint()), keys().client,
        keys().client_trust, std::move(options));
}

// A thread-safe one-shot/one-count signal between a handler (server threads) and a test
// coroutine (the test's io_context).
using Signal = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

inline awaitable<void> wait(Signal& signal) {
    co_await signal.async_receive(asio::use_awaitable);
}

inline void notify(Signal& signal) {
    signal.try_send(boost::system::error_code{});
}

// Starts `client.session()` on `executor`, cancellable through `cancel`; when it completes,
// `aborted` tells whether it failed with operation_aborted (what ReconnectingClient::close()
// or a cancellation makes a waiting session() do) and `finished` is notified.
inline void watch_session(asio::any_io_executor executor, sdmp::ReconnectingClient& client,
                          bool& aborted, Signal& finished, asio::cancellation_slot cancel = {}) {
    asio::co_spawn(
        executor, client.session(),
        asio::bind_cancellation_slot(cancel, [&](std::exception_ptr error, sdmp::Session) {
            try {
                if (error)
                    std::rethrow_exception(error);
            } catch (const boost::system::system_error& e) {
                aborted = e.code() == asio::error::operation_aborted;
            }
            notify(finished);
        }));
}

// A never-completing wait for handlers that should only end by cancellation.
inline awaitable<void> wait_forever() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(std::chrono::hours(1));
    co_await timer.async_wait(asio::use_awaitable);
}

// Runs `io` until it has no work left: every client session closed once its last handle was
// dropped. Fails if that takes longer than the safety net.
inline void drain(asio::io_context& io) {
    io.restart();
    io.run_for(k_safety_net);
    CHECK(io.stopped());
}

// A blocking client socket speaking the raw protocol (for adversarial tests). Reads time out
// after the safety net instead of hanging the suite.
inline tcp::socket raw_connect(asio::io_context& io, const std::string& endpoint,
                               int receive_buffer = 0) {
    const auto spec = sdmp::EndpointSpec::parse(endpoint);
    tcp::socket socket(io);
    socket.open(tcp::v4());
    if (receive_buffer > 0)
        socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    timeval tv{};
    tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(k_safety_net).count();
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    socket.connect(tcp::endpoint(asio::ip::make_address(spec.host), spec.port));
    return socket;
}

struct ReadResult {
    sdmp::Bytes bytes;
    boost::system::error_code end;  // how the stream ended
};

// Reads until end of stream (or an error) and returns everything read.
inline ReadResult read_to_eof(tcp::socket& socket) {
    ReadResult result;
    std::array<std::uint8_t, 4096> buffer{};
    for (;;) {
        const std::size_t n = socket.read_some(asio::buffer(buffer), result.end);
        result.bytes.insert(result.bytes.end(), buffer.begin(),
                            buffer.begin() + static_cast<std::ptrdiff_t>(n));
        if (result.end)
            break;
    }
    return result;
}

inline const sdmp::Bytes& nope_bytes() {
    static const sdmp::Bytes nope = sdmp::bytes_of("nope");
    return nope;
}

template <typename Code>
bool has_code(const boost::system::system_error& e, Code code) {
    return e.code() == std::error_code(code);
}

// Completes the initiator's handshake over a blocking socket (a raw peer that then does
// whatever the test wants, e.g. never read).
inline sdmp::protocol::Established raw_handshake(tcp::socket& socket,
                                                 const sdmp::crypto::Identity& self,
                                                 const sdmp::crypto::TrustStore& trust,
                                                 const sdmp::crypto::Fingerprint& responder);

inline sdmp::protocol::HandshakeConfig handshake_config(const sdmp::crypto::Identity& self,
                                                        const sdmp::crypto::TrustStore& trust) {
    sdmp::protocol::HandshakeConfig config;
    config.provider = &provider();
    config.self = &self;
    config.trust = &trust;
    return config;
}

inline sdmp::protocol::Established raw_handshake(tcp::socket& socket,
                                                 const sdmp::crypto::Identity& self,
                                                 const sdmp::crypto::TrustStore& trust,
                                                 const sdmp::crypto::Fingerprint& responder) {
    auto state =
        sdmp::protocol::HandshakeState::initiator(handshake_config(self, trust), responder);
    std::array<std::uint8_t, 512> buffer{};
    for (;;) {
        auto action = state.next();
        if (auto* send = std::get_if<sdmp::protocol::action::Send>(&action)) {
            asio::write(socket, asio::buffer(send->bytes));
        } else if (std::holds_alternative<sdmp::protocol::action::Need>(action)) {
            boost::system::error_code ec;
            const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
            if (ec) {
                state.feed_eof();
            } else {
                state.feed(sdmp::ByteView(buffer.data(), n));
            }
        } else if (auto* done = std::get_if<sdmp::protocol::action::Done>(&action)) {
            return std::move(done->result);
        } else {
            FAIL("raw handshake failed: " << sdmp::protocol::to_string(
                     std::get<sdmp::protocol::action::Failed>(action).reason));
        }
    }
}

}  // namespace fwtest
