// Loading what serve, call and ping need from files and flags, with one clear line on failure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

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

// "trace" .. "off"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view text);

// Prints "sdmp COMMAND: message" on stderr and returns `code`.
int fail(std::string_view command, std::string_view message, int code);

}  // namespace sdmp::apps
