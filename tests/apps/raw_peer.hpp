// A peer that speaks the wire protocol itself over a blocking socket: the real handshake of
// protocol/ (as initiator or responder), then records it seals and opens itself, so a test of
// the real binaries can send what `sdmp` never would (docs/protocol.md §3, §5, §6).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "node.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/protocol/handshake.hpp"
#include "sdmp/protocol/message.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"

namespace sdmp::test {

// A node's key and trust store, loaded from the files `sdmp keygen` and `sdmp trust add` wrote.
struct NodeKeys {
    crypto::Identity identity;
    crypto::TrustStore trust;
};
NodeKeys load_node_keys(const Key& key, const std::string& trust_store);

// A listening socket on 127.0.0.1, on a port the kernel chose.
class RawListener {
  public:
    RawListener();
    ~RawListener();
    RawListener(const RawListener&) = delete;
    RawListener& operator=(const RawListener&) = delete;
    std::string address() const;  // 127.0.0.1:PORT
    // The next connection; throws std::runtime_error when none comes within the safety net.
    int accept_connection();

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

class RawPeer {
  public:
    // Connects to `address` (IPv4 HOST:PORT) and completes the handshake as the initiator,
    // addressed to `responder` (64 hex). Throws std::runtime_error when it fails.
    static RawPeer connect(const NodeKeys& keys, const std::string& address,
                           const std::string& responder);
    // Accepts one connection and completes the handshake as the responder.
    static RawPeer accept(RawListener& listener, const NodeKeys& keys);

    RawPeer(RawPeer&& other) noexcept;
    RawPeer& operator=(RawPeer&&) = delete;
    RawPeer(const RawPeer&) = delete;
    ~RawPeer();

    // One record holding `payload` (framed messages), compressed at `level`.
    Bytes seal_payload(ByteView payload, int level);
    // Writes all of `bytes`; throws std::runtime_error when the connection fails.
    void send(ByteView bytes);
    // Reads until the next record opens and appends its messages; false at end of stream (or
    // when the connection fails). Throws when a record does not open or decode.
    bool receive(std::vector<protocol::Message>& out);

  private:
    RawPeer(int fd, protocol::Established established);

    int fd_ = -1;
    protocol::Established established_;
    protocol::RecordSealer sealer_;
    protocol::RecordOpener opener_;
};

}  // namespace sdmp::test
