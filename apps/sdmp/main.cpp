// The `sdmp` command: key management, serving and calling (docs/apps.md).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <string>

#include "commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"sdmp: secure request/response between nodes that know each other's keys"};
    app.require_subcommand(1);
    // One line per usage error (the default adds a second "Run with --help" line).
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return std::string("sdmp: ") + e.what() + " (see --help)\n";
    });
    sdmp::apps::Action action;
    sdmp::apps::add_key_commands(app, action);
#ifdef SDMP_WITH_NETWORK
    sdmp::apps::add_serve_command(app, action);
    sdmp::apps::add_client_commands(app, action);
#endif
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; every other parse error is a usage error.
        const int code = app.exit(e);
        return code == 0 ? 0 : sdmp::apps::exit_code::usage;
    }
    try {
        return action ? action() : sdmp::apps::exit_code::usage;
    } catch (const std::exception& e) {
        // The outer boundary: anything unexpected becomes one line, never a stack of text.
        fmt::print(stderr, "sdmp: {}\n", e.what());
        return 1;
    }
}
