// Errors of the framework layer: connections and sessions. The lower layers' codes (keys,
// files, records, messages, the handshake's own checks) are sdmp::errc (sdmp/error.hpp); a
// session may end with either.
#pragma once

#include <exception>
#include <system_error>
#include <type_traits>

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

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

namespace sdmp {

// Whether a failure carries `code` (sdmp::errc, sdmp::framework_errc or any other std error
// code enum):
//   catch (const boost::system::system_error& e) {
//       if (sdmp::is(e, sdmp::framework_errc::connection_closed)) ...
// One spelling for every place a code turns up (a thrown system_error, async_call's error, a
// wait_closed() reason, or a std::exception caught generically), always compared as the
// std::error_code the framework made.
template <typename Code>
requires std::is_error_code_enum_v<Code>
bool is(const std::error_code& ec, Code code) noexcept {
    return ec == code;
}

// async_call's completion error.
template <typename Code>
requires std::is_error_code_enum_v<Code>
bool is(const boost::system::error_code& ec, Code code) noexcept {
    return std::error_code(ec) == code;
}

template <typename Code>
requires std::is_error_code_enum_v<Code>
bool is(const boost::system::system_error& e, Code code) noexcept {
    return std::error_code(e.code()) == code;
}

// For a catch (const std::exception&): false unless it is a boost or std system_error.
template <typename Code>
requires std::is_error_code_enum_v<Code>
bool is(const std::exception& e, Code code) noexcept {
    if (const auto* boost_error = dynamic_cast<const boost::system::system_error*>(&e))
        return is(*boost_error, code);
    if (const auto* std_error = dynamic_cast<const std::system_error*>(&e))
        return std_error->code() == code;
    return false;
}

}  // namespace sdmp
