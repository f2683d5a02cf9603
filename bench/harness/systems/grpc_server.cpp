// The `grpc` system's server: an Echo::CallbackService behind grpc::Server (see grpc.hpp).
#include "grpc.hpp"

#include "echo.grpc.pb.h"

#include <boost/asio/ip/address_v4.hpp>

#include <stdexcept>

namespace sdmp::bench::grpc_bench {
namespace {

using asio::ip::tcp;

// Runs on gRPC's threads. Echo copies the request body into the reply (the request is the
// library's and const), as the framed baselines copy a response into their output queue.
class EchoService final : public grpc_echo::Echo::CallbackService {
  public:
    explicit EchoService(ServerMode mode) : mode_(mode) {}

    ::grpc::ServerUnaryReactor* Echo(::grpc::CallbackServerContext* context,
                                     const grpc_echo::Blob* request,
                                     grpc_echo::Blob* reply) override {
        if (mode_ == ServerMode::echo) {
            reply->set_body(request->body());
        }
        ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
        reactor->Finish(::grpc::Status::OK);
        return reactor;
    }

  private:
    ServerMode mode_;
};

class GrpcServer final : public Server {
  public:
    GrpcServer(ServerMode mode, const std::shared_ptr<::grpc::ServerCredentials>& credentials,
               ThreadCensus& census)
        : service_(mode), census_(census) {
        ::grpc::ServerBuilder builder;
        int port = 0;
        builder.AddListeningPort("127.0.0.1:0", credentials, &port);
        builder.RegisterService(&service_);
        builder.SetMaxReceiveMessageSize(k_max_message);
        builder.SetMaxSendMessageSize(k_max_message);
        if (mode == ServerMode::close_on_accept) {
            // gRPC has no hook between a connection's handshake and its first call, so a server
            // cannot close a session "as soon as it is established" the way the other systems
            // do. The nearest: a maximum connection age of 1 ms (gRPC adds ±10 % jitter), after
            // which the server sends GOAWAY and, with no call open, closes the connection. The
            // age counts from the transport's creation, i.e. after the TLS handshake.
            builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 1);
            builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 1000);
        }
        server_ = builder.BuildAndStart();
        if (!server_ || port <= 0) {
            throw std::runtime_error("grpc: the server did not start on 127.0.0.1");
        }
        endpoint_ =
            tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port));
    }

    GrpcServer(const GrpcServer&) = delete;
    GrpcServer& operator=(const GrpcServer&) = delete;

    ~GrpcServer() override {
        if (server_) {
            server_->Shutdown(std::chrono::system_clock::now());
            server_->Wait();
        }
    }

    [[nodiscard]] tcp::endpoint endpoint() const override { return endpoint_; }

    // Blocks the server thread for as long as gRPC takes to shut down (the harness runs nothing
    // else there meanwhile): calls still open after 5 s are cancelled.
    asio::awaitable<void> stop() override {
        census_.sample();
        server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
        server_->Wait();
        server_.reset();
        co_return;
    }

  private:
    EchoService service_;
    ThreadCensus& census_;
    std::unique_ptr<::grpc::Server> server_;
    tcp::endpoint endpoint_;
};

}  // namespace

std::unique_ptr<Server> make_server(ServerMode mode,
                                    std::shared_ptr<::grpc::ServerCredentials> credentials,
                                    ThreadCensus& census) {
    return std::make_unique<GrpcServer>(mode, credentials, census);
}

}  // namespace sdmp::bench::grpc_bench
