#include "node_files.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "commands.hpp"

namespace sdmp::apps {

int fail(std::string_view command, std::string_view message, int code) {
    fmt::print(stderr, "sdmp {}: {}\n", command, message);
    return code;
}

std::optional<NodeFiles> load_node_files(std::string_view command, const std::string& key_file,
                                         const std::string& trust_path) {
    auto& provider = crypto::default_provider();
    NodeFiles files;
    // The loaders' messages already name the file and the problem (crypto::FileError).
    if (auto error = crypto::load_identity(provider, key_file, files.identity)) {
        fail(command, error.message, exit_code::usage);
        return std::nullopt;
    }
    if (auto error = crypto::TrustStore::load(provider, trust_path, files.trust)) {
        fail(command, error.message, exit_code::usage);
        return std::nullopt;
    }
    return files;
}

crypto::CryptoProvider* find_crypto(std::string_view command, const std::string& name) {
    crypto::CryptoProvider* provider = crypto::find_provider(name);
    if (provider == nullptr) {
        fail(command,
             fmt::format("--crypto: no crypto provider '{}' in this build (available: {})", name,
                         fmt::join(crypto::provider_names(), ", ")),
             exit_code::usage);
    }
    return provider;
}

std::string crypto_help() {
    return fmt::format(
        "Crypto provider of the handshakes and records: botan or openssl (this build has: {})",
        fmt::join(crypto::provider_names(), ", "));
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
    static constexpr std::array<std::pair<std::string_view, LogLevel>, 6> levels = {{
        {"trace", LogLevel::trace},
        {"debug", LogLevel::debug},
        {"info", LogLevel::info},
        {"warn", LogLevel::warn},
        {"error", LogLevel::error},
        {"off", LogLevel::off},
    }};
    for (const auto& [name, level] : levels) {
        if (name == text)
            return level;
    }
    return std::nullopt;
}

}  // namespace sdmp::apps
