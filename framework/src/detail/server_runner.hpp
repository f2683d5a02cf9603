// The io_contexts and threads of a server that owns them (Server::run()): one io_context run
// by every thread (strand_per_session) or one per thread (context_per_thread), and the
// placement of each accepted connection on one of the latter. Kept apart from the server's
// connection logic, which only sees executors.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "detail/asio.hpp"
#include "sdmp/framework/options.hpp"

namespace sdmp::detail {

class ServerContexts {
  public:
    ServerContexts(ThreadingModel model, std::size_t threads);
    // Sockets, timers and handlers of one context can be owned by objects that another
    // context's pending handlers keep alive (the ServerImpl holds the acceptors on the first
    // context and sessions on every other). So every context is shut down, which destroys all
    // pending handlers and with them those objects, before any context is destroyed.
    ~ServerContexts();
    ServerContexts(const ServerContexts&) = delete;
    ServerContexts& operator=(const ServerContexts&) = delete;

    std::size_t count() const noexcept { return contexts_.size(); }
    Executor main_executor() const { return contexts_.front()->get_executor(); }
    // context_per_thread: one executor per thread, to pin connections to; otherwise empty.
    std::vector<Executor> pinned_executors() const;

    // Runs `main` (the server's run coroutine) on the first context and every context on its
    // threads (the calling thread runs the first). Work guards keep a context without
    // connections from returning early; they are dropped when `main` completes, after which
    // each context returns once the last of its work (posted completions, closing sockets) is
    // done. Rethrows what `main` threw.
    void run(asio::awaitable<void> main);

  private:
    // execution_context::shutdown() is protected; the destructor above needs it.
    struct OwnedContext : asio::io_context {
        using asio::execution_context::shutdown;
        using asio::io_context::io_context;
    };

    ThreadingModel model_;
    std::size_t threads_;
    std::vector<std::unique_ptr<OwnedContext>> contexts_;
};

// context_per_thread: which of the pinned executors each connection runs on, and how many
// connections each has. Without pinned executors every connection gets a strand instead.
class ConnectionPlacement {
  public:
    static constexpr std::size_t k_not_pinned = static_cast<std::size_t>(-1);

    ConnectionPlacement(Executor executor, std::vector<Executor> pinned);

    // The executor with the fewest connections; ties go round-robin, so short connections
    // (all counts 0) still spread. Returns k_not_pinned without pinned executors. Not
    // thread-safe: one strand (the server's accept loops) picks.
    std::size_t pick();
    // The connection's executor: pinned_[slot], or a new strand.
    Executor executor(std::size_t slot) const;
    // A connection on `slot` starts / has ended (any thread); no-ops for k_not_pinned.
    void add(std::size_t slot) noexcept;
    void remove(std::size_t slot) noexcept;

  private:
    Executor executor_;
    std::vector<Executor> pinned_;
    std::vector<std::atomic<std::size_t>> load_;  // connections on each pinned executor
    std::size_t next_ = 0;
};

}  // namespace sdmp::detail
