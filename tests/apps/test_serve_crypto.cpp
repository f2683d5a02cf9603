// `--crypto` of sdmp serve, call and ping through the real binary: a node on one provider
// serves clients on the other, and a name this build lacks is a usage error listing the ones
// it has.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "node.hpp"

using namespace sdmp::test;

namespace {

// A server key and a client key, trusting each other.
struct CryptoFixture {
    TempDir dir;
    Key server = make_key(dir, "server");
    Key client = make_key(dir, "client");
    std::string server_trust = dir.file("server.trust");
    std::string client_trust = dir.file("client.trust");

    CryptoFixture() {
        trust(server_trust, client, "client");
        trust(client_trust, server, "server");
    }

    // `sdmp serve ... --service echo` with `--crypto NAME`, or without the flag when `name` is
    // empty.
    ServeNode serve(const std::string& name) {
        std::vector<std::string> extra = {"--service", "echo"};
        if (!name.empty()) {
            extra.push_back("--crypto");
            extra.push_back(name);
        }
        return start_serve(server, server_trust, extra, dir.file("server.log"));
    }

    // `sdmp COMMAND --key ... --trust ... --peer PEER [--crypto NAME] ARGS...`, with `input`
    // on stdin.
    ProcessResult client_command(const std::string& command, const std::string& peer,
                                 const std::string& name, const std::vector<std::string>& args,
                                 const std::string& input = {}) const {
        std::vector<std::string> argv = {tool(),       command,  "--key", client.file, "--trust",
                                         client_trust, "--peer", peer,    "--timeout", "60"};
        if (!name.empty()) {
            argv.push_back("--crypto");
            argv.push_back(name);
        }
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, input);
    }
};

std::string random_bytes(std::size_t size) {
    std::mt19937_64 random(7);
    std::string bytes(size, '\0');
    for (auto& b : bytes)
        b = static_cast<char>(random() & 0xff);
    return bytes;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

#if defined(SDMP_HAVE_OPENSSL)

TEST_CASE("serve --crypto openssl answers call and ping made with the default provider",
          "[apps][crypto][interop]") {
    CryptoFixture f;
    ServeNode node = f.serve("openssl");
    const std::string log = node.process->stderr_text();
    INFO("server stderr:\n" << log);
    CHECK(contains(log, "crypto provider openssl-3"));

    // The default (Botan) client: a 2 MiB binary body from stdin, byte for byte, and a text.
    const std::string body = random_bytes(2u << 20);
    auto large = f.client_command("call", node.peer(), "", {"echo", "-"}, body);
    INFO("call stderr: " << large.err);
    CHECK(large.exit_code == 0);
    CHECK(large.out.size() == body.size());
    CHECK(large.out == body);
    auto text = f.client_command("call", node.peer(), "", {"echo", "hello from botan"});
    CHECK(text.exit_code == 0);
    CHECK(text.out == "hello from botan");

    // Explicitly named providers, the same one as the server's included.
    for (const std::string name : {"botan", "openssl"}) {
        auto named = f.client_command("call", node.peer(), name, {"echo", "via " + name});
        INFO(name << ": " << named.err);
        CHECK(named.exit_code == 0);
        CHECK(named.out == "via " + name);
    }
    auto ping = f.client_command("ping", node.peer(), "", {"--count", "3"});
    INFO("ping stderr: " << ping.err);
    CHECK(ping.exit_code == 0);
    CHECK(contains(ping.out, "ping 3:"));

    CHECK(node.process->terminate() == 0);
}

TEST_CASE("call --crypto openssl reaches a serve on the default provider",
          "[apps][crypto][interop]") {
    CryptoFixture f;
    ServeNode node = f.serve("");
    CHECK(contains(node.process->stderr_text(), "crypto provider botan-2"));
    const std::string body = random_bytes(2u << 20);
    auto large = f.client_command("call", node.peer(), "openssl", {"echo", "-"}, body);
    INFO("call stderr: " << large.err);
    CHECK(large.exit_code == 0);
    CHECK(large.out == body);
    auto ping = f.client_command("ping", node.peer(), "openssl", {"--count", "2"});
    INFO("ping stderr: " << ping.err);
    CHECK(ping.exit_code == 0);
    CHECK(node.process->terminate() == 0);
}

#endif  // SDMP_HAVE_OPENSSL

TEST_CASE("a --crypto name this build lacks is a usage error listing the available names",
          "[apps][crypto]") {
    CryptoFixture f;
    // Checked before anything is read or opened: the peer need not exist.
    const std::string peer = f.server.fingerprint + "@127.0.0.1:7";
    std::vector<std::string> missing = {"nosuch", "Botan", ""};
#if !defined(SDMP_HAVE_OPENSSL)
    missing.push_back("openssl");
#endif
    for (const std::string& name : missing) {
        INFO("--crypto '" << name << "'");
        const std::vector<ProcessResult> results = {
            run_process({tool(), "serve", "--key", f.server.file, "--trust", f.server_trust,
                         "--listen", "127.0.0.1:0", "--service", "echo", "--crypto", name}),
            f.client_command("call", peer, "", {"--crypto", name, "echo", "x"}),
            f.client_command("ping", peer, "", {"--crypto", name}),
        };
        for (const ProcessResult& r : results) {
            INFO(r.err);
            CHECK(r.exit_code == 2);
            CHECK(r.out.empty());
            CHECK(line_count(r.err) == 1);
            CHECK(contains(r.err, "--crypto"));
            CHECK(contains(r.err, "'" + name + "'"));
            CHECK(contains(r.err, "available: botan"));
#if defined(SDMP_HAVE_OPENSSL)
            CHECK(contains(r.err, "available: botan, openssl"));
#endif
        }
    }
}

TEST_CASE("the --help of serve, call and ping names --crypto and the providers built",
          "[apps][crypto]") {
    for (const std::string command : {"serve", "call", "ping"}) {
        auto help = run_process({tool(), command, "--help"});
        INFO(command << ":\n" << help.out);
        CHECK(help.exit_code == 0);
        CHECK(contains(help.out, "--crypto"));
#if defined(SDMP_HAVE_OPENSSL)
        CHECK(contains(help.out, "this build has: botan, openssl"));
#else
        CHECK(contains(help.out, "this build has: botan)"));
#endif
    }
}
