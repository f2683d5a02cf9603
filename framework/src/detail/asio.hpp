// Asio pieces shared by the framework's sources (kept out of the public headers).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <system_error>

namespace sdmp::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Executor = asio::any_io_executor;
using Timer = asio::steady_timer;
using SteadyClock = std::chrono::steady_clock;

// Completion token that reports errors as values (no exception per cancelled timer or EOF).
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A wake-up signal for one waiting coroutine (capacity 1: a pending wake is never lost, extra
// wakes merge). Used with a predicate loop; never as a timer.
using WakeChannel = asio::experimental::channel<void(boost::system::error_code)>;
// The same, for waiters woken from other threads.
using ConcurrentWakeChannel =
    asio::experimental::concurrent_channel<void(boost::system::error_code)>;

// Throws the outer API's exception type (Asio's convention) for an sdmp or system code.
[[noreturn]] inline void throw_error(std::error_code ec, const std::string& what) {
    throw boost::system::system_error(boost::system::error_code(ec), what);
}

// Boost.System codes (Asio's) as std::error_code, the library's internal error type.
inline std::error_code to_std(boost::system::error_code ec) {
    return ec;
}

// "192.0.2.1:7000" / "[2001:db8::1]:7000".
std::string format_endpoint(const tcp::endpoint& endpoint);

}  // namespace sdmp::detail
