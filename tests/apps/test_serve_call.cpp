// sdmp serve + sdmp call / ping through the real binary: echo, refusal, errors, exit codes.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <random>
#include <string>

#include "node.hpp"

using namespace sdmp::test;

namespace {

// A server node (echo) and a client key, trusting each other.
struct EchoFixture {
    TempDir dir;
    Key server = make_key(dir, "server");
    Key client = make_key(dir, "client");
    std::string server_trust = dir.file("server.trust");
    std::string client_trust = dir.file("client.trust");
    ServeNode node;

    EchoFixture() {
        trust(server_trust, client, "client");
        trust(client_trust, server, "server");
        node = start_serve(server, server_trust, {"--service", "echo"}, dir.file("server.log"));
    }
};

std::string random_bytes(std::size_t size) {
    std::mt19937_64 random(42);
    std::string bytes(size, '\0');
    for (auto& b : bytes)
        b = static_cast<char>(random() & 0xff);
    return bytes;
}

}  // namespace

TEST_CASE("serve prints one listening line and call echo returns the body") {
    EchoFixture f;
    INFO(f.node.process->stderr_text());
    CHECK(f.node.address.rfind("127.0.0.1:", 0) == 0);
    CHECK(f.node.address != "127.0.0.1:0");

    auto echo = call(f.client, f.client_trust, f.node.peer(), "echo", {"hello, sdmp"});
    CHECK(echo.exit_code == 0);
    CHECK(echo.out == "hello, sdmp");
    CHECK(echo.err.empty());

    // The same through the trust-store name (no address there: a clear usage error).
    auto by_name = call(f.client, f.client_trust, "server", "echo", {"x"});
    CHECK(by_name.exit_code == 2);
    CHECK(line_count(by_name.err) == 1);
    CHECK(by_name.err.find("server") != std::string::npos);

    CHECK(f.node.process->terminate() == 0);
}

TEST_CASE("call echo carries a 3 MiB binary body from stdin byte for byte") {
    EchoFixture f;
    const std::string body = random_bytes(3u << 20);
    auto echo = call(f.client, f.client_trust, f.node.peer(), "echo", {"-"}, body);
    INFO(echo.err);
    REQUIRE(echo.exit_code == 0);
    CHECK(echo.out.size() == body.size());
    CHECK(echo.out == body);
    CHECK(f.node.process->terminate() == 0);
}

TEST_CASE("an untrusted caller is refused with exit code 3 and one line") {
    EchoFixture f;
    Key stranger = make_key(f.dir, "stranger");
    auto refused = call(stranger, f.client_trust, f.node.peer(), "echo", {"hi"});
    CHECK(refused.exit_code == 3);
    CHECK(refused.out.empty());
    CHECK(line_count(refused.err) == 1);
    CHECK(refused.err.find("nope") != std::string::npos);

    // The server keeps serving trusted callers.
    CHECK(call(f.client, f.client_trust, f.node.peer(), "echo", {"still"}).out == "still");
    CHECK(f.node.process->terminate() == 0);
}

TEST_CASE("an unknown method exits 1 with one line naming the method and status") {
    EchoFixture f;
    auto unknown = call(f.client, f.client_trust, f.node.peer(), "no.such.method", {"{}"});
    CHECK(unknown.exit_code == 1);
    CHECK(unknown.out.empty());
    CHECK(line_count(unknown.err) == 1);
    CHECK(unknown.err.find("no.such.method") != std::string::npos);
    CHECK(unknown.err.find("unknown_method") != std::string::npos);
    CHECK(f.node.process->terminate() == 0);
}

TEST_CASE("ping prints handshake time and round-trip statistics") {
    EchoFixture f;
    auto ping = run_process({tool(), "ping", "--key", f.client.file, "--trust", f.client_trust,
                             "--peer", f.node.peer(), "--count", "4"});
    INFO(ping.err);
    REQUIRE(ping.exit_code == 0);
    CHECK(ping.out.find("handshake") != std::string::npos);
    CHECK(ping.out.find("ping 4:") != std::string::npos);
    for (const char* word : {"min", "avg", "max", "p50"})
        CHECK(ping.out.find(word) != std::string::npos);
    CHECK(f.node.process->terminate() == 0);
}

