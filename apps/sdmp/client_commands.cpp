// sdmp call and sdmp ping: one session to a trusted peer (docs/apps.md).
#include <fmt/core.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "node_files.hpp"
#include "sdmp/error.hpp"
#include "sdmp/framework/client.hpp"
#include "sdmp/services/peer_address.hpp"
#include "sdmp/services/ping.hpp"

namespace sdmp::apps {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
using services::PeerAddress;

// Bodies larger than the default max_message_size cannot be sent anyway.
constexpr std::size_t k_max_body = std::size_t{16} << 20;
// How long a finished command waits for the session's graceful close.
constexpr std::chrono::seconds k_close_budget{2};

struct ClientArgs {
    std::string key;
    std::string trust;
    std::string peer;
    double timeout = 30.0;
    std::string crypto = "botan";
};

struct CallArgs : ClientArgs {
    std::string method;
    std::optional<std::string> body;  // "-": stdin
};

struct PingArgs : ClientArgs {
    std::size_t count = 5;
};

// What a command does on an established session; returns the exit code. `handshake` is
// the time connect() took (TCP connect and handshake).
using Work = std::function<asio::awaitable<int>(Session&, Clock::duration handshake,
                                                Clock::time_point deadline)>;

double ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

// One line for a transport failure, with the exit code it maps to (docs/apps.md).
int report_failure(std::string_view command, const PeerAddress& peer,
                   const boost::system::system_error& e) {
    if (is(e, framework_errc::refused_by_peer))
        return fail(command,
                    fmt::format("{} refused the connection (nope): it does not trust this "
                                "node's key, or did not accept the handshake",
                                peer.describe()),
                    exit_code::refused);
    if (is(e, errc::handshake_rejected))
        return fail(command,
                    fmt::format("{} failed authentication: it did not prove it is {}",
                                peer.describe(), peer.fingerprint.hex()),
                    exit_code::refused);
    if (is(e, framework_errc::handshake_timeout))
        return fail(command, fmt::format("{}: the handshake timed out", peer.describe()),
                    exit_code::network);
    if (is(e, errc::unknown_peer))
        return fail(command, fmt::format("{}: not in the trust store", peer.describe()),
                    exit_code::usage);
    if (is(e, errc::limit_exceeded))
        return fail(command, "the request is larger than the maximum message size",
                    exit_code::usage);
    if (is(e, framework_errc::connection_closed))
        return fail(command,
                    fmt::format("the connection to {} closed before the answer", peer.describe()),
                    exit_code::network);
    return fail(command, fmt::format("cannot reach {}: {}", peer.describe(), e.code().message()),
                exit_code::network);
}

asio::awaitable<int> connect_and_work(std::string_view command, const NodeFiles& files,
                                      const PeerAddress& peer, crypto::CryptoProvider& provider,
                                      double timeout_seconds, const Work& work) {
    auto executor = co_await asio::this_coro::executor;
    const auto budget =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_seconds));
    const auto deadline = Clock::now() + budget;
    std::optional<Session> session;
    // Never throws: `a || b` waits for the first to *succeed*, so a failure must be a value
    // or the race would wait for the timer.
    auto attempt = [&]() -> asio::awaitable<int> {
        std::optional<boost::system::system_error> failure;
        try {
            const auto start = Clock::now();
            ClientOptions options;
            options.handshake.provider = &provider;
            options.logger = Logger::null();  // the one failure line is ours to print
            session = co_await connect(executor, Target::address(peer.endpoint, peer.fingerprint),
                                       files.identity, files.trust, options);
            co_return co_await work(*session, Clock::now() - start, deadline);
        } catch (const boost::system::system_error& e) {
            failure.emplace(e);
        }
        if (session && !session->is_open()) {
            // The session ended under the call (a record over a limit, a cut connection): a
            // connection failure whatever its code, not a problem of the request.
            co_return fail(command,
                           fmt::format("the connection to {} closed before the answer: {}",
                                       peer.describe(), failure->code().message()),
                           exit_code::network);
        }
        co_return report_failure(command, peer, *failure);
    };
    asio::steady_timer timer(executor, deadline);
    auto outcome = co_await (attempt() || timer.async_wait(asio::use_awaitable));
    const int code =
        outcome.index() == 0
            ? std::get<0>(outcome)
            : fail(command,
                   fmt::format("no answer from {} within {} s", peer.describe(), timeout_seconds),
                   exit_code::network);
    if (session) {
        // Graceful close (goaway), bounded: the answer is already out.
        session->close();
        asio::steady_timer close_timer(executor, k_close_budget);
        co_await (session->wait_closed() ||
                  close_timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
    co_return code;
}

int run_client(std::string_view command, const ClientArgs& args, Work work) {
    crypto::CryptoProvider* const provider = find_crypto(command, args.crypto);
    if (provider == nullptr)
        return exit_code::usage;
    auto files = load_node_files(command, args.key, args.trust);
    if (!files)
        return exit_code::usage;
    std::string error;
    const auto peer = services::parse_peer_address(args.peer, files->trust, error);
    if (!peer)
        return fail(command, fmt::format("--peer: {}", error), exit_code::usage);

    asio::io_context io;
    int code = exit_code::status;
    asio::co_spawn(io, connect_and_work(command, *files, *peer, *provider, args.timeout, work),
                   [&](std::exception_ptr e, int result) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::invalid_argument& ex) {
                               code = fail(command, ex.what(), exit_code::usage);
                           } catch (const std::exception& ex) {
                               code = fail(command, ex.what(), exit_code::status);
                           }
                       } else {
                           code = result;
                       }
                       io.stop();  // nothing else of ours is left to finish
                   });
    io.run();
    return code;
}

