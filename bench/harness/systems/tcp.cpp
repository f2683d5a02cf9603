// `tcp`: the length-prefixed framing over plain TCP, no crypto. The floor every other system is
// measured against.
#include "../framed.hpp"

namespace sdmp::bench {
namespace {

using framed::error_code;
using framed::tcp;

struct TcpTraits {
    using Stream = tcp::socket;
    static constexpr bool has_handshake = false;

    Stream make_server_stream(tcp::socket socket) const { return socket; }
    asio::awaitable<error_code> server_handshake(Stream&) const { co_return error_code{}; }
};

class TcpSystem final : public System {
  public:
    [[nodiscard]] std::string_view name() const override { return "tcp"; }

    asio::awaitable<std::unique_ptr<Server>> start_server(asio::any_io_executor server_ex,
                                                          ServerMode mode) override {
        co_return std::make_unique<framed::FramedServer<TcpTraits>>(server_ex, TcpTraits{}, mode);
    }

    asio::awaitable<std::unique_ptr<Connection>> connect(asio::any_io_executor client_ex,
                                                         tcp::endpoint server) override {
        tcp::socket socket(client_ex);
        co_await socket.async_connect(server, asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        co_return std::make_unique<framed::FramedConnection<tcp::socket>>(std::move(socket));
    }
};

}  // namespace

SDMP_BENCH_REGISTER_SYSTEM(tcp, "tcp", 2, [] { return std::make_unique<TcpSystem>(); });

}  // namespace sdmp::bench
