// The sdmp error category of the crypto and protocol layers (it lives in the lowest library).
// The framework's own codes (connections, sessions) are sdmp::framework_errc
// (sdmp/framework/error.hpp).
#pragma once

#include <string>
#include <system_error>

namespace sdmp {

// Error codes produced inside the library. Values are stable: they appear in logs and metrics.
enum class errc {
    ok = 0,
    // crypto / files
    crypto_failure = 1,   // a primitive failed unexpectedly (provider bug or bad key material)
    invalid_key = 2,      // key bytes of the wrong size or type
    low_order_point = 3,  // a DH result was all zero (protocol.md §3.3)
    authentication_failed = 4,  // an AEAD tag or signature did not verify
    file_not_found = 10,
    file_permissions = 11,  // a private key file is readable by group or others
    file_malformed = 12,    // a key or trust-store file does not parse
    file_io = 13,
    unknown_peer = 14,  // no such fingerprint or name in the trust store
    duplicate_peer = 15,
    // protocol. 20 was need_more_data, retired: waiting for bytes is not an error (RecordOpener
    // reports it as OpenStatus::need_more); values are stable, so it is not reused.
    malformed = 21,       // bytes do not decode
    limit_exceeded = 22,  // a length read from the wire exceeds a configured limit
    bad_padding = 23,     // record padding is not all zero
    decompression_failed = 24,
    counter_exhausted = 25,   // a nonce counter would wrap; the connection must close
    handshake_rejected = 26,  // this side refused the peer's connection message
};

const std::error_category& sdmp_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), sdmp_category()};
}

}  // namespace sdmp

template <>
struct std::is_error_code_enum<sdmp::errc> : std::true_type {};