TEST_CASE("nothing listening is a network error (exit 4), one line") {
    TempDir dir;
    Key client = make_key(dir, "client");
    Key server = make_key(dir, "server");
    const auto store = dir.file("trust");
    trust(store, server);
    // Port 1 on loopback: nothing listens there without root.
    auto result = call(client, store, server.fingerprint + "@127.0.0.1:1", "echo", {"x"});
    CHECK(result.exit_code == 4);
    CHECK(line_count(result.err) == 1);
}

TEST_CASE("wrong files and flags give exit code 2 and one line naming the problem") {
    TempDir dir;
    Key client = make_key(dir, "client");
    Key server = make_key(dir, "server");
    const auto store = dir.file("trust");
    trust(store, server, "server");
    const auto peer = server.fingerprint + "@127.0.0.1:7";

    SECTION("missing key file") {
        Key missing{dir.file("absent.key"), {}};
        auto r = call(missing, store, peer, "echo");
        CHECK(r.exit_code == 2);
        CHECK(line_count(r.err) == 1);
        CHECK(r.err.find("absent.key") != std::string::npos);
    }
    SECTION("unreadable trust store") {
        auto r = call(client, dir.file("no-store"), peer, "echo");
        CHECK(r.exit_code == 2);
        CHECK(line_count(r.err) == 1);
        CHECK(r.err.find("no-store") != std::string::npos);
    }
    SECTION("malformed FP@HOST:PORT") {
        for (const std::string& bad :
             std::vector<std::string>{"abc@127.0.0.1:7", server.fingerprint + "@127.0.0.1",
                                      server.fingerprint + "@127.0.0.1:99999", "nobody"}) {
            auto r = call(client, store, bad, "echo");
            INFO(bad << " -> " << r.err);
            CHECK(r.exit_code == 2);
            CHECK(line_count(r.err) == 1);
            CHECK(r.err.find(bad) != std::string::npos);
        }
    }
    SECTION("peer not in the trust store") {
        auto r = call(client, store, client.fingerprint + "@127.0.0.1:7", "echo");
        CHECK(r.exit_code == 2);
        CHECK(line_count(r.err) == 1);
        CHECK(r.err.find("not in the trust store") != std::string::npos);
    }
    SECTION("missing required flag") {
        auto r = run_process({tool(), "call", "--key", client.file, "echo"});
        CHECK(r.exit_code == 2);
        CHECK(line_count(r.err) == 1);
    }
    SECTION("serve: kv without --data, and a private key readable by others") {
        auto no_data = run_process({tool(), "serve", "--key", server.file, "--trust", store,
                                    "--listen", "127.0.0.1:0", "--service", "kv"});
        CHECK(no_data.exit_code == 2);
        CHECK(line_count(no_data.err) == 1);
        CHECK(no_data.err.find("--data") != std::string::npos);

        REQUIRE(chmod(server.file.c_str(), 0644) == 0);
        auto open_key = run_process({tool(), "serve", "--key", server.file, "--trust", store,
                                     "--listen", "127.0.0.1:0", "--service", "echo"});
        CHECK(open_key.exit_code == 2);
        CHECK(line_count(open_key.err) == 1);
        CHECK(open_key.err.find("server.key") != std::string::npos);
    }
}

TEST_CASE("every command has --help") {
    for (const auto& command : std::vector<std::vector<std::string>>{
             {"serve"}, {"call"}, {"ping"}, {"keygen"}, {"id"}, {"trust"}, {"trust", "add"}}) {
        std::vector<std::string> args = {tool()};
        args.insert(args.end(), command.begin(), command.end());
        args.push_back("--help");
        auto help = run_process(args);
        INFO(command.back());
        CHECK(help.exit_code == 0);
        CHECK(help.out.find("--help") != std::string::npos);
    }
    auto call_help = run_process({tool(), "call", "--help"});
    CHECK(call_help.out.find("Exit codes") != std::string::npos);
}

TEST_CASE("serve exits 0 on SIGINT as on SIGTERM") {
    EchoFixture f;
    REQUIRE(call(f.client, f.client_trust, f.node.peer(), "echo", {"x"}).exit_code == 0);
    f.node.process->send_signal(SIGINT);
    CHECK(f.node.process->wait() == 0);
}
