// `tls`: the same framing over TLS 1.3 with mutual authentication (OpenSSL via Asio ssl::stream).
//
// At startup the system creates, in memory, an Ed25519 CA and an Ed25519 server and client
// certificate signed by it. Both sides require and verify the peer's chain against that CA; the
// client also checks the server's name. The parameters mirror sdmp suite 1 (X25519, Ed25519,
// AES-256-GCM) as closely as TLS 1.3 allows: TLS_AES_256_GCM_SHA384, group X25519, signature
// scheme ed25519. Every connection is a full handshake: session tickets and caches are off.
#include "../framed.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <boost/asio/ssl.hpp>

#include <stdexcept>

namespace sdmp::bench {
namespace {

namespace ssl = asio::ssl;
using framed::error_code;
using framed::tcp;
using TlsStream = ssl::stream<tcp::socket>;

constexpr const char* k_server_name = "sdmp-bench-server";

[[noreturn]] void throw_openssl(const char* what) {
    char text[256] = "unknown error";
    if (const unsigned long code = ERR_get_error(); code != 0) {
        ERR_error_string_n(code, text, sizeof text);
    }
    ERR_clear_error();
    throw std::runtime_error(fmt::format("tls: {}: {}", what, text));
}

void check(long ok, const char* what) {
    if (ok != 1) {
        throw_openssl(what);
    }
}

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

PkeyPtr make_ed25519_key() {
    PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) {
        throw_openssl("Ed25519 key generation");
    }
    return key;
}

void add_extension(X509* cert, X509V3_CTX& ctx, int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) {
        throw_openssl("certificate extension");
    }
    const int added = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    check(added, "X509_add_ext");
}

struct CertSpec {
    const char* common_name;
    long serial;
    bool is_ca;
    const char* extended_key_usage;  // nullptr for the CA
    const char* subject_alt_name;    // nullptr when none
};

// A v3 certificate for `subject_key`, signed by `issuer_key`; self-signed when `issuer` is null.
X509Ptr make_certificate(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                         EVP_PKEY* issuer_key) {
    X509Ptr cert(X509_new());
    if (!cert) {
        throw_openssl("X509_new");
    }
    X509* x = cert.get();
    check(X509_set_version(x, X509_VERSION_3), "X509_set_version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(x), spec.serial), "serial");
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == nullptr ||
        X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 3600) == nullptr) {
        throw_openssl("validity");
    }
    check(X509_set_pubkey(x, subject_key), "X509_set_pubkey");
    X509_NAME* subject = X509_get_subject_name(x);
    check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(spec.common_name), -1,
                                     -1, 0),
          "subject name");
    check(X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : subject),
          "issuer name");

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
    add_extension(x, ctx, NID_basic_constraints,
                  spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_extension(x, ctx, NID_key_usage,
                  spec.is_ca ? "critical,keyCertSign" : "critical,digitalSignature");
    add_extension(x, ctx, NID_subject_key_identifier, "hash");
    if (spec.extended_key_usage != nullptr) {
        add_extension(x, ctx, NID_ext_key_usage, spec.extended_key_usage);
    }
    if (spec.subject_alt_name != nullptr) {
        add_extension(x, ctx, NID_subject_alt_name, spec.subject_alt_name);
    }
    // Ed25519 signs the message itself: no separate digest (RFC 8410).
    if (X509_sign(x, issuer_key, nullptr) <= 0) {
        throw_openssl("X509_sign");
    }
    return cert;
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
        const PkeyPtr ca_key = make_ed25519_key();
        const PkeyPtr server_key = make_ed25519_key();
        const PkeyPtr client_key = make_ed25519_key();
        const X509Ptr ca = make_certificate({"sdmp-bench CA", 1, true, nullptr, nullptr},
                                            ca_key.get(), nullptr, ca_key.get());
        const X509Ptr server_cert =
            make_certificate({k_server_name, 2, false, "serverAuth", "DNS:sdmp-bench-server"},
                             server_key.get(), ca.get(), ca_key.get());
        const X509Ptr client_cert =
            make_certificate({"sdmp-bench-client", 3, false, "clientAuth", nullptr},
                             client_key.get(), ca.get(), ca_key.get());
        server_context_ = make_context(true, server_cert.get(), server_key.get(), ca.get());
        client_context_ = make_context(false, client_cert.get(), client_key.get(), ca.get());
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
