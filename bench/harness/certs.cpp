#include "certs.hpp"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace sdmp::bench::certs {
namespace {

void check(long ok, const char* what) {
    if (ok != 1) {
        throw_openssl("certificates", what);
    }
}

PkeyPtr make_ed25519_key() {
    PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) {
        throw_openssl("certificates", "Ed25519 key generation");
    }
    return key;
}

void add_extension(X509* cert, X509V3_CTX& ctx, int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) {
        throw_openssl("certificates", "certificate extension");
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
        throw_openssl("certificates", "X509_new");
    }
    X509* x = cert.get();
    check(X509_set_version(x, X509_VERSION_3), "X509_set_version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(x), spec.serial), "serial");
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == nullptr ||
        X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 3600) == nullptr) {
        throw_openssl("certificates", "validity");
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
        throw_openssl("certificates", "X509_sign");
    }
    return cert;
}

struct BioFree {
    void operator()(BIO* p) const { BIO_free(p); }
};

template <typename Write>
std::string pem_text(Write write, const char* what) {
    const std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    if (!bio || write(bio.get()) != 1) {
        throw_openssl("certificates", what);
    }
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

[[noreturn]] void throw_openssl(const char* who, const char* what) {
    char text[256] = "unknown error";
    if (const unsigned long code = ERR_get_error(); code != 0) {
        ERR_error_string_n(code, text, sizeof text);
    }
    ERR_clear_error();
    throw std::runtime_error(fmt::format("{}: {}: {}", who, what, text));
}

Credentials make_ed25519_credentials() {
    Credentials c;
    PkeyPtr ca_key = make_ed25519_key();
    c.server_key = make_ed25519_key();
    c.client_key = make_ed25519_key();
    c.ca = make_certificate({"sdmp-bench CA", 1, true, nullptr, nullptr}, ca_key.get(), nullptr,
                            ca_key.get());
    c.server_cert =
        make_certificate({k_server_name, 2, false, "serverAuth", "DNS:sdmp-bench-server"},
                         c.server_key.get(), c.ca.get(), ca_key.get());
    c.client_cert = make_certificate({"sdmp-bench-client", 3, false, "clientAuth", nullptr},
                                     c.client_key.get(), c.ca.get(), ca_key.get());
    return c;
}

std::string to_pem(X509* cert) {
    return pem_text([cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); }, "PEM certificate");
}

std::string to_pem(EVP_PKEY* key) {
    return pem_text(
        [key](BIO* bio) {
            return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
        },
        "PEM private key");
}

}  // namespace sdmp::bench::certs
