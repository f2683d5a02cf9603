// Helpers for service tests: a temporary directory, and calling a Router's handler directly
// with a Context that has no session (no network).
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "sdmp/framework/context.hpp"
#include "sdmp/framework/router.hpp"

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

// Calls `method` on `router` as peer `caller` would, and runs it to completion.
inline Reply invoke(const Router& router, const std::string& method, Bytes body,
                    const crypto::Fingerprint& caller = fingerprint_of(0xaa)) {
    const Handler* handler = router.find(method);
    if (handler == nullptr)
        throw std::runtime_error("no handler for " + method);
    auto peer = std::make_shared<PeerInfo>();
    peer->fingerprint = caller;
    Context context(nullptr, peer, 1, method, {}, std::nullopt);
    boost::asio::io_context io;
    auto result =
        boost::asio::co_spawn(io, (*handler)(context, std::move(body)), boost::asio::use_future);
    io.run();
    return result.get();
}

inline Reply invoke(const Router& router, const std::string& method, const std::string& body,
                    const crypto::Fingerprint& caller = fingerprint_of(0xaa)) {
    return invoke(router, method, bytes_of(body), caller);
}

}  // namespace sdmp::test
