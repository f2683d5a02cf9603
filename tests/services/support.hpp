// Helpers for service tests: a temporary directory, and calling a Router's handler through a
// real loopback session.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "sdmp/sdmp.hpp"

namespace sdmp::test {

class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "sdmp-services-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    std::filesystem::path file(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

inline crypto::Fingerprint fingerprint_of(std::uint8_t fill) {
    crypto::Digest digest{};
    digest.fill(fill);
    return crypto::Fingerprint(digest);
}

// A real identity for a caller (the journal records who published what).
inline crypto::Identity make_caller() {
    return crypto::Identity::generate(crypto::default_provider());
}

inline const crypto::Identity& default_caller() {
    static const crypto::Identity caller = make_caller();
    return caller;
}

// Calls `method` on `router` as peer `caller` would: through a real session to a loopback
// server that serves the router, so the handler gets the Context the framework makes (an
// application cannot make one).
inline Reply invoke(const Router& router, const std::string& method, Bytes body,
                    const crypto::Identity& caller = default_caller()) {
    if (router.find(method) == nullptr)
        throw std::runtime_error("no handler for " + method);
    auto& provider = crypto::default_provider();
    static const crypto::Identity server_id = crypto::Identity::generate(provider);
    crypto::TrustStore server_trust;
    crypto::TrustStore client_trust;
    if (server_trust.add({caller.public_identity(), caller.fingerprint(), "caller", ""}) ||
        client_trust.add({server_id.public_identity(), server_id.fingerprint(), "server", ""})) {
        throw std::runtime_error("cannot build the loopback trust stores");
    }
    ServerOptions options;
    options.logger = Logger::null();
    Server server(server_id, server_trust, router, options);
    const std::string address = server.listen("127.0.0.1:0").to_string();
    std::thread serving([&server] { server.run(); });

    boost::asio::io_context io;
    auto call = [&]() -> boost::asio::awaitable<Reply> {
        ClientOptions client;
        client.logger = Logger::null();
        const Session session = co_await connect(co_await boost::asio::this_coro::executor,
                                                 Target::address(address, server_id.fingerprint()),
                                                 caller, client_trust, client);
        co_return co_await session.call(method, std::move(body));
    };
    auto result = boost::asio::co_spawn(io, call(), boost::asio::use_future);
    io.run();  // until the call is answered and the session closed
    server.shutdown();
    serving.join();
    return result.get();
}

inline Reply invoke(const Router& router, const std::string& method, const std::string& body,
                    const crypto::Identity& caller = default_caller()) {
    return invoke(router, method, bytes_of(body), caller);
}

}  // namespace sdmp::test
