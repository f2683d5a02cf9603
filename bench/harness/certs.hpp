// In-memory mutual-TLS material for the TLS-based baselines (`tls`, `grpc`): a CA and a server
// and a client certificate signed by it, all generated at startup with OpenSSL and never
// written to disk.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace sdmp::bench::certs {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The server certificate's DNS name; clients check the server against it.
inline constexpr const char* k_server_name = "sdmp-bench-server";

// Ed25519 keys throughout (RFC 8410): the CA, the server and the client. v3 certificates with
// key usage and extended key usage (serverAuth / clientAuth); the server's carries
// DNS:sdmp-bench-server. Valid from an hour ago for a week.
struct Credentials {
    X509Ptr ca;
    PkeyPtr server_key;
    X509Ptr server_cert;
    PkeyPtr client_key;
    X509Ptr client_cert;
};

// Throws std::runtime_error naming the failed OpenSSL step.
Credentials make_ed25519_credentials();

// PEM text of a certificate, and of a private key (unencrypted PKCS #8), for APIs that take
// PEM strings (gRPC's). Throw std::runtime_error on failure.
std::string to_pem(X509* cert);
std::string to_pem(EVP_PKEY* key);

// Throws std::runtime_error("<who>: <what>: <OpenSSL's first queued error>") and clears the
// OpenSSL error queue.
[[noreturn]] void throw_openssl(const char* who, const char* what);

}  // namespace sdmp::bench::certs
