// Errors of the framework layer: connections and sessions. The lower layers' codes (keys,
// files, records, messages, the handshake's own checks) are sdmp::errc (sdmp/error.hpp); a
// session may end with either.
#pragma once

#include <system_error>

namespace sdmp {

// Values are stable: they appear in logs and metrics.
enum class framework_errc {
    refused_by_peer = 40,  // the peer answered our connection message with `nope`
    handshake_timeout = 41,
    connection_closed = 42,
    session_shutting_down = 43,
    queue_full = 44,
    connection_lost = 45,  // the stream ended without the peer's `end` (protocol.md §6.6)
};

// Its name is "sdmp.framework".
const std::error_category& framework_category() noexcept;

inline std::error_code make_error_code(framework_errc e) noexcept {
    return {static_cast<int>(e), framework_category()};
}

}  // namespace sdmp

template <>
struct std::is_error_code_enum<sdmp::framework_errc> : std::true_type {};
