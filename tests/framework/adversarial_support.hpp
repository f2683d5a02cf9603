// Support for the adversarial tests: a raw peer that seals and opens records itself after a
// real handshake (so it can send what no well-behaved client would), a log sink tests can wait
// on, and small helpers shared by test_adversarial.cpp and test_abuse.cpp.
#pragma once

#include <algorithm>
#include <array>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "framework_test_util.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"

namespace fwtest {

namespace protocol = sdmp::protocol;

inline sdmp::Router echo_router() {
    sdmp::Router router;
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::move(body));
    });
    return router;
}

// A short handshake deadline: input shorter than the 8-byte prefix can only be judged then.
inline sdmp::ServerOptions adversarial_options() {
    auto options = server_options();
    options.handshake.timeout = std::chrono::milliseconds(500);
    return options;
}

// A well-behaved client: connects and makes one call.
inline void good_call(asio::io_context& io, const TestServer& server, const std::string& text) {
    bool ok = false;
    run(io, [&]() -> awaitable<void> {
        const sdmp::Session session = co_await connect_client(server);
        const sdmp::Reply reply = co_await session.call("echo", sdmp::bytes_of(text));
        ok = reply.is_ok() && reply.text() == text;
    }());
    CHECK(ok);
}

inline std::uint64_t total_refused(const sdmp::MetricsSnapshot& metrics) {
    std::uint64_t total = 0;
    for (const auto& [reason, count] : metrics.handshakes_refused)
        total += count;
    return total;
}

inline std::uint64_t refused(const sdmp::MetricsSnapshot& metrics, std::string_view reason) {
    const auto it = metrics.handshakes_refused.find(reason);
    return it == metrics.handshakes_refused.end() ? 0 : it->second;
}

inline sdmp::Bytes pseudo_random(std::size_t size, std::mt19937& random) {
    sdmp::Bytes out(size);
    for (auto& b : out)
        b = static_cast<std::uint8_t>(random());
    return out;
}

// The initiator's connection message of the test client, addressed to the test server.
inline sdmp::Bytes client_hello() {
    auto state = protocol::HandshakeState::initiator(
        handshake_config(keys().client, keys().client_trust), keys().server.fingerprint());
    auto action = state.next();
    auto* send = std::get_if<protocol::action::Send>(&action);
    REQUIRE(send != nullptr);
    return send->bytes;
}

// Like raw_connect, from a chosen loopback source address (each is its own source for the
// server's per-source limits).
inline tcp::socket raw_connect_from(asio::io_context& io, const std::string& endpoint,
                                    const std::string& source) {
    const auto spec = sdmp::EndpointSpec::parse(endpoint);
    tcp::socket socket(io);
    socket.open(tcp::v4());
    socket.bind(tcp::endpoint(asio::ip::make_address(source), 0));
    timeval tv{};
    tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(k_safety_net).count();
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    socket.connect(tcp::endpoint(asio::ip::make_address(spec.host), spec.port));
    return socket;
}

// The initiator's handshake over a blocking socket; nullopt when the server answers `nope`.
inline std::optional<protocol::Established> try_handshake(tcp::socket& socket) {
    auto state = protocol::HandshakeState::initiator(
        handshake_config(keys().client, keys().client_trust), keys().server.fingerprint());
    std::array<std::uint8_t, 512> buffer{};
    for (;;) {
        auto action = state.next();
        if (auto* send = std::get_if<protocol::action::Send>(&action)) {
            asio::write(socket, asio::buffer(send->bytes));
        } else if (std::holds_alternative<protocol::action::Need>(action)) {
            boost::system::error_code ec;
            const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
            if (ec) {
                state.feed_eof();
            } else {
                state.feed(sdmp::ByteView(buffer.data(), n));
            }
        } else if (auto* done = std::get_if<protocol::action::Done>(&action)) {
            return std::move(done->result);
        } else {
            const auto reason = std::get<protocol::action::Failed>(action).reason;
            CHECK(reason == protocol::HandshakeError::refused_by_peer);
            return std::nullopt;
        }
    }
}

// Limits for hand-made messages: far above what the server accepts.
inline protocol::MessageLimits unlimited_messages() {
    protocol::MessageLimits limits;
    limits.max_message_size = std::size_t{64} << 20;
    limits.max_method_size = 4096;
    return limits;
}

// A raw peer after a real handshake: seals and opens records itself (protocol.md §5), so it
// can send what no well-behaved client would.
class RawPeer {
  public:
    RawPeer(tcp::socket socket, protocol::Established established,
            protocol::RecordLimits send_limits = {})
        : socket_(std::move(socket)),
          established_(std::move(established)),
          sealer_(provider(), established_.suite.aead, established_.keys.send_key, send_limits),
          opener_(provider(), established_.suite.aead, established_.keys.receive_key) {
        if (!established_.leftover.empty())
            opener_.feed(established_.leftover);
    }
    // Connects and completes the handshake as the test client.
    static RawPeer connect(asio::io_context& io, const std::string& endpoint,
                           protocol::RecordLimits send_limits = {}) {
        tcp::socket socket = raw_connect(io, endpoint);
        auto established =
            raw_handshake(socket, keys().client, keys().client_trust, keys().server.fingerprint());
        return RawPeer(std::move(socket), std::move(established), send_limits);
    }

