// `tls`: the same framing over TLS 1.3 with mutual authentication (OpenSSL via Asio ssl::stream).
//
// At startup the system creates, in memory, an Ed25519 CA and an Ed25519 server and client
// certificate signed by it (certs.hpp, shared with `grpc`). Both sides require and verify the
// peer's chain against that CA; the client also checks the server's name. The parameters mirror
// sdmp suite 1 (X25519, Ed25519, AES-256-GCM) as closely as TLS 1.3 allows:
// TLS_AES_256_GCM_SHA384, group X25519, signature scheme ed25519. Every connection is a full
// handshake: session tickets and caches are off.
#include "../certs.hpp"
#include "../framed.hpp"

#include <openssl/ssl.h>
#include <boost/asio/ssl.hpp>

namespace sdmp::bench {
namespace {

namespace ssl = asio::ssl;
using framed::error_code;
using framed::tcp;
using TlsStream = ssl::stream<tcp::socket>;

using certs::k_server_name;

void check(long ok, const char* what) {
    if (ok != 1) {
        certs::throw_openssl("tls", what);
    }
}

std::shared_ptr<ssl::context> make_context(bool server, X509* cert, EVP_PKEY* key, X509* ca) {
    auto context = std::make_shared<ssl::context>(server ? ssl::context::tls_server
                                                         : ssl::context::tls_client);
    SSL_CTX* h = context->native_handle();
    check(SSL_CTX_set_min_proto_version(h, TLS1_3_VERSION), "min protocol version");
    check(SSL_CTX_set_max_proto_version(h, TLS1_3_VERSION), "max protocol version");
    check(SSL_CTX_set_ciphersuites(h, "TLS_AES_256_GCM_SHA384"), "cipher suites");
    check(SSL_CTX_set1_groups_list(h, "X25519"), "groups");
    check(SSL_CTX_set1_sigalgs_list(h, "ed25519"), "signature algorithms");
    check(SSL_CTX_use_certificate(h, cert), "own certificate");
    check(SSL_CTX_use_PrivateKey(h, key), "own private key");
    check(SSL_CTX_check_private_key(h), "key matches certificate");
    check(X509_STORE_add_cert(SSL_CTX_get_cert_store(h), ca), "trusted CA");
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    // Full handshakes only: no resumption on either side.
    SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_OFF);
    if (server) {
        check(SSL_CTX_set_num_tickets(h, 0), "session tickets");
    }
    return context;
}

struct TlsTraits {
    using Stream = TlsStream;
    static constexpr bool has_handshake = true;

    std::shared_ptr<ssl::context> context;

    Stream make_server_stream(tcp::socket socket) const {
        return Stream(std::move(socket), *context);
    }

    asio::awaitable<error_code> server_handshake(Stream& stream) const {
        auto [ec] = co_await stream.async_handshake(ssl::stream_base::server,
                                                    asio::as_tuple(asio::use_awaitable));
        co_return ec;
    }
};

class TlsSystem final : public System {
  public:
    TlsSystem() {
        const certs::Credentials c = certs::make_ed25519_credentials();
        server_context_ = make_context(true, c.server_cert.get(), c.server_key.get(), c.ca.get());
        client_context_ = make_context(false, c.client_cert.get(), c.client_key.get(), c.ca.get());
    }

    [[nodiscard]] std::string_view name() const override { return "tls"; }

    asio::awaitable<std::unique_ptr<Server>> start_server(asio::any_io_executor server_ex,
                                                          ServerMode mode) override {
        co_return std::make_unique<framed::FramedServer<TlsTraits>>(
            server_ex, TlsTraits{server_context_}, mode);
    }

    asio::awaitable<std::unique_ptr<Connection>> connect(asio::any_io_executor client_ex,
                                                         tcp::endpoint server) override {
        tcp::socket socket(client_ex);
        co_await socket.async_connect(server, asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        TlsStream stream(std::move(socket), *client_context_);
        check(SSL_set1_host(stream.native_handle(), k_server_name), "expected server name");
        co_await stream.async_handshake(ssl::stream_base::client, asio::use_awaitable);
        co_return std::make_unique<framed::FramedConnection<TlsStream>>(std::move(stream));
    }

  private:
    std::shared_ptr<ssl::context> server_context_;
    std::shared_ptr<ssl::context> client_context_;
};

}  // namespace

SDMP_BENCH_REGISTER_SYSTEM(tls, "tls", 1, [] { return std::make_unique<TlsSystem>(); });

}  // namespace sdmp::bench
