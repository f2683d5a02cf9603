// `grpc`: gRPC (Debian 12: 1.51) with its C++ callback API over mutual TLS; see grpc.hpp and
// docs/performance.md ("The grpc system").
//
// At startup the system creates the same kind of in-memory Ed25519 CA, server and client
// certificates as `tls` (certs.hpp) and hands them to gRPC as PEM: gRPC's TLS stack (OpenSSL 3
// underneath) takes Ed25519 keys. The server requires and verifies the client's chain
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY); the client verifies the server's
// chain and its name (sdmp-bench-server, through the target-name override, as the address is
// 127.0.0.1). No client session cache is configured, so every connection is a full handshake.
//
// A Connection is one grpc::Channel of its own: the channel argument
// GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL keeps channels from sharing a subchannel (and so a TCP
// connection) with other channels of identical arguments, which gRPC otherwise does. connect()
// completes once the channel is READY (TCP, TLS 1.3 and HTTP/2 settings exchanged).
#include "grpc.hpp"

#include "../certs.hpp"
#include "../framed.hpp"
#include "echo.grpc.pb.h"

#include <fmt/format.h>
#include <pthread.h>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <filesystem>
#include <fstream>
#include <list>
#include <system_error>

namespace sdmp::bench::grpc_bench {

using error_code = boost::system::error_code;
using asio::ip::tcp;

// --- ThreadCensus -------------------------------------------------------------------------------

namespace {

std::string read_line(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

}  // namespace

void ThreadCensus::sample() {
    {
        // Callers sample at every close; reading /proc is ~0.1 ms, so at most once per 10 ms.
        const std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        if (now - last_sample_ < std::chrono::milliseconds(10)) {
            return;
        }
        last_sample_ = now;
    }
    const std::string process_name = read_line("/proc/self/comm");
    std::map<std::string, std::size_t> by_name;
    std::size_t total = 0;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
        const std::string name = read_line(task.path() / "comm");
        // A thread may end between listing and reading: it then has no name.
        if (name.empty() || name == process_name || name == ConnectivityWatcher::k_thread_name) {
            continue;
        }
        ++by_name[name];
        ++total;
    }
    const std::lock_guard lock(mutex_);
    if (total >= max_) {
        max_ = total;
        by_name_ = std::move(by_name);
    }
}

nlohmann::ordered_json ThreadCensus::to_json() const {
    const std::lock_guard lock(mutex_);
    nlohmann::ordered_json names = nlohmann::ordered_json::object();
    for (const auto& [name, count] : by_name_) {
        names[name] = count;
    }
    return {{"max", max_}, {"by_name", names}};
}

// --- ConnectivityWatcher ------------------------------------------------------------------------

namespace {

// Handlers are moved in by construction: Boost 1.81's any_completion_handler has no move
// assignment of its own (its converting assignment wraps the source, endlessly).
struct Watch {
    Watch(asio::any_io_executor ex, asio::any_completion_handler<void(bool)> h)
        : executor(std::move(ex)), handler(std::move(h)) {}
    asio::any_io_executor executor;
    asio::any_completion_handler<void(bool)> handler;
};

}  // namespace

ConnectivityWatcher::ConnectivityWatcher() : thread_([this] { run(); }) {}

ConnectivityWatcher::~ConnectivityWatcher() {
    queue_.Shutdown();
    thread_.join();
}

void ConnectivityWatcher::run() {
    pthread_setname_np(pthread_self(), k_thread_name);
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
        const std::unique_ptr<Watch> watch(static_cast<Watch*>(tag));
        asio::post(watch->executor,
                   [handler = std::move(watch->handler), ok]() mutable { std::move(handler)(ok); });
    }
}

asio::awaitable<bool> ConnectivityWatcher::changed(::grpc::Channel& channel,
                                                   grpc_connectivity_state last,
                                                   std::chrono::system_clock::time_point deadline) {
    auto executor = co_await asio::this_coro::executor;
    const bool result = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(bool)>(
        [&](asio::any_completion_handler<void(bool)> handler) {
            auto watch = std::make_unique<Watch>(executor, std::move(handler));
            channel.NotifyOnStateChange(last, deadline, &queue_, watch.release());
        },
        asio::use_awaitable);
    co_return result;
}

// --- errors -------------------------------------------------------------------------------------

namespace {

class StatusCategory final : public std::error_category {
  public:
    [[nodiscard]] const char* name() const noexcept override { return "grpc"; }
    [[nodiscard]] std::string message(int code) const override {
        return fmt::format("gRPC status {}", code);
    }
};

}  // namespace

error_code to_error_code(const ::grpc::Status& status) {
    static const StatusCategory category;
    if (status.ok()) {
        return {};
    }
    return error_code(std::error_code(static_cast<int>(status.error_code()), category));
}

