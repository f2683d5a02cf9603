// A server's own io_contexts and threads, and where connections go (see
// detail/server_runner.hpp).
#include "detail/server_runner.hpp"

#include <algorithm>
#include <exception>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

namespace sdmp::detail {

ServerContexts::ServerContexts(ThreadingModel model, std::size_t threads)
    : model_(model), threads_(std::max<std::size_t>(1, threads)) {
    if (model_ == ThreadingModel::context_per_thread) {
        // Hint 1: each is run by exactly one thread. Posting from other threads stays safe
        // (only the "unsafe" hints drop the scheduler's and reactor's locks).
        for (std::size_t i = 0; i < threads_; ++i)
            contexts_.push_back(std::make_unique<OwnedContext>(1));
    } else {
        contexts_.push_back(std::make_unique<OwnedContext>(static_cast<int>(threads_)));
    }
}

ServerContexts::~ServerContexts() {
    for (auto& context : contexts_)
        context->shutdown();
    contexts_.clear();
}

std::vector<Executor> ServerContexts::pinned_executors() const {
    std::vector<Executor> out;
    if (model_ == ThreadingModel::context_per_thread) {
        for (const auto& context : contexts_)
            out.emplace_back(context->get_executor());
    }
    return out;
}

void ServerContexts::run(asio::awaitable<void> main) {
    struct RunState {
        std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
        std::exception_ptr error;
    };
    auto state = std::make_shared<RunState>();
    for (auto& context : contexts_)
        state->guards.push_back(asio::make_work_guard(*context));
    const std::size_t per_context = model_ == ThreadingModel::context_per_thread ? 1 : threads_;
    std::vector<std::thread> threads;
    try {
        for (std::size_t c = 0; c < contexts_.size(); ++c) {
            for (std::size_t t = (c == 0 ? 1 : 0); t < per_context; ++t)
                threads.emplace_back([context = contexts_[c].get()] { context->run(); });
        }
    } catch (...) {
        // A context without its thread could not serve: stop them all and report.
        for (auto& context : contexts_)
            context->stop();
        for (auto& thread : threads)
            thread.join();
        for (auto& guard : state->guards)
            guard.reset();
        for (auto& context : contexts_)
            context->restart();
        throw;
    }
    // Only once every thread runs (the guards keep them waiting): if one could not be
    // started, nothing was queued that a later run() would find.
    asio::co_spawn(*contexts_.front(), std::move(main), [state](std::exception_ptr e) {
        state->error = e;
        for (auto& guard : state->guards)
            guard.reset();
    });
    contexts_.front()->run();
    for (auto& thread : threads)
        thread.join();
    for (auto& context : contexts_)
        context->restart();
    if (state->error)
        std::rethrow_exception(state->error);
}

ConnectionPlacement::ConnectionPlacement(Executor executor, std::vector<Executor> pinned)
    : executor_(std::move(executor)), pinned_(std::move(pinned)), load_(pinned_.size()) {}

std::size_t ConnectionPlacement::pick() {
    if (pinned_.empty())
        return k_not_pinned;
    const std::size_t n = pinned_.size();
    std::size_t best = next_ % n;
    std::size_t best_load = load_[best].load(std::memory_order_relaxed);
    for (std::size_t i = 1; i < n && best_load != 0; ++i) {
        const std::size_t candidate = (next_ + i) % n;
        const std::size_t load = load_[candidate].load(std::memory_order_relaxed);
        if (load < best_load) {
            best = candidate;
            best_load = load;
        }
    }
    next_ = best + 1;
    return best;
}

Executor ConnectionPlacement::executor(std::size_t slot) const {
    // A pinned io_context is run by one thread only, so its connections need no strand.
    return slot == k_not_pinned ? Executor(asio::make_strand(executor_)) : pinned_[slot];
}

void ConnectionPlacement::add(std::size_t slot) noexcept {
    if (slot != k_not_pinned)
        load_[slot].fetch_add(1, std::memory_order_relaxed);
}

void ConnectionPlacement::remove(std::size_t slot) noexcept {
    if (slot != k_not_pinned)
        load_[slot].fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace sdmp::detail
