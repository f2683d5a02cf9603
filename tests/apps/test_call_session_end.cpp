// `sdmp call` against a peer whose session ends under the call: a connection failure, exit 4
// (docs/apps.md), whatever the session's error code. The peer is this test, speaking the
// protocol itself, so it can send what `sdmp serve` never would.
#include <catch2/catch.hpp>
#include <string>
#include <variant>
#include <vector>

#include "node.hpp"
#include "raw_peer.hpp"

using namespace sdmp::test;
namespace protocol = sdmp::protocol;

namespace {

// A client key and a raw responder key that trust each other.
struct RawResponderFixture {
    TempDir dir;
    Key server = make_key(dir, "server");
    Key client = make_key(dir, "client");
    std::string server_trust = dir.file("server.trust");
    std::string client_trust = dir.file("client.trust");
    RawListener listener;

    RawResponderFixture() {
        trust(server_trust, client, "client");
        trust(client_trust, server, "server");
    }

    // `sdmp call ... echo BODY` to the raw responder, in the background.
    BackgroundProcess start_call(const std::string& body) {
        return BackgroundProcess(
            {tool(), "call", "--key", client.file, "--trust", client_trust, "--peer",
             server.fingerprint + "@" + listener.address(), "--timeout", "60", "echo", body},
            dir.file("call.err"));
    }

    // Accepts the call's connection and reads until its request arrives.
    RawPeer accept_request() {
        RawPeer peer = RawPeer::accept(listener, load_node_keys(server, server_trust));
        std::vector<protocol::Message> received;
        while (received.empty() || !std::holds_alternative<protocol::Request>(received.back()))
            REQUIRE(peer.receive(received));
        return peer;
    }
};

}  // namespace

TEST_CASE("sdmp call exits 4 when the answer comes in a record over the size limit",
          "[apps][call]") {
    RawResponderFixture f;
    BackgroundProcess caller = f.start_call("over the limit");
    {
        RawPeer peer = f.accept_request();
        // A length prefix far above any record limit (protocol.md §5.5): the caller's session
        // closes on it. Before the fix `sdmp call` blamed the request (exit 2).
        const std::uint8_t prefix[] = {0xff, 0xff, 0xff, 0xf0};
        peer.send(sdmp::ByteView(prefix, sizeof prefix));
        const int code = caller.wait();
        INFO("call stderr: " << caller.stderr_text());
        CHECK(code == 4);
        CHECK(caller.stderr_text().find("closed before the answer") != std::string::npos);
    }
}

TEST_CASE("sdmp call exits 4 when the connection is cut under the call", "[apps][call]") {
    RawResponderFixture f;
    BackgroundProcess caller = f.start_call("cut");
    {
        RawPeer peer = f.accept_request();
    }  // closed without an end envelope (protocol.md §6.6): a cut, not a graceful end
    const int code = caller.wait();
    INFO("call stderr: " << caller.stderr_text());
    CHECK(code == 4);
    CHECK(caller.stderr_text().find("closed before the answer") != std::string::npos);
}
