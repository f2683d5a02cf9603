// Error handling shared by the OpenSSL provider's files (openssl_support.hpp).
#include "openssl_support.hpp"

#include <openssl/err.h>

#include <array>
#include <string>
#include <system_error>

#include "sdmp/error.hpp"

namespace sdmp::crypto::openssl {

void clear_errors() noexcept {
    ERR_clear_error();
}

void throw_failure(const char* what) {
    std::string message(what);
    if (const unsigned long code = ERR_peek_error(); code != 0) {
        std::array<char, 256> text{};
        ERR_error_string_n(code, text.data(), text.size());
        message += ": ";
        message += text.data();
    }
    clear_errors();
    throw std::system_error(make_error_code(errc::crypto_failure), message);
}

const unsigned char* data_or_empty(ByteView bytes) noexcept {
    static const unsigned char k_none = 0;
    return bytes.empty() ? &k_none : bytes.data();
}

}  // namespace sdmp::crypto::openssl
