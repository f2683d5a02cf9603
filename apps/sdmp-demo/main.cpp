// sdmp-demo, the README's first command: two journal nodes on loopback, in one process, run
// the protocol of docs/protocol.md and the journal service of docs/apps.md, narrated step by
// step. Identities and trust stores are written to a temporary folder; node-a and node-b trust
// each other and are wired exactly as `sdmp serve --service journal` wires a node (node-b with
// node-a as its --peer); an operator publishes three resources on node-a and watches node-b
// converge; mallory, whom nobody trusts, is answered `nope`.
//
// Exit status: 0 when every step did what it should; otherwise 1 and one line on stderr. Every
// wait is bounded (a call, a step, the whole run), and a watchdog thread ends the process if
// even the shutdown hangs.
#include <fmt/core.h>
#include <stdlib.h>  // mkdtemp (POSIX)
#include <nlohmann/json.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "sdmp/protocol/wire.hpp"
#include "sdmp/sdmp.hpp"
#include "sdmp/services/journal_line.hpp"
#include "sdmp/services/journal_service.hpp"
#include "sdmp/services/peer_address.hpp"
#include "sdmp/services/ping.hpp"

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace asio::experimental::awaitable_operators;
using namespace sdmp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using ErrorCode = boost::system::error_code;

// Safety nets only: on loopback every step takes milliseconds.
constexpr std::chrono::seconds k_watchdog{30};        // the whole process, shutdown included
constexpr std::chrono::seconds k_steps_budget{20};    // the narrated steps
constexpr std::chrono::seconds k_step_timeout{10};    // one wait: a link, convergence, a log
constexpr std::chrono::seconds k_call_timeout{5};     // one call
constexpr std::chrono::seconds k_shutdown_budget{3};  // graceful close before cutting short
constexpr std::chrono::milliseconds k_poll_net{100};  // convergence re-check without an update
constexpr std::size_t k_shown_hex = 10;               // hex characters shown of a 64-hex field

constexpr std::array<std::string_view, 3> k_resources = {"hello, journal", "a second resource",
                                                         "any bytes at all"};

class DemoFailure : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string cut(std::string_view hex) {
    return std::string(hex.substr(0, k_shown_hex));
}

// A journal line with each 64-hex field cut to k_shown_hex characters.
std::string short_line(std::string_view line) {
    const auto entry = services::JournalEntry::parse(line);
    if (!entry)
        return cut(line);  // the first line: the node's fingerprint
    return fmt::format("{}@{}/{}", cut(entry->number), cut(entry->publisher.hex()),
                       cut(to_hex(entry->resource)));
}

// A temporary folder for the keys, trust stores and journals, removed with everything in it.
class TempFolder {
  public:
    TempFolder() {
        std::string pattern = (fs::temp_directory_path() / "sdmp-demo-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr)
            throw DemoFailure(fmt::format("cannot create a temporary folder {}", pattern));
        path_ = pattern;
    }
    ~TempFolder() {
        std::error_code ignored;  // nothing useful to do about a folder that will not go
        fs::remove_all(path_, ignored);
    }
    TempFolder(const TempFolder&) = delete;
    TempFolder& operator=(const TempFolder&) = delete;
    const fs::path& path() const noexcept { return path_; }

  private:
    fs::path path_;
};

// Ends the process with one line if it is still running after `limit` (a hang anywhere,
// shutdown included, must not keep the README's first command waiting forever).
class Watchdog {
  public:
    Watchdog(std::chrono::seconds limit, fs::path folder)
        : thread_([this, limit, folder = std::move(folder)] {
              std::unique_lock lock(mutex_);
              if (done_cv_.wait_for(lock, limit, [this] { return done_; }))
                  return;
              std::fprintf(stderr, "sdmp-demo: failed: still running after %lld s (watchdog)\n",
                           static_cast<long long>(limit.count()));
              std::error_code ignored;
              fs::remove_all(folder, ignored);
              std::_Exit(1);
          }) {}
    ~Watchdog() {
        {
            const std::lock_guard lock(mutex_);
            done_ = true;
        }
        done_cv_.notify_one();
        thread_.join();
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

  private:
    std::mutex mutex_;
    std::condition_variable done_cv_;
    bool done_ = false;
    std::thread thread_;  // last: starts once the members above exist
};

// A node's log. Refusal causes stay local (protocol.md §3.6): the demo shows node-a's line
// about mallory as "node-a's local log", which is what an operator would read. Warnings and
// errors go to stderr, so a problem is never hidden.
class NodeLog : public LogSink {
  public:
    using Channel = asio::experimental::concurrent_channel<void(ErrorCode, std::string)>;

