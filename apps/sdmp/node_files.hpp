// Loading what serve, call and ping need from files and flags, with one clear line on failure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/framework/log.hpp"

namespace sdmp::apps {

struct NodeFiles {
    crypto::Identity identity;
    crypto::TrustStore trust;
};

// Loads the private key file and the trust store (file or folder). On failure prints
// "sdmp COMMAND: <what is wrong with which file>" on stderr and returns nullopt.
std::optional<NodeFiles> load_node_files(std::string_view command, const std::string& key_file,
                                         const std::string& trust_path);

// `--crypto NAME` of serve, call and ping: the provider of the handshakes and records
// (crypto::find_provider). For a name this build does not have, prints "sdmp COMMAND: --crypto:
// ..." naming the ones it has, and returns nullptr (a usage error).
crypto::CryptoProvider* find_crypto(std::string_view command, const std::string& name);

// The help text of --crypto, naming the providers this build has.
std::string crypto_help();

// "trace" .. "off"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view text);

// Prints "sdmp COMMAND: message" on stderr and returns `code`.
int fail(std::string_view command, std::string_view message, int code);

}  // namespace sdmp::apps
