// BlockingExecutor runs work off the caller's thread and hands back results and exceptions.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>

#include "sdmp/services/blocking_executor.hpp"

using sdmp::services::BlockingExecutor;

TEST_CASE("BlockingExecutor runs work on its own thread and resumes the caller") {
    BlockingExecutor executor(1);
    boost::asio::io_context io;
    const auto io_thread = std::this_thread::get_id();
    auto result = boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<bool> {
            const auto worker = co_await executor.run([] { return std::this_thread::get_id(); });
            // Back on the io_context's thread after the work.
            co_return worker != io_thread&& std::this_thread::get_id() == io_thread;
        },
        boost::asio::use_future);
    io.run();
    CHECK(result.get());
}

TEST_CASE("BlockingExecutor rethrows the work's exception to the awaiting coroutine") {
    BlockingExecutor executor(1);
    boost::asio::io_context io;
    auto result = boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
            co_await executor.run([] { throw std::runtime_error("disk on fire"); });
        },
        boost::asio::use_future);
    io.run();
    CHECK_THROWS_WITH(result.get(), "disk on fire");
}
