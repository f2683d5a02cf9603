// Runs blocking work (SQLite calls) on a small thread pool of its own, so a slow disk write
// never stalls a session's strand: the handler co_awaits the result and resumes on its own
// executor. All work submitted to one BlockingExecutor runs serially (a strand), so a store
// that is only touched through it needs no lock.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sdmp::services {

class BlockingExecutor {
  public:
    using Strand = boost::asio::strand<boost::asio::thread_pool::executor_type>;

    explicit BlockingExecutor(std::size_t threads = 1);
    // Waits for the work already submitted, then joins the threads.
    ~BlockingExecutor();
    BlockingExecutor(const BlockingExecutor&) = delete;
    BlockingExecutor& operator=(const BlockingExecutor&) = delete;

    // Runs `work()` on the pool and completes with its result (or rethrows its exception) on
    // the awaiting coroutine's executor. `work` must not capture references that die before
    // it runs (the awaiting coroutine stays suspended until then, so its locals are fine).
    template <typename F>
    boost::asio::awaitable<std::invoke_result_t<F&>> run(F work) {
        using Result = std::invoke_result_t<F&>;
        co_return co_await boost::asio::co_spawn(
            strand_,
            [w = std::move(work)]() mutable -> boost::asio::awaitable<Result> {
                if constexpr (std::is_void_v<Result>) {
                    w();
                    co_return;
                } else {
                    co_return w();
                }
            },
            boost::asio::use_awaitable);
    }

    Strand get_executor() const noexcept { return strand_; }

  private:
    boost::asio::thread_pool pool_;
    Strand strand_;
};

}  // namespace sdmp::services