// The body argument: literal text, or "-" for all of stdin (binary-safe).
std::optional<Bytes> read_body(const std::optional<std::string>& arg, std::string& error) {
    if (!arg)
        return Bytes{};
    if (*arg != "-")
        return bytes_of(*arg);
    Bytes body;
    std::vector<std::uint8_t> chunk(64 * 1024);
    for (;;) {
        const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), stdin);
        body.insert(body.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
        if (body.size() > k_max_body) {
            error = fmt::format("the body on stdin is larger than {} bytes", k_max_body);
            return std::nullopt;
        }
        if (n < chunk.size()) {
            if (std::ferror(stdin)) {
                error = "cannot read the body from stdin";
                return std::nullopt;
            }
            return body;
        }
    }
}

CallOptions with_deadline(Clock::time_point deadline) {
    CallOptions options;
    options.deadline = deadline;
    return options;
}

constexpr std::string_view k_call = "call";
constexpr std::string_view k_ping = "ping";

int call(const CallArgs& args) {
    constexpr std::string_view command = k_call;
    std::string error;
    auto body = read_body(args.body, error);
    if (!body)
        return fail(command, error, exit_code::usage);
    const std::string method = args.method;
    return run_client(
        command, args,
        [&body, method](Session& session, Clock::duration,
                        Clock::time_point deadline) -> asio::awaitable<int> {
            Reply reply = co_await session.call(method, std::move(*body), with_deadline(deadline));
            if (reply.is_ok()) {
                if (!reply.body.empty() && std::fwrite(reply.body.data(), 1, reply.body.size(),
                                                       stdout) != reply.body.size())
                    co_return fail(k_call, "cannot write the answer to stdout", exit_code::status);
                if (std::fflush(stdout) != 0)
                    co_return fail(k_call, "cannot write the answer to stdout", exit_code::status);
                co_return exit_code::ok;
            }
            const int code =
                reply.status == Status::deadline_exceeded ? exit_code::network : exit_code::status;
            co_return fail(k_call,
                           fmt::format("{}: {}{}{}", method, to_string(reply.status),
                                       reply.body.empty() ? "" : ": ", reply.text()),
                           code);
        });
}