// --- client -------------------------------------------------------------------------------------

namespace {

// One channel and its calls. Lives as long as its Connection or its last call in flight (a
// gRPC callback holds a reference); touched only on the client executor, except that a call's
// completion callback fills that call's response on a gRPC thread before posting.
class ChannelState final : public std::enable_shared_from_this<ChannelState> {
  public:
    ChannelState(asio::any_io_executor executor, std::shared_ptr<::grpc::Channel> channel)
        : executor_(executor),
          channel_(std::move(channel)),
          stub_(grpc_echo::Echo::NewStub(channel_)),
          idle_(executor) {}

    [[nodiscard]] ::grpc::Channel& channel() const { return *channel_; }

    void start(std::span<const std::uint8_t> body, Bytes& response,
               asio::any_completion_handler<void(error_code)> handler) {
        if (closing_) {
            asio::post(executor_, [h = std::move(handler)]() mutable {
                std::move(h)(asio::error::operation_aborted);
            });
            return;
        }
        Call& call = calls_.emplace_back(&response, std::move(handler));
        call.self = std::prev(calls_.end());
        call.request.set_body(body.data(), body.size());
        stub_->async()->Echo(&call.context, &call.request, &call.reply,
                             [self = shared_from_this(), &call](::grpc::Status status) mutable {
                                 ChannelState& state = *self;
                                 state.on_done(std::move(self), call, status);
                             });
    }

    // Cancels every call in flight and completes once each has completed; then releases the
    // channel, which closes its connection.
    asio::awaitable<void> close() {
        begin_close();
        co_await idle_.wait();
        stub_.reset();
        channel_.reset();
    }

    void begin_close() {
        closing_ = true;
        for (Call& call : calls_) {
            call.context.TryCancel();
        }
        if (calls_.empty()) {
            idle_.set();
        }
    }

  private:
    struct Call {
        Call(Bytes* r, asio::any_completion_handler<void(error_code)> h)
            : response(r), handler(std::move(h)) {}
        ::grpc::ClientContext context;
        grpc_echo::Blob request;
        grpc_echo::Blob reply;
        Bytes* response;
        asio::any_completion_handler<void(error_code)> handler;
        std::list<Call>::iterator self;
    };

    // On a gRPC thread. The caller is suspended until the posted completion runs, so writing its
    // response here is safe; the post orders it before the caller resumes. The callback's
    // reference moves into the post, so the state (and a channel not closed) is never destroyed
    // on a gRPC thread.
    void on_done(std::shared_ptr<ChannelState> self, Call& call, const ::grpc::Status& status) {
        const error_code ec = to_error_code(status);
        if (!ec) {
            const std::string& body = call.reply.body();
            call.response->assign(body.begin(), body.end());
        }
        asio::post(executor_, [self = std::move(self), &call, ec] { self->finish(call, ec); });
    }

    void finish(Call& call, error_code ec) {
        auto handler = std::move(call.handler);
        calls_.erase(call.self);
        if (closing_ && calls_.empty()) {
            idle_.set();
        }
        std::move(handler)(ec);
    }

    asio::any_io_executor executor_;
    std::shared_ptr<::grpc::Channel> channel_;
    std::unique_ptr<grpc_echo::Echo::Stub> stub_;
    std::list<Call> calls_;
    bool closing_ = false;
    framed::Event idle_;
};

class GrpcConnection final : public Connection {
  public:
    GrpcConnection(std::shared_ptr<ChannelState> state, ConnectivityWatcher& watcher,
                   ThreadCensus& census)
        : state_(std::move(state)), watcher_(watcher), census_(census) {}
    GrpcConnection(const GrpcConnection&) = delete;
    GrpcConnection& operator=(const GrpcConnection&) = delete;
    ~GrpcConnection() override {
        if (!closed_) {
            state_->begin_close();  // calls in flight keep the state alive until they complete
        }
    }

    asio::awaitable<void> request(std::span<const std::uint8_t> body, Bytes& response) override {
        co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(error_code)>(
            [this, body, &response](asio::any_completion_handler<void(error_code)> handler) {
                state_->start(body, response, std::move(handler));
            },
            asio::use_awaitable);
    }

    // The server closing the connection (GOAWAY, or the connection lost) takes the channel out
    // of READY; nothing here asks it to connect again.
    asio::awaitable<void> wait_closed() override {
        for (;;) {
            const grpc_connectivity_state state = state_->channel().GetState(false);
            if (state != GRPC_CHANNEL_READY) {
                co_return;
            }
            const auto deadline = std::chrono::system_clock::now() + std::chrono::minutes(10);
            co_await watcher_.changed(state_->channel(), state, deadline);
        }
    }

