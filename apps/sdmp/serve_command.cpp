// sdmp serve: one node serving echo, kv and/or journal until SIGINT/SIGTERM (docs/apps.md).
#include <fmt/core.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "node_files.hpp"
#include "sdmp/framework/server.hpp"
#include "sdmp/framework/session_set.hpp"
#include "sdmp/services/echo.hpp"
#include "sdmp/services/journal_service.hpp"
#include "sdmp/services/kv_service.hpp"
#include "sdmp/services/peer_address.hpp"
#include "sdmp/services/ping.hpp"
#include "trust_reload.hpp"

namespace sdmp::apps {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using services::JournalService;
using services::KvService;

constexpr std::string_view k_command = "serve";

struct ServeArgs {
    std::string key;
    std::string trust;
    std::string listen;
    std::vector<std::string> services;
    std::string data;
    std::vector<std::string> peers;
    std::size_t threads = 2;
    std::string log_level = "info";
    double sync_interval = 10.0;
    std::string crypto = "botan";
};

// Everything one serving node owns. Members are destroyed in reverse order: the services
// after the server that calls them, the io_context last.
struct Node {
    asio::io_context io;
    std::shared_ptr<SessionSet> sessions = std::make_shared<SessionSet>();
    std::shared_ptr<TrustGate> gate;
    std::shared_ptr<KvService> kv;
    std::shared_ptr<JournalService> journal;
    std::unique_ptr<Server> server;
    Logger logger;
};

// SIGINT/SIGTERM: graceful shutdown. SIGHUP: trust reload. Runs on a strand of its own, so
// cancel() (posted there) never races with a pending wait.
asio::awaitable<void> handle_signals(Node& node, asio::signal_set& signals,
                                     const std::string& trust_path) {
    for (;;) {
        auto [ec, signal] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec)
            co_return;  // cancelled: the server has finished
        if (signal == SIGHUP) {
            const auto reload = reload_trust(trust_path, *node.server, *node.gate, *node.sessions);
            if (!reload.error.empty()) {
                node.logger.error("trust reload failed, keeping the current store: {}",
                                  reload.error);
            } else {
                node.logger.info(
                    "trust store reloaded: {} peers; closed {} sessions of removed peers{}",
                    reload.peers, reload.closed,
                    reload.handshakes_updated ? ""
                                              : " (new handshakes still use the startup store)");
            }
            continue;
        }
        node.logger.info("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
        node.server->shutdown();
    }
}

asio::awaitable<void> serve_until_shutdown(Node& node, asio::signal_set& signals,
                                           asio::any_io_executor signal_strand) {
    co_await node.server->async_run();  // every session drained and closed
    if (node.journal)
        co_await node.journal->stop();
    asio::post(signal_strand, [&signals] { signals.cancel(); });
}

// A connection is a descriptor, and the soft limit a process starts with (1,024 on most systems
// and under systemd) is far below max_sessions: raise it to the hard limit, as Go's runtime does,
// and say so in one line when even that cannot hold every session.
void raise_descriptor_limit(const Logger& logger, std::size_t max_sessions) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            limit = raised;
    }
    // Listeners, the journal, logs and the replay of refusals need a few dozen more.
    constexpr std::size_t k_reserve = 64;
    if (limit.rlim_cur != RLIM_INFINITY && max_sessions + k_reserve > limit.rlim_cur) {
        logger.warn("open-file limit {} is below max_sessions {} plus {} for the process itself",
                    static_cast<unsigned long long>(limit.rlim_cur), max_sessions, k_reserve);
    }
}

