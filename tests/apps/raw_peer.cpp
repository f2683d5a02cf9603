#include "raw_peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include "sdmp/error.hpp"
#include "sdmp/protocol/handshake_error.hpp"

namespace sdmp::test {

namespace {

constexpr int k_safety_seconds = 60;

crypto::CryptoProvider& provider() {
    return crypto::default_provider();
}

// Reads on the socket give up after the safety net instead of hanging the suite.
void set_receive_timeout(int fd) {
    timeval tv{};
    tv.tv_sec = k_safety_seconds;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

sockaddr_in ipv4_endpoint(const std::string& address) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos)
        throw std::runtime_error("not HOST:PORT: " + address);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(std::stoul(address.substr(colon + 1))));
    if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1)
        throw std::runtime_error("not an IPv4 address: " + address);
    return sa;
}

void write_all(int fd, ByteView bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw std::runtime_error("raw peer: send failed");
        done += static_cast<std::size_t>(n);
    }
}

protocol::HandshakeConfig config_of(const NodeKeys& keys) {
    protocol::HandshakeConfig config;
    config.provider = &provider();
    config.self = &keys.identity;
    config.trust = &keys.trust;
    return config;
}

// Drives `state` over the blocking socket until it is established (protocol.md §3).
protocol::Established run_handshake(int fd, protocol::HandshakeState& state) {
    std::array<std::uint8_t, 512> buffer{};
    for (;;) {
        auto action = state.next();
        if (auto* send = std::get_if<protocol::action::Send>(&action)) {
            write_all(fd, send->bytes);
        } else if (std::holds_alternative<protocol::action::Need>(action)) {
            const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
            if (n <= 0)
                state.feed_eof();
            else
                state.feed(ByteView(buffer.data(), static_cast<std::size_t>(n)));
        } else if (auto* done = std::get_if<protocol::action::Done>(&action)) {
            return std::move(done->result);
        } else {
            throw std::runtime_error(std::string("raw peer: handshake failed: ") +
                                     std::string(protocol::to_string(
                                         std::get<protocol::action::Failed>(action).reason)));
        }
    }
}

}  // namespace

NodeKeys load_node_keys(const Key& key, const std::string& trust_store) {
    NodeKeys keys;
    if (auto error = crypto::load_identity(provider(), key.file, keys.identity))
        throw std::runtime_error(error.message);
    if (auto error = crypto::TrustStore::load(provider(), trust_store, keys.trust))
        throw std::runtime_error(error.message);
    return keys;
}

RawListener::RawListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa = ipv4_endpoint("127.0.0.1:0");
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(fd_, 16) != 0)
        throw std::runtime_error("raw listener: cannot listen on 127.0.0.1:0");
    socklen_t size = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &size);
    port_ = ntohs(sa.sin_port);
}

RawListener::~RawListener() {
    if (fd_ >= 0)
        ::close(fd_);
}

std::string RawListener::address() const {
    return "127.0.0.1:" + std::to_string(port_);
}

int RawListener::accept_connection() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, k_safety_seconds * 1000) != 1)
        throw std::runtime_error("raw listener: no connection within the safety net");
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
        throw std::runtime_error("raw listener: accept failed");
    set_receive_timeout(fd);
    return fd;
}

RawPeer RawPeer::connect(const NodeKeys& keys, const std::string& address,
                         const std::string& responder) {
    const auto fingerprint = crypto::Fingerprint::parse(responder);
    if (!fingerprint)
        throw std::runtime_error("raw peer: not a fingerprint: " + responder);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in to = ipv4_endpoint(address);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
        if (fd >= 0)
            ::close(fd);
        throw std::runtime_error("raw peer: cannot connect to " + address);
    }
    set_receive_timeout(fd);
    auto state = protocol::HandshakeState::initiator(config_of(keys), *fingerprint);
    try {
        return RawPeer(fd, run_handshake(fd, state));
    } catch (...) {
        ::close(fd);
        throw;
    }
}

RawPeer RawPeer::accept(RawListener& listener, const NodeKeys& keys) {
    const int fd = listener.accept_connection();
    auto state = protocol::HandshakeState::responder(config_of(keys));
    try {
        return RawPeer(fd, run_handshake(fd, state));
    } catch (...) {
        ::close(fd);
        throw;
    }
}

RawPeer::RawPeer(int fd, protocol::Established established)
    : fd_(fd),
      established_(std::move(established)),
      sealer_(provider(), established_.suite.aead, established_.keys.send_key),
      opener_(provider(), established_.suite.aead, established_.keys.receive_key) {
    if (!established_.leftover.empty())
        opener_.feed(established_.leftover);
}

RawPeer::RawPeer(RawPeer&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      established_(std::move(other.established_)),
      sealer_(std::move(other.sealer_)),
      opener_(std::move(other.opener_)) {}

RawPeer::~RawPeer() {
    if (fd_ >= 0)
        ::close(fd_);
}

Bytes RawPeer::seal_payload(ByteView payload, int level) {
    Bytes out;
    if (const std::error_code ec = sealer_.seal(payload, level, out))
        throw std::runtime_error("raw peer: cannot seal: " + ec.message());
    return out;
}

void RawPeer::send(ByteView bytes) {
    write_all(fd_, bytes);
}

bool RawPeer::receive(std::vector<protocol::Message>& out) {
    for (;;) {
        Bytes payload;
        const protocol::OpenResult opened = opener_.next(payload);
        if (opened.opened()) {
            if (const std::error_code decode = protocol::decode_messages(payload, out))
                throw std::runtime_error("raw peer: record does not decode: " + decode.message());
            return true;
        }
        if (opened.failed())
            throw std::runtime_error("raw peer: record does not open: " + opened.error.message());
        const MutableByteView space = opener_.prepare(16 * 1024);
        const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
        if (n <= 0)
            return false;
        opener_.commit(static_cast<std::size_t>(n));
    }
}

}  // namespace sdmp::test