    asio::awaitable<void> close() override {
        census_.sample();
        closed_ = true;
        co_await state_->close();
    }

  private:
    std::shared_ptr<ChannelState> state_;
    ConnectivityWatcher& watcher_;
    ThreadCensus& census_;
    bool closed_ = false;
};

// --- system -------------------------------------------------------------------------------------

class GrpcSystem final : public System {
  public:
    GrpcSystem() {
        const certs::Credentials c = certs::make_ed25519_credentials();
        const std::string ca = certs::to_pem(c.ca.get());

        ::grpc::SslServerCredentialsOptions server_options(
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
        server_options.pem_root_certs = ca;
        ::grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
        pair.private_key = certs::to_pem(c.server_key.get());
        pair.cert_chain = certs::to_pem(c.server_cert.get());
        server_options.pem_key_cert_pairs.push_back(pair);
        server_credentials_ = ::grpc::SslServerCredentials(server_options);

        ::grpc::SslCredentialsOptions client_options;
        client_options.pem_root_certs = ca;
        client_options.pem_private_key = certs::to_pem(c.client_key.get());
        client_options.pem_cert_chain = certs::to_pem(c.client_cert.get());
        channel_credentials_ = ::grpc::SslCredentials(client_options);

        channel_args_.SetSslTargetNameOverride(certs::k_server_name);
        channel_args_.SetMaxReceiveMessageSize(k_max_message);
        channel_args_.SetMaxSendMessageSize(k_max_message);
        channel_args_.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    }

    [[nodiscard]] std::string_view name() const override { return "grpc"; }

    asio::awaitable<std::unique_ptr<Server>> start_server(asio::any_io_executor,
                                                          ServerMode mode) override {
        co_return make_server(mode, server_credentials_, census_);
    }

    asio::awaitable<std::unique_ptr<Connection>> connect(asio::any_io_executor client_ex,
                                                         tcp::endpoint server) override {
        const std::string target = fmt::format("ipv4:127.0.0.1:{}", server.port());
        auto state = std::make_shared<ChannelState>(
            client_ex, ::grpc::CreateCustomChannel(target, channel_credentials_, channel_args_));
        const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(30);
        // GetState(true) queues IDLE -> CONNECTING on the channel's work serializer, which also
        // registers watchers, in order: a watcher registered after it never sees the fresh
        // channel's IDLE, so CONNECTING is the state to wait out. Waiting out IDLE instead
        // misses a connection that was established and closed before the watcher was added.
        state->channel().GetState(/*try_to_connect=*/true);
        grpc_connectivity_state seen = GRPC_CHANNEL_CONNECTING;
        for (;;) {
            const bool changed = co_await watcher_.changed(state->channel(), seen, deadline);
            if (!changed) {
                throw boost::system::system_error(asio::error::timed_out, "grpc: connect");
            }
            seen = state->channel().GetState(false);
            // Only a connection that was READY goes back to IDLE (a failed attempt goes to
            // TRANSIENT_FAILURE): IDLE means established and already closed by the server
            // (close_on_accept's GOAWAY).
            if (seen == GRPC_CHANNEL_READY || seen == GRPC_CHANNEL_IDLE) {
                break;
            }
            if (seen == GRPC_CHANNEL_TRANSIENT_FAILURE || seen == GRPC_CHANNEL_SHUTDOWN) {
                throw boost::system::system_error(asio::error::connection_refused,
                                                  "grpc: channel failed to connect");
            }
        }
        co_return std::make_unique<GrpcConnection>(std::move(state), watcher_, census_);
    }

    [[nodiscard]] nlohmann::ordered_json notes() const override {
        census_.sample();
        return {{"grpc_version", ::grpc::Version()},
                {"certificates", "Ed25519 (CA, server, client), mutual TLS"},
                {"grpc_threads", census_.to_json()},
                {"own_threads", {{ConnectivityWatcher::k_thread_name, 1}}}};
    }

  private:
    // First: its completion queue keeps gRPC initialized for the system's lifetime, so gRPC's
    // threads and global state are not torn down and rebuilt between trials.
    ConnectivityWatcher watcher_;
    mutable ThreadCensus census_;
    std::shared_ptr<::grpc::ServerCredentials> server_credentials_;
    std::shared_ptr<::grpc::ChannelCredentials> channel_credentials_;
    ::grpc::ChannelArguments channel_args_;
};

}  // namespace
}  // namespace sdmp::bench::grpc_bench

namespace sdmp::bench {

SDMP_BENCH_REGISTER_SYSTEM(grpc, "grpc", 3,
                           [] { return std::make_unique<grpc_bench::GrpcSystem>(); });

}  // namespace sdmp::bench