int serve(const ServeArgs& args) {
    // Flags first, files next: every problem is one line naming it.
    const std::set<std::string> wanted(args.services.begin(), args.services.end());
    if (wanted.size() != args.services.size())
        return fail(k_command, "each --service may be given once", exit_code::usage);
    const bool needs_data = wanted.contains("kv") || wanted.contains("journal");
    if (needs_data && args.data.empty())
        return fail(k_command, "--service kv and --service journal need --data DIR",
                    exit_code::usage);
    if (!args.peers.empty() && !wanted.contains("journal"))
        return fail(k_command, "--peer is only used with --service journal", exit_code::usage);
    std::string endpoint_error;
    if (!parse_endpoint(args.listen, &endpoint_error))
        return fail(k_command, fmt::format("--listen: {}", endpoint_error), exit_code::usage);
    const auto level = parse_log_level(args.log_level);
    if (!level)
        return fail(k_command, fmt::format("--log-level: unknown level '{}'", args.log_level),
                    exit_code::usage);
    crypto::CryptoProvider* const provider = find_crypto(k_command, args.crypto);
    if (provider == nullptr)
        return exit_code::usage;

    auto files = load_node_files(k_command, args.key, args.trust);
    if (!files)
        return exit_code::usage;
    std::vector<services::PeerAddress> peers;
    for (const auto& text : args.peers) {
        std::string error;
        auto peer = services::parse_peer_address(text, files->trust, error);
        if (!peer)
            return fail(k_command, fmt::format("--peer: {}", error), exit_code::usage);
        peers.push_back(std::move(*peer));
    }
    if (needs_data) {
        std::error_code ec;
        fs::create_directories(args.data, ec);
        if (ec || !fs::is_directory(args.data))
            return fail(k_command,
                        fmt::format("--data {}: cannot create the directory: {}", args.data,
                                    ec ? ec.message() : "not a directory"),
                        exit_code::usage);
    }

    Node node;
    node.logger = Logger(stderr_sink(), *level);
    node.logger.info("crypto provider {}", provider->name());
    node.gate = std::make_shared<TrustGate>(files->trust);
    Router router;
    services::add_ping(router);
    try {
        if (wanted.contains("echo"))
            services::add_echo(router);
        if (wanted.contains("kv")) {
            node.kv = KvService::open(fs::path(args.data) / "kv.sqlite", {}, node.logger);
            node.kv->add_to(router);
        }
        if (wanted.contains("journal")) {
            services::JournalOptions options;
            options.logger = node.logger;
            options.sync_interval =
                std::chrono::milliseconds(static_cast<std::int64_t>(args.sync_interval * 1000.0));
            node.journal = JournalService::open(
                node.io.get_executor(), fs::path(args.data) / "journal.sqlite",
                files->identity.fingerprint(), node.sessions, std::move(options));
            node.journal->add_to(router);
        }
    } catch (const services::StoreError& e) {
        return fail(k_command, e.what(), exit_code::status);
    }
    // The journal's outgoing sessions serve the same methods, so peers can call back on them.
    const auto client_router = std::make_shared<const Router>(router);

    ServerOptions options;
    options.handshake.provider = provider;
    options.threads = args.threads;
    options.logger = node.logger;
    raise_descriptor_limit(node.logger, options.max_sessions);
    options.on_session = [sessions = node.sessions, gate = node.gate,
                          logger = node.logger](const Session& session) {
        // Added before the check, so a concurrent trust reload cannot miss it.
        sessions->add(session);
        if (!gate->trusts(session.peer().fingerprint)) {
            logger.info("closing session of {}: no longer trusted",
                        session.peer().fingerprint.short_hex());
            sessions->remove(session);
            session.abort();
            return;
        }
        logger.info("session with {} from {}", session.peer().fingerprint.short_hex(),
                    session.peer().remote_endpoint);
    };
    node.server = std::make_unique<Server>(node.io.get_executor(), files->identity, files->trust,
                                           std::move(router), std::move(options));
    EndpointSpec bound;
    try {
        bound = node.server->listen(args.listen);
    } catch (const boost::system::system_error& e) {
        return fail(k_command,
                    fmt::format("cannot listen on {}: {}", args.listen, e.code().message()),
                    exit_code::status);
    } catch (const std::invalid_argument& e) {
        return fail(k_command, fmt::format("--listen: {}", e.what()), exit_code::usage);
    }
    for (auto& peer : peers) {
        ClientOptions client;
        client.handshake.provider = provider;
        client.router = client_router;
        client.logger = node.logger;
        node.journal->add_peer(std::move(peer), files->identity, files->trust, std::move(client));
    }

    // Signals are caught by Asio from here on (no default action kills the process).
    const auto signal_strand = asio::make_strand(node.io);
    asio::signal_set signals(signal_strand, SIGINT, SIGTERM, SIGHUP);
    std::signal(SIGPIPE, SIG_IGN);
    asio::co_spawn(signal_strand, handle_signals(node, signals, args.trust),
                   [logger = node.logger](std::exception_ptr error) {
                       if (!error)
                           return;
                       try {
                           std::rethrow_exception(error);
                       } catch (const std::exception& e) {
                           logger.error("signal handling failed: {}", e.what());
                       }
                   });
    int result = exit_code::ok;
    asio::co_spawn(node.io, serve_until_shutdown(node, signals, signal_strand),
                   [&node, &result](std::exception_ptr error) {
                       if (error) {
                           result = exit_code::status;
                           try {
                               std::rethrow_exception(error);
                           } catch (const std::exception& e) {
                               node.logger.error("server failed: {}", e.what());
                           }
                       }
                       // Everything has drained; anything left (a peer's lingering close) is
                       // cut short.
                       node.io.stop();
                   });

    // The one line on stdout, once connections are accepted (the socket listens already;
    // the accept loops start with the threads below).
    fmt::print("listening {} fingerprint {}\n", bound.to_string(),
               files->identity.fingerprint().hex());
    std::fflush(stdout);

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < args.threads; ++i)
        threads.emplace_back([&node] { node.io.run(); });
    node.io.run();
    for (auto& thread : threads)
        thread.join();
    node.logger.info("stopped");
    return result;
}

}  // namespace

