// `sdmp`: the real framework. A sdmp::Server with a Router whose one method, "echo", echoes the
// body (or answers an empty body in ServerMode::ack); clients are sdmp::connect sessions calling
// it. Identities and trust stores are generated in memory at startup: the server trusts the
// client's key and the client names the server's fingerprint (protocol.md §1, §7). Every option
// is the framework's default, except that logging is off and both ends use the crypto provider
// named by --crypto (sdmp.hpp; Botan by default).
#include "sdmp.hpp"

#include "../framed.hpp"  // Event

#include <fmt/format.h>

#include <sdmp/sdmp.hpp>
#include <stdexcept>
#include <string>

namespace sdmp::bench {
namespace {

using tcp = asio::ip::tcp;

constexpr const char* k_method = "echo";

class SdmpServer final : public Server {
  public:
    SdmpServer(asio::any_io_executor ex, crypto::CryptoProvider& provider,
               const crypto::Identity& identity, const crypto::TrustStore& trust, ServerMode mode)
        : state_(std::make_shared<State>(ex)) {
        Router router;
        router.add(k_method, [mode](Context&, sdmp::Bytes body) -> asio::awaitable<Reply> {
            if (mode == ServerMode::ack) {
                co_return Reply::ok();
            }
            co_return Reply::ok(std::move(body));
        });
        ServerOptions options;
        options.handshake.provider = &provider;
        options.logger = Logger::null();
        // Every benchmark client uses one identity: the per-peer session cap would refuse them.
        options.max_sessions_per_peer = 0;
        if (mode == ServerMode::close_on_accept) {
            // Established on the server's side: end it at once, like the baselines close the
            // socket after their handshake.
            options.on_session = [](const Session& session) { session.abort(); };
        }
        state_->server =
            std::make_unique<sdmp::Server>(ex, identity, trust, std::move(router), options);
        const EndpointSpec bound = state_->server->listen("127.0.0.1:0");
        endpoint_ = tcp::endpoint(asio::ip::address_v4::loopback(), bound.port);
        asio::co_spawn(ex, state_->server->async_run(),
                       [state = state_](std::exception_ptr failure) {
                           state->failure = failure;
                           state->done.set();
                       });
    }
    SdmpServer(const SdmpServer&) = delete;
    SdmpServer& operator=(const SdmpServer&) = delete;
    ~SdmpServer() override {
        // stop() has normally completed; otherwise at least stop serving.
        state_->server->shutdown();
    }

    [[nodiscard]] tcp::endpoint endpoint() const override { return endpoint_; }

    asio::awaitable<void> stop() override {
        state_->server->shutdown();
        co_await state_->done.wait();
        if (state_->failure) {
            std::rethrow_exception(state_->failure);
        }
    }

  private:
    struct State {
        explicit State(asio::any_io_executor ex) : done(std::move(ex)) {}
        std::unique_ptr<sdmp::Server> server;
        framed::Event done;  // async_run() has completed
        std::exception_ptr failure;
    };
    std::shared_ptr<State> state_;
    tcp::endpoint endpoint_;
};

class SdmpConnection final : public Connection {
  public:
    explicit SdmpConnection(Session session) : session_(std::move(session)) {}

    asio::awaitable<void> request(std::span<const std::uint8_t> body, Bytes& response) override {
        // Session::call takes the body by value: the copy is part of what the API costs.
        Reply reply = co_await session_.call(k_method, sdmp::Bytes(body.begin(), body.end()));
        if (!reply.is_ok()) {
            throw std::runtime_error(fmt::format("sdmp: call failed with status {}: {}",
                                                 static_cast<int>(reply.status), reply.text()));
        }
        response = std::move(reply.body);
    }

    asio::awaitable<void> wait_closed() override { co_await session_.wait_closed(); }

    asio::awaitable<void> close() override {
        session_.close();
        co_await session_.wait_closed();
    }

  private:
    Session session_;
};

class SdmpSystem final : public System {
  public:
    explicit SdmpSystem(const std::string& crypto_name)
        : provider_(checked_provider(crypto_name)),
          server_id_(crypto::Identity::generate(provider_)),
          client_id_(crypto::Identity::generate(provider_)) {
        const auto entry = [](const crypto::Identity& id, std::string name) {
            return crypto::TrustedPeer{id.public_identity(), id.fingerprint(), std::move(name), {}};
        };
        if (server_trust_.add(entry(client_id_, "bench-client")) ||
            client_trust_.add(entry(server_id_, "bench-server"))) {
            throw std::runtime_error("sdmp: cannot build the trust stores");
        }
    }

    [[nodiscard]] std::string_view name() const override { return "sdmp"; }

    asio::awaitable<std::unique_ptr<bench::Server>> start_server(asio::any_io_executor server_ex,
                                                                 ServerMode mode) override {
        co_return std::make_unique<SdmpServer>(server_ex, provider_, server_id_, server_trust_,
                                               mode);
    }

    asio::awaitable<std::unique_ptr<Connection>> connect(asio::any_io_executor client_ex,
                                                         tcp::endpoint server) override {
        ClientOptions options;
        options.handshake.provider = &provider_;
        options.logger = Logger::null();
        Session session = co_await sdmp::connect(
            client_ex,
            Target::address(fmt::format("127.0.0.1:{}", server.port()), server_id_.fingerprint()),
            client_id_, client_trust_, std::move(options));
        co_return std::make_unique<SdmpConnection>(std::move(session));
    }

  private:
    static crypto::CryptoProvider& checked_provider(const std::string& name) {
        crypto::CryptoProvider* provider = crypto::find_provider(name);
        if (provider == nullptr) {
            throw std::invalid_argument(
                fmt::format("--crypto: no crypto provider '{}' in this build (available: {})", name,
                            fmt::join(crypto::provider_names(), ", ")));
        }
        return *provider;
    }

    crypto::CryptoProvider& provider_;  // find_provider()'s: lives as long as the process
    crypto::Identity server_id_;
    crypto::Identity client_id_;
    crypto::TrustStore server_trust_;
    crypto::TrustStore client_trust_;
};

}  // namespace

SDMP_BENCH_REGISTER_SYSTEM(sdmp, "sdmp", 0,
                           [] { return std::make_unique<SdmpSystem>(sdmp_crypto); });

}  // namespace sdmp::bench
