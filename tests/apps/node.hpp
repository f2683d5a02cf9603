// Helpers for end-to-end tests of `sdmp serve` / `sdmp call`: keys, trust stores and serving
// nodes started in the background on port 0.
#pragma once

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "process.hpp"

namespace sdmp::test {

inline const std::string& tool() {
    static const std::string path = SDMP_TOOL_PATH;
    return path;
}

inline std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
        s.pop_back();
    return s;
}

inline std::size_t line_count(const std::string& text) {
    std::size_t n = 0;
    for (char c : text)
        n += c == '\n' ? 1 : 0;
    return n;
}

struct Key {
    std::string file;         // private key
    std::string fingerprint;  // 64 hex
    std::string pub() const { return file + ".pub"; }
};

inline Key make_key(const TempDir& dir, const std::string& name) {
    Key key{dir.file(name + ".key"), {}};
    auto result = run_process({tool(), "keygen", "--out", key.file});
    if (result.exit_code != 0)
        throw std::runtime_error("keygen failed: " + result.err);
    key.fingerprint = trimmed(result.out);
    return key;
}

inline void trust(const std::string& store, const Key& key, const std::string& name = {}) {
    std::vector<std::string> args = {tool(), "trust", "add", "--store", store, key.pub()};
    if (!name.empty()) {
        args.push_back("--name");
        args.push_back(name);
    }
    auto result = run_process(args);
    if (result.exit_code != 0)
        throw std::runtime_error("trust add failed: " + result.err);
}

// A running `sdmp serve`, listening on 127.0.0.1 with a port the kernel chose.
struct ServeNode {
    std::unique_ptr<BackgroundProcess> process;
    std::string address;      // 127.0.0.1:PORT
    std::string fingerprint;  // from the `listening` line
    std::string peer() const { return fingerprint + "@" + address; }
};

// Starts `sdmp serve --key KEY --trust TRUST --listen 127.0.0.1:0 [--log-level LEVEL] EXTRA...`
// and waits for its one stdout line `listening HOST:PORT fingerprint FP`. An empty `log_level`
// leaves the flag out (the default, as a user starts it).
inline ServeNode start_serve(const Key& key, const std::string& trust_store,
                             const std::vector<std::string>& extra, const std::string& log_file,
                             const std::string& log_level = "debug") {
    std::vector<std::string> args = {tool(),    "serve",     "--key",    key.file,
                                     "--trust", trust_store, "--listen", "127.0.0.1:0"};
    if (!log_level.empty()) {
        args.push_back("--log-level");
        args.push_back(log_level);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    ServeNode node;
    node.process = std::make_unique<BackgroundProcess>(args, log_file);
    const std::string line = node.process->read_line();
    std::istringstream words(line);
    std::string listening, word;
    words >> listening >> node.address >> word >> node.fingerprint;
    if (listening != "listening" || word != "fingerprint" || node.fingerprint != key.fingerprint)
        throw std::runtime_error("unexpected first line from serve: " + line);
    return node;
}

// `sdmp serve` as a user starts it (echo, every option at its default) and two client keys,
// `client` and `other`, trusting it and trusted by it.
struct DefaultServeFixture {
    TempDir dir;
    Key server = make_key(dir, "server");
    Key client = make_key(dir, "client");
    Key other = make_key(dir, "other");
    std::string server_trust = dir.file("server.trust");
    std::string client_trust = dir.file("client.trust");
    ServeNode node;
    std::uint16_t port = 0;

    DefaultServeFixture() {
        trust(server_trust, client, "client");
        trust(server_trust, other, "other");
        trust(client_trust, server, "server");
        node = start_serve(server, server_trust, {"--service", "echo"}, dir.file("server.log"),
                           /*log_level=*/"");
        const auto colon = node.address.rfind(':');
        port = static_cast<std::uint16_t>(std::stoul(node.address.substr(colon + 1)));
    }
};

// `sdmp call --key KEY --trust TRUST --peer PEER METHOD [BODY]`.
inline ProcessResult call(const Key& key, const std::string& trust_store, const std::string& peer,
                          const std::string& method, const std::vector<std::string>& body = {},
                          const std::string& input = {}) {
    std::vector<std::string> args = {tool(),      "call",      "--key",  key.file,
                                     "--trust",   trust_store, "--peer", peer,
                                     "--timeout", "60",        method};
    args.insert(args.end(), body.begin(), body.end());
    return run_process(args, input);
}

}  // namespace sdmp::test