    NodeLog(std::string node, const asio::any_io_executor& executor)
        : node_(std::move(node)), refusals_(executor, 8) {}

    void write(LogLevel level, std::string_view message) override {
        if (level >= LogLevel::warn)
            fmt::print(stderr, "[{} log] {} {}\n", node_, to_string(level), message);
        if (message.find("server: refused ") != std::string_view::npos)
            static_cast<void>(refusals_.try_send(ErrorCode{}, std::string(message)));
    }
    Channel& refusals() noexcept { return refusals_; }

  private:
    std::string node_;
    Channel refusals_;
};

struct Person {
    std::string name;
    crypto::Identity identity;
    crypto::TrustStore trust;
    std::vector<std::string> trusts;  // names, for the table
};

struct JournalNode {
    Person* who = nullptr;
    std::shared_ptr<NodeLog> log;
    std::shared_ptr<SessionSet> sessions = std::make_shared<SessionSet>();
    std::shared_ptr<services::JournalService> journal;
    std::shared_ptr<const Router> client_router;  // the same methods, for outgoing sessions
    std::unique_ptr<Server> server;
    EndpointSpec endpoint;
};

class Demo {
  public:
    explicit Demo(fs::path folder) : folder_(std::move(folder)) {}

    // Runs every step; returns the failure (empty on success).
    std::string run();

  private:
    void write_files();
    void start_node(JournalNode& node, Person& who, std::function<void(const Session&)> extra);
    void start_nodes();

    asio::awaitable<std::string> main_flow();
    asio::awaitable<std::string> guarded_steps();
    asio::awaitable<void> steps();
    asio::awaitable<void> link_and_connect();
    asio::awaitable<void> publish();
    asio::awaitable<void> converge();
    asio::awaitable<void> refuse_mallory();
    asio::awaitable<void> shut_down();
    asio::awaitable<void> stop_clients();
    asio::awaitable<void> servers_stopped();

    asio::awaitable<Session> connect_as(const Person& who, const JournalNode& to,
                                        std::shared_ptr<const Router> router,
                                        std::shared_ptr<Metrics> metrics, double& took_ms);
    asio::awaitable<std::vector<std::string>> read_journal(const Session& session,
                                                           const JournalNode& node);
    asio::awaitable<void> on_update();
    void print_journal(const JournalNode& node, const std::vector<std::string>& lines);
    std::string name_of(const crypto::Fingerprint& fingerprint) const;

    fs::path folder_;
    Clock::time_point started_ = Clock::now();
    crypto::CryptoProvider& provider_ = crypto::default_provider();

    asio::io_context io_;  // before everything that runs on it: destroyed last
    asio::experimental::concurrent_channel<void(ErrorCode)> b_linked_{io_, 1};
    asio::experimental::concurrent_channel<void(ErrorCode)> updates_{io_, 1};
    asio::experimental::concurrent_channel<void(ErrorCode)> servers_done_{io_, 2};
    std::string server_failure_;

    Person node_a_{"node-a", {}, {}, {}};
    Person node_b_{"node-b", {}, {}, {}};
    Person operator_{"operator", {}, {}, {}};
    Person mallory_{"mallory", {}, {}, {}};
    JournalNode a_;
    JournalNode b_;
    Session op_a_;  // operator -> node-a: publishes
    Session op_b_;  // operator -> node-b: watches
    std::shared_ptr<Metrics> op_a_metrics_ = std::make_shared<Metrics>();

