// The `sdmp` command: key management, serving and calling (see README).
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <exception>

#include "commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"sdmp: secure request/response between nodes that know each other's keys"};
    app.require_subcommand(1);
    sdmp::apps::Action action;
    sdmp::apps::add_key_commands(app, action);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        return action ? action() : 2;
    } catch (const std::exception& e) {
        // The outer boundary: anything unexpected becomes one line, never a stack of text.
        fmt::print(stderr, "sdmp: {}\n", e.what());
        return 1;
    }
}
