// Subcommands of the `sdmp` tool. Each registers itself on the CLI11 app and runs when
// chosen; a command returns the process exit code and prints one clear line on failure.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace sdmp::apps {

// Set by a subcommand's callback; main() runs it after parsing.
using Action = std::function<int()>;

void add_key_commands(CLI::App& app, Action& action);

}  // namespace sdmp::apps