    std::map<std::string, std::string> labels_;                // resource id hex -> what it is
    std::set<std::pair<std::string, std::string>> published_;  // (publisher hex, id hex)
    Clock::time_point first_publish_;
    Clock::time_point last_publish_;
    double op_a_ms_ = 0;
    double op_b_ms_ = 0;
    double converged_ms_ = 0;
    double refused_ms_ = 0;
};

void Demo::write_files() {
    fmt::print("1. Identities and trust stores\n");
    fmt::print("  folder: {} (removed at exit)\n", folder_.string());
    fmt::print(
        "  per identity: NAME.key (private, mode 0600), NAME.pub (public), NAME.trust (the keys "
        "it trusts)\n");
    Person* people[] = {&node_a_, &node_b_, &operator_, &mallory_};
    for (Person* p : people) {
        const auto generated = crypto::Identity::generate(provider_);
        if (auto e = crypto::save_identity(generated, folder_ / (p->name + ".key")))
            throw DemoFailure(e.message);
        if (auto e = crypto::save_public_identity(generated.public_identity(),
                                                  folder_ / (p->name + ".pub")))
            throw DemoFailure(e.message);
    }
    // Who trusts whom: the nodes trust each other and the operator; the operator trusts both
    // nodes; mallory knows node-a's public key (enough to seal a connection message to it),
    // but no node knows mallory's.
    node_a_.trusts = {"node-b", "operator"};
    node_b_.trusts = {"node-a", "operator"};
    operator_.trusts = {"node-a", "node-b"};
    mallory_.trusts = {"node-a"};
    for (Person* p : people) {
        crypto::TrustStore store;
        for (const auto& name : p->trusts) {
            crypto::PublicIdentity pub;
            if (auto e = crypto::load_public_identity(provider_, folder_ / (name + ".pub"), pub))
                throw DemoFailure(e.message);
            if (auto ec = store.add({pub, pub.fingerprint(provider_), name, ""}))
                throw DemoFailure(fmt::format("trust store of {}: {}", p->name, ec.message()));
        }
        if (auto e = store.save(folder_ / (p->name + ".trust")))
            throw DemoFailure(e.message);
        // Everyone starts from the files, as `sdmp serve --key --trust` would.
        if (auto e = crypto::load_identity(provider_, folder_ / (p->name + ".key"), p->identity))
            throw DemoFailure(e.message);
        if (auto e = crypto::TrustStore::load(provider_, folder_ / (p->name + ".trust"), p->trust))
            throw DemoFailure(e.message);
    }
    fmt::print("  {:<9} {:<17} {}\n", "name", "fingerprint", "trusts");
    for (const Person* p : people) {
        std::string trusts;
        for (const auto& name : p->trusts)
            trusts += (trusts.empty() ? "" : ", ") + name;
        fmt::print("  {:<9} {:<17} {}{}\n", p->name, p->identity.fingerprint().short_hex(), trusts,
                   p == &mallory_ ? "  (but nobody trusts mallory)" : "");
    }
    fmt::print("  (fingerprint = SHA-256 of the two public keys: 64 hex, the first 16 shown)\n\n");
}

void Demo::start_node(JournalNode& node, Person& who, std::function<void(const Session&)> extra) {
    node.who = &who;
    node.log = std::make_shared<NodeLog>(who.name, io_.get_executor());
    const Logger logger(node.log, LogLevel::info);
    const fs::path data = folder_ / who.name;
    fs::create_directories(data);

    // The same calls as `sdmp serve --service journal` (apps/sdmp/serve_command.cpp).
    services::JournalOptions options;
    options.logger = logger;
    options.call_timeout = k_call_timeout;
    node.journal =
        services::JournalService::open(io_.get_executor(), data / "journal.sqlite",
                                       who.identity.fingerprint(), node.sessions, options);
    Router router;
    services::add_ping(router);
    node.journal->add_to(router);
    node.client_router = std::make_shared<const Router>(router);

    ServerOptions server;
    server.logger = logger;
    server.drain_timeout = k_shutdown_budget;
    server.on_session = [sessions = node.sessions, extra = std::move(extra)](const Session& s) {
        sessions->add(s);  // journal.update goes to every connected session
        if (extra)
            extra(s);
    };
    node.server = std::make_unique<Server>(io_.get_executor(), who.identity, who.trust,
                                           std::move(router), std::move(server));
    node.endpoint = node.server->listen("127.0.0.1:0");
}

void Demo::start_nodes() {
    const auto b_fingerprint = node_b_.identity.fingerprint();
    start_node(a_, node_a_, [this, b_fingerprint](const Session& s) {
        if (s.peer().fingerprint == b_fingerprint)
            static_cast<void>(b_linked_.try_send(ErrorCode{}));
    });
    start_node(b_, node_b_, {});
    // node-b synchronizes with node-a (`--peer`): right after connecting and every
    // sync_interval, and on each journal.update node-a sends on that session.
    ClientOptions client;
    client.router = b_.client_router;
    client.logger = Logger(b_.log, LogLevel::info);
    b_.journal->add_peer(
        services::PeerAddress{node_a_.identity.fingerprint(), a_.endpoint.to_string(), "node-a"},
        node_b_.identity, node_b_.trust, std::move(client));
}

std::string Demo::name_of(const crypto::Fingerprint& fingerprint) const {
    for (const Person* p : {&node_a_, &node_b_, &operator_, &mallory_}) {
        if (p->identity.fingerprint() == fingerprint)
            return p->name;
    }
    return fingerprint.short_hex();
}

asio::awaitable<Session> Demo::connect_as(const Person& who, const JournalNode& to,
                                          std::shared_ptr<const Router> router,
                                          std::shared_ptr<Metrics> metrics, double& took_ms) {
    ClientOptions options;
    options.router = std::move(router);
    options.metrics = std::move(metrics);
    options.logger = Logger::null();  // a client's failures are ours to print
    const auto start = Clock::now();
    Session session =
        co_await connect(co_await asio::this_coro::executor,
                         Target::address(to.endpoint.to_string(), to.who->identity.fingerprint()),
                         who.identity, who.trust, std::move(options));
    took_ms = ms_since(start);
    co_return session;
}

asio::awaitable<void> Demo::on_update() {
    // Only a wake-up: converge() reads node-b's journal itself. A full channel loses nothing
    // (the reader is already due to read).
    static_cast<void>(updates_.try_send(ErrorCode{}));
    co_return;
}

asio::awaitable<void> Demo::link_and_connect() {
    auto executor = co_await asio::this_coro::executor;
    fmt::print("2. Two journal nodes on loopback (the library calls of `sdmp serve`)\n");
    fmt::print("  node-a  listening on {}, journal in node-a/journal.sqlite\n",
               a_.endpoint.to_string());
    fmt::print("  node-b  listening on {}, journal in node-b/journal.sqlite, --peer node-a\n",
               b_.endpoint.to_string());

    asio::steady_timer timer(executor, k_step_timeout);
    auto linked = co_await (b_linked_.async_receive(asio::as_tuple(asio::use_awaitable)) ||
                            timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (linked.index() != 0)
        throw DemoFailure("node-b did not connect to node-a");
    fmt::print(
        "  node-b -> node-a    session up: node-b syncs from node-a and hears its "
        "journal.update\n");

    op_a_ = co_await connect_as(operator_, a_, nullptr, op_a_metrics_, op_a_ms_);
    fmt::print(
        "  operator -> node-a  connected in {:.2f} ms (TCP connect, 2 x {} bytes, key "
        "derivation)\n",
        op_a_ms_, protocol::k_connection_message_size);
    // The operator watches node-b: node-b announces each line it learns on every session.
    auto watcher = std::make_shared<Router>();
    watcher->on_notification("journal.update", [this](Context&, Bytes) { return on_update(); });
    op_b_ = co_await connect_as(operator_, b_, watcher, nullptr, op_b_ms_);
    fmt::print("  operator -> node-b  connected in {:.2f} ms\n\n", op_b_ms_);
}

asio::awaitable<void> Demo::publish() {
    fmt::print(
        "3. The operator publishes {} resources on node-a (journal.publish; the publisher is the "
        "caller's key)\n",
        k_resources.size());
    first_publish_ = Clock::now();
    for (const auto text : k_resources) {
        const auto start = Clock::now();
        const Reply reply = co_await op_a_.call("journal.publish", bytes_of(text),
                                                CallOptions{}.with_timeout(k_call_timeout));
        const double took = ms_since(start);
        if (!reply.is_ok())
            throw DemoFailure(fmt::format("journal.publish on node-a: {}: {}",
                                          to_string(reply.status), reply.text()));
        const json answer = json::parse(reply.body.begin(), reply.body.end(), nullptr, false);
        if (!answer.is_object() || !answer.contains("id") || !answer["id"].is_string())
            throw DemoFailure("journal.publish on node-a: malformed answer");
        const auto id = answer["id"].get<std::string>();
        labels_[id] = fmt::format("\"{}\"", text);
        published_.emplace(operator_.identity.fingerprint().hex(), id);
        fmt::print("  {:<31} {:>2} bytes -> resource id {}..  {:.2f} ms\n",
                   fmt::format("\"{}\"", text), text.size(), cut(id), took);
    }
    last_publish_ = Clock::now();
    const auto wire = op_a_metrics_->snapshot();
    constexpr std::size_t k_framing = protocol::k_record_prefix_size + crypto::k_aead_tag_size;
    const std::uint64_t padded = wire.bytes_out - wire.records_out * k_framing;
    // Every record is a length, DEFLATE output zero-padded to 256-byte blocks, and a tag.
    fmt::print("  on the wire: {} records, {} bytes = {} x ({}-byte length + {}-byte tag) + {}\n\n",
               wire.records_out, wire.bytes_out, wire.records_out, protocol::k_record_prefix_size,
               crypto::k_aead_tag_size,
               padded % protocol::k_padding_block == 0
                   ? fmt::format("{} x {} padded bytes", padded / protocol::k_padding_block,
                                 protocol::k_padding_block)
                   : fmt::format("{} padded bytes", padded));
}

asio::awaitable<std::vector<std::string>> Demo::read_journal(const Session& session,
                                                             const JournalNode& node) {
    const std::string first = node.who->identity.fingerprint().hex();
    const json request = {{"since", first}, {"limit", 1000}};
    const Reply reply = co_await session.call("journal.synchronize", bytes_of(request.dump()),
                                              CallOptions{}.with_timeout(k_call_timeout));
    if (!reply.is_ok())
        throw DemoFailure(fmt::format("journal.synchronize on {}: {}: {}", node.who->name,
                                      to_string(reply.status), reply.text()));
    const json answer = json::parse(reply.body.begin(), reply.body.end(), nullptr, false);
    if (!answer.is_object() || !answer.contains("entries") || !answer["entries"].is_array())
        throw DemoFailure(
            fmt::format("journal.synchronize on {}: malformed answer", node.who->name));
    std::vector<std::string> lines{first};
    for (const auto& item : answer["entries"]) {
        if (!item.is_string())
            throw DemoFailure(
                fmt::format("{} sent a journal line that is not text", node.who->name));
        lines.push_back(item.get<std::string>());
    }
    co_return lines;
}

void Demo::print_journal(const JournalNode& node, const std::vector<std::string>& lines) {
    fmt::print("  {}'s journal:\n", node.who->name);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::string note;
        if (i == 0) {
            note = fmt::format("first line: {}'s fingerprint", node.who->name);
        } else if (const auto entry = services::JournalEntry::parse(lines[i])) {
            const auto label = labels_.find(to_hex(entry->resource));
            note = fmt::format("{} by {}", label == labels_.end() ? "?" : label->second,
                               name_of(entry->publisher));
        }
        fmt::print("    {}  {:<32}  {}\n", i + 1, short_line(lines[i]), note);
    }
}

// True when every line's number is SHA-256 of the line before it (docs/apps.md).
bool chain_holds(const std::vector<std::string>& lines) {
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto entry = services::JournalEntry::parse(lines[i]);
        if (!entry || !services::follows(*entry, lines[i - 1]))
            return false;
    }
    return true;
}

std::set<std::pair<std::string, std::string>> pairs_of(const std::vector<std::string>& lines) {
    std::set<std::pair<std::string, std::string>> pairs;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        if (const auto entry = services::JournalEntry::parse(lines[i]))
            pairs.emplace(entry->publisher.hex(), to_hex(entry->resource));
    }
    return pairs;
}