void add_serve_command(CLI::App& app, Action& action) {
    auto args = std::make_shared<ServeArgs>();
    auto* cmd = app.add_subcommand(
        "serve",
        "Serve echo, kv and/or journal to trusted peers until SIGINT/SIGTERM; SIGHUP reloads "
        "the trust store");
    cmd->add_option("--key", args->key, "Private key file of this node")->required();
    cmd->add_option("--trust", args->trust, "Trust store file or folder: the peers accepted")
        ->required();
    cmd->add_option("--listen", args->listen, "HOST:PORT to listen on (port 0: any free port)")
        ->required();
    cmd->add_option("--service", args->services, "Service to serve: echo, kv or journal")
        ->required()
        ->check(CLI::IsMember({"echo", "kv", "journal"}));
    cmd->add_option("--data", args->data, "Directory for the kv and journal databases");
    cmd->add_option("--peer", args->peers,
                    "Journal peer to synchronize with: FP@HOST:PORT or a trust-store name "
                    "(repeatable)");
    cmd->add_option("--threads", args->threads, "Threads serving sessions")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    cmd->add_option("--log-level", args->log_level,
                    "Log level on stderr: trace, debug, info, warn, error, off")
        ->capture_default_str();
    cmd->add_option("--sync-interval", args->sync_interval,
                    "Seconds between two journal synchronizations with each --peer")
        ->capture_default_str()
        ->check(CLI::Range(0.01, 86400.0));
    cmd->add_option("--crypto", args->crypto, crypto_help())->capture_default_str();
    cmd->footer(
        "Prints one line 'listening HOST:PORT fingerprint FP' on stdout once it accepts "
        "connections; logs go to stderr.\nExit codes: 0 after a graceful shutdown, 1 runtime "
        "failure (cannot listen, storage), 2 usage (bad flags or files).");
    cmd->callback([&action, args] { action = [args] { return serve(*args); }; });
}

}  // namespace sdmp::apps