    sdmp::Bytes seal(const std::vector<protocol::Message>& messages, int level = 0) {
        sdmp::Bytes payload;
        for (const auto& message : messages)
            REQUIRE_FALSE(protocol::encode_message(message, payload, unlimited_messages()));
        return seal_payload(payload, level);
    }
    sdmp::Bytes seal_payload(sdmp::ByteView payload, int level = 0) {
        sdmp::Bytes out;
        REQUIRE_FALSE(sealer_.seal(payload, level, out));
        return out;
    }
    void send(const sdmp::Bytes& bytes) { asio::write(socket_, asio::buffer(bytes)); }

    // Reads until one record is opened and appends its messages; false at end of stream.
    bool receive(std::vector<protocol::Message>& out) {
        for (;;) {
            sdmp::Bytes payload;
            const protocol::OpenResult opened = opener_.next(payload);
            if (opened.opened()) {
                REQUIRE_FALSE(protocol::decode_messages(payload, out));
                return true;
            }
            REQUIRE(opened.need_more());
            const sdmp::MutableByteView space = opener_.prepare(16 * 1024);
            boost::system::error_code read_error;
            const std::size_t n =
                socket_.read_some(asio::buffer(space.data(), space.size()), read_error);
            if (read_error)
                return false;
            opener_.commit(n);
        }
    }

    // Reads exactly one record and appends its messages; `sealed_size` is its length prefix
    // (ciphertext and tag). False at end of stream.
    bool receive_record(std::vector<protocol::Message>& out, std::size_t& sealed_size) {
        std::array<std::uint8_t, protocol::k_record_prefix_size> prefix{};
        boost::system::error_code ec;
        asio::read(socket_, asio::buffer(prefix), ec);
        if (ec)
            return false;
        sealed_size = (std::size_t{prefix[0]} << 24) | (std::size_t{prefix[1]} << 16) |
                      (std::size_t{prefix[2]} << 8) | prefix[3];
        sdmp::Bytes record(prefix.begin(), prefix.end());
        record.resize(prefix.size() + sealed_size);
        asio::read(socket_, asio::buffer(record.data() + prefix.size(), sealed_size), ec);
        if (ec)
            return false;
        opener_.feed(record);
        sdmp::Bytes payload;
        REQUIRE(opener_.next(payload).opened());
        REQUIRE_FALSE(protocol::decode_messages(payload, out));
        return true;
    }

    // Calls echo and returns the answer's body (REQUIREs an ok response).
    std::string echo(std::uint64_t id, const std::string& text) {
        send(seal({protocol::Request{id, "echo", 0, {}, sdmp::bytes_of(text)}}));
        std::vector<protocol::Message> messages;
        REQUIRE(receive(messages));
        REQUIRE(messages.size() == 1);
        const auto* response = std::get_if<protocol::Response>(&messages.front());
        REQUIRE(response != nullptr);
        CHECK(response->id == id);
        CHECK(response->status == sdmp::Status::ok);
        return std::string(sdmp::as_string_view(response->body));
    }

    tcp::socket& socket() { return socket_; }

  private:
    tcp::socket socket_;
    protocol::Established established_;
    protocol::RecordSealer sealer_;
    protocol::RecordOpener opener_;
};

// A log sink the test can wait on (lines arrive from the server's threads).
class WatchSink : public sdmp::LogSink {
  public:
    void write(sdmp::LogLevel, std::string_view message) override {
        {
            const std::lock_guard lock(mutex_);
            lines_.emplace_back(message);
        }
        changed_.notify_all();
    }
    // How many lines contain `needle`, once at least `count` do (or the safety net passed).
    std::size_t wait_for(std::string_view needle, std::size_t count = 1) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, k_safety_net, [&] { return matching(needle) >= count; });
        return matching(needle);
    }

  private:
    std::size_t matching(std::string_view needle) const {
        return static_cast<std::size_t>(std::count_if(
            lines_.begin(), lines_.end(),
            [&](const std::string& line) { return line.find(needle) != std::string::npos; }));
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> lines_;
};

// The server's log line when a session ends because of `code` (protocol.md §5.6: close
// without `nope`).
template <typename Code>
std::string ends_because(Code code) {
    return "ends: " + std::error_code(code).message();
}

inline bool ended(const ReadResult& result) {
    return result.end == asio::error::eof || result.end == asio::error::connection_reset;
}

}  // namespace fwtest