asio::awaitable<void> Demo::converge() {
    auto executor = co_await asio::this_coro::executor;
    // Measured from the first publish: node-b hears node-a's journal.update, fetches each
    // resource with resource.get, checks its SHA-256 and appends it under the original
    // publisher. We re-read node-b's journal at each update node-b announces (with a short
    // re-check in case an update is missed) until it holds every published pair.
    const auto deadline = Clock::now() + k_step_timeout;
    std::vector<std::string> b_lines;
    asio::steady_timer timer(executor);
    for (;;) {
        b_lines = co_await read_journal(op_b_, b_);
        const auto pairs = pairs_of(b_lines);
        if (std::includes(pairs.begin(), pairs.end(), published_.begin(), published_.end()))
            break;
        if (Clock::now() >= deadline)
            throw DemoFailure(fmt::format("node-b did not converge within {} s (it has {} of {})",
                                          k_step_timeout.count(), pairs.size(), published_.size()));
        timer.expires_after(k_poll_net);
        co_await (updates_.async_receive(asio::as_tuple(asio::use_awaitable)) ||
                  timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
    converged_ms_ = ms_since(first_publish_);
    const auto a_lines = co_await read_journal(op_a_, a_);

    fmt::print(
        "4. node-b converges (journal.update from node-a, then resource.get and a SHA-256 "
        "check)\n");
    fmt::print(
        "  node-b converged: all {} resources, {:.1f} ms after the first publish, {:.1f} ms "
        "after the last\n",
        published_.size(), converged_ms_, ms_since(last_publish_));
    fmt::print(
        "  lines are <line number>@<publisher>/<resource id>; each 64-hex field is cut to {} "
        "here\n",
        k_shown_hex);
    print_journal(a_, a_lines);
    print_journal(b_, b_lines);
    const bool chains = chain_holds(a_lines) && chain_holds(b_lines);
    if (!chains)
        throw DemoFailure("a journal line does not carry SHA-256 of the line before it");
    if (pairs_of(a_lines) != pairs_of(b_lines))
        throw DemoFailure("node-a and node-b hold different (publisher, resource) pairs");
    fmt::print(
        "  checked: every line number is SHA-256 of the line before it; the chains differ (each\n"
        "  starts from its own fingerprint) but hold the same {} (publisher, resource) pairs\n\n",
        published_.size());
}

asio::awaitable<void> Demo::refuse_mallory() {
    auto executor = co_await asio::this_coro::executor;
    fmt::print("5. mallory, whom no node trusts, connects to node-a\n");
    std::error_code outcome;
    double ignored = 0;
    const auto start = Clock::now();
    try {
        Session unwanted = co_await connect_as(mallory_, a_, nullptr, nullptr, ignored);
        unwanted.abort();
    } catch (const boost::system::system_error& e) {
        outcome = e.code();
    }
    refused_ms_ = ms_since(start);
    if (outcome != framework_errc::refused_by_peer)
        throw DemoFailure(fmt::format("node-a did not refuse mallory with `nope` ({})",
                                      outcome ? outcome.message() : "it accepted the session"));
    fmt::print(
        "  mallory -> node-a   a {}-byte connection message sealed to node-a's key, signed by "
        "mallory\n",
        protocol::k_connection_message_size);
    fmt::print(
        "  node-a  -> mallory  \"nope\" ({} plaintext bytes) and close: mallory's key is not in "
        "node-a.trust\n",
        protocol::k_nope.size());
    fmt::print("  mallory's connect() failed: refused_by_peer, \"{}\"\n",
               std::error_code(framework_errc::refused_by_peer).message());

    // The cause is only in node-a's own log and metrics; it wrote them as it closed.
    asio::steady_timer timer(executor, k_step_timeout);
    auto logged = co_await (a_.log->refusals().async_receive(asio::as_tuple(asio::use_awaitable)) ||
                            timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (logged.index() != 0)
        throw DemoFailure("node-a did not log the refused handshake");
    fmt::print("  node-a's local log:  \"{}\"\n", std::get<1>(std::get<0>(logged)));
    const auto metrics = a_.server->metrics();
    std::string refused;
    for (const auto& [reason, count] : metrics.handshakes_refused)
        refused += fmt::format("{}{}: {}", refused.empty() ? "" : ", ", reason, count);
    fmt::print("  node-a's metrics:    handshakes completed {}, refused {{{}}}\n\n",
               metrics.handshakes_completed, refused);
    if (metrics.handshakes_refused.empty())
        throw DemoFailure("node-a's metrics do not count the refused handshake");
}

asio::awaitable<void> Demo::steps() {
    co_await link_and_connect();
    co_await publish();
    co_await converge();
    co_await refuse_mallory();
    fmt::print(
        "Summary: node-b converged on {} resources in {:.1f} ms; handshakes {:.1f}/{:.1f} ms; "
        "mallory got `nope` in {:.1f} ms; {:.0f} ms in all\n",
        published_.size(), converged_ms_, op_a_ms_, op_b_ms_, refused_ms_, ms_since(started_));
}

asio::awaitable<std::string> Demo::guarded_steps() {
    std::string failure;
    try {
        co_await steps();
    } catch (const std::exception& e) {
        failure = e.what();
    }
    co_return failure;
}

asio::awaitable<void> Demo::stop_clients() {
    for (Session* session : {&op_a_, &op_b_}) {
        if (*session) {
            session->close();
            co_await session->wait_closed();
            *session = Session{};
        }
    }
    co_await b_.journal->stop();  // closes node-b's link to node-a
}

asio::awaitable<void> Demo::servers_stopped() {
    for (int i = 0; i < 2; ++i)
        co_await servers_done_.async_receive(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> Demo::shut_down() {
    auto executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor, k_shutdown_budget);
    co_await (stop_clients() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    a_.server->shutdown();
    b_.server->shutdown();
    timer.expires_after(k_shutdown_budget);
    co_await (servers_stopped() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
}

asio::awaitable<std::string> Demo::main_flow() {
    auto executor = co_await asio::this_coro::executor;
    // guarded_steps() never throws: `a || b` waits for the first to succeed, so a failure must
    // be a value or the race would wait for the timer.
    asio::steady_timer budget(executor, k_steps_budget);
    auto outcome =
        co_await (guarded_steps() || budget.async_wait(asio::as_tuple(asio::use_awaitable)));
    std::string failure = outcome.index() == 0 ? std::get<0>(std::move(outcome))
                                               : fmt::format("the demo did not finish within {} s",
                                                             k_steps_budget.count());
    co_await shut_down();
    co_return failure;
}

std::string Demo::run() {
    fmt::print(
        "sdmp demo: two journal nodes on loopback, one process (docs/protocol.md, "
        "docs/apps.md)\n\n");
    fmt::print("How a connection works (protocol.md §3-§5)\n");
    fmt::print(
        "  1. The caller sends one {}-byte connection message: a {}-byte plaintext header (magic,\n"
        "     version, suite, a fresh X25519 key) and {} bytes sealed to the callee's static key\n"
        "     (the caller's fingerprint, a timestamp, an Ed25519 signature): an eavesdropper\n"
        "     learns nobody's identity.\n",
        protocol::k_connection_message_size, protocol::k_header_size, protocol::k_body_sealed_size);
    fmt::print(
        "  2. The callee opens and checks it. On any failure it sends the 4 bytes \"nope\" and\n"
        "     closes; otherwise it answers with its own {}-byte message, bound to the first.\n",
        protocol::k_connection_message_size);
    fmt::print(
        "  3. Both derive two AES-256-GCM keys with HKDF-SHA-256, one per direction (never "
        "shown).\n");
    fmt::print(
        "  4. Every later message is raw-DEFLATE compressed, zero-padded to a multiple of {} "
        "bytes\n     and encrypted.\n\n",
        protocol::k_padding_block);

    write_files();
    start_nodes();
    for (JournalNode* node : {&a_, &b_}) {
        asio::co_spawn(io_, node->server->async_run(), [this, node](std::exception_ptr error) {
            if (error) {
                try {
                    std::rethrow_exception(error);
                } catch (const std::exception& e) {
                    server_failure_ = fmt::format("{} stopped: {}", node->who->name, e.what());
                }
            }
            static_cast<void>(servers_done_.try_send(ErrorCode{}));
        });
    }
    std::string failure = "the demo did not run";
    asio::co_spawn(io_, main_flow(),
                   [this, &failure](std::exception_ptr error, std::string result) {
                       if (error) {
                           try {
                               std::rethrow_exception(error);
                           } catch (const std::exception& e) {
                               result = e.what();
                           }
                       }
                       failure = std::move(result);
                       io_.stop();  // whatever is left (a lingering close) is cut short
                   });
    io_.run();
    if (failure.empty() && !server_failure_.empty())
        failure = server_failure_;
    return failure;
}

}  // namespace

int main() {
    // Writing to a socket the peer closed must be an error code, not a signal.
    std::signal(SIGPIPE, SIG_IGN);
    try {
        const TempFolder folder;
        const Watchdog watchdog(k_watchdog, folder.path());
        std::string failure;
        {
            Demo demo(folder.path());
            failure = demo.run();
        }  // the nodes close their journals before the folder goes
        if (!failure.empty()) {
            std::fflush(stdout);
            fmt::print(stderr, "sdmp-demo: failed: {}\n", failure);
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        fmt::print(stderr, "sdmp-demo: failed: {}\n", e.what());
        return 1;
    }
}
