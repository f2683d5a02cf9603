// Subcommands of the `sdmp` tool. Each registers itself on the CLI11 app and runs when
// chosen; a command returns the process exit code and prints one clear line on failure.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace sdmp::apps {

// Set by a subcommand's callback; main() runs it after parsing.
using Action = std::function<int()>;

// Exit codes of serve, call and ping (docs/apps.md "Exit codes").
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int status = 1;   // the peer answered with a non-ok status; or a local failure
inline constexpr int usage = 2;    // bad flags, unreadable key or trust store, bad peer
inline constexpr int refused = 3;  // the handshake was refused (`nope`) or failed authentication
inline constexpr int network = 4;  // cannot connect, connection lost, or timed out
}  // namespace exit_code

void add_key_commands(CLI::App& app, Action& action);
// serve, call and ping (built when the framework layer is).
void add_serve_command(CLI::App& app, Action& action);
void add_client_commands(CLI::App& app, Action& action);

}  // namespace sdmp::apps