int ping(const PingArgs& args) {
    constexpr std::string_view command = k_ping;
    return run_client(
        command, args,
        [&args](Session& session, Clock::duration handshake,
                Clock::time_point deadline) -> asio::awaitable<int> {
            fmt::print("connected to {} ({}) in {:.3f} ms (TCP connect and handshake)\n",
                       session.peer().remote_endpoint, session.peer().fingerprint.hex(),
                       ms(handshake));
            std::vector<double> times;
            for (std::size_t i = 1; i <= args.count; ++i) {
                const auto start = Clock::now();
                Reply reply =
                    co_await session.call(services::k_ping_method, {}, with_deadline(deadline));
                const double elapsed = ms(Clock::now() - start);
                if (!reply.is_ok()) {
                    co_return fail(
                        k_ping,
                        fmt::format("ping {}: {}: {}", i, to_string(reply.status), reply.text()),
                        reply.status == Status::deadline_exceeded ? exit_code::network
                                                                  : exit_code::status);
                }
                times.push_back(elapsed);
                fmt::print("ping {}: {:.3f} ms\n", i, elapsed);
            }
            std::vector<double> sorted = times;
            std::sort(sorted.begin(), sorted.end());
            const double sum = std::accumulate(sorted.begin(), sorted.end(), 0.0);
            // Nearest-rank median.
            const auto p50 = sorted[static_cast<std::size_t>(
                                        std::ceil(0.5 * static_cast<double>(sorted.size()))) -
                                    1];
            fmt::print("{} pings: min {:.3f} ms, avg {:.3f} ms, max {:.3f} ms, p50 {:.3f} ms\n",
                       sorted.size(), sorted.front(), sum / static_cast<double>(sorted.size()),
                       sorted.back(), p50);
            std::fflush(stdout);
            co_return exit_code::ok;
        });
}

constexpr const char* k_exit_codes =
    "Exit codes: 0 ok; 1 the peer answered with an error status; 2 usage (bad flags, "
    "unreadable key or trust store, bad --peer); 3 refused (the peer answered `nope`, or failed "
    "authentication); 4 network (cannot connect, connection lost, timeout).";

void add_client_options(CLI::App* cmd, ClientArgs& args) {
    cmd->add_option("--key", args.key, "Private key file of this node")->required();
    cmd->add_option("--trust", args.trust, "Trust store file or folder (must hold the peer)")
        ->required();
    cmd->add_option("--peer", args.peer, "FP@HOST:PORT, or a trust-store name with an address")
        ->required();
    cmd->add_option("--timeout", args.timeout,
                    "Seconds for the whole command (connect, handshake, calls)")
        ->capture_default_str()
        ->check(CLI::Range(0.001, 86400.0));
    cmd->add_option("--crypto", args.crypto, crypto_help())->capture_default_str();
}

}  // namespace

void add_client_commands(CLI::App& app, Action& action) {
    auto call_args = std::make_shared<CallArgs>();
    auto* call_cmd =
        app.add_subcommand("call", "Call METHOD on a peer; the answer's body goes to stdout");
    add_client_options(call_cmd, *call_args);
    call_cmd->add_option("METHOD", call_args->method, "Method name, e.g. echo or kv.get")
        ->required();
    call_cmd->add_option("BODY", call_args->body, "Request body; '-' reads it from stdin");
    call_cmd->footer(k_exit_codes);
    call_cmd->callback([&action, call_args] { action = [call_args] { return call(*call_args); }; });

    auto ping_args = std::make_shared<PingArgs>();
    auto* ping_cmd = app.add_subcommand(
        "ping", "Connect to a peer, then time --count calls of its `ping` method");
    add_client_options(ping_cmd, *ping_args);
    ping_cmd->add_option("--count", ping_args->count, "Number of pings")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    ping_cmd->footer(k_exit_codes);
    ping_cmd->callback([&action, ping_args] { action = [ping_args] { return ping(*ping_args); }; });
}

}  // namespace sdmp::apps
