// The peer's requests and notifications: tasks, the worker coroutines that run the
// application's handlers, deadlines and cancellation, and the answers (protocol.md §6.2, §6.3).
#include <algorithm>
#include <utility>
#include <variant>
#include <vector>

#include "detail/context_access.hpp"
#include "detail/session_support.hpp"
#include "sdmp/error.hpp"

namespace sdmp::detail {

namespace {

// Idle handler workers a session keeps (more exit); two make a burst of requests cost one
// wake-up in the steady state (see schedule()).
constexpr std::size_t k_max_idle_workers = 2;

std::string_view cancel_message(Status reason) {
    switch (reason) {
        case Status::deadline_exceeded:
            return "deadline exceeded";
        case Status::cancelled:
            return "cancelled by the caller";
        case Status::shutting_down:
            return "the server is shutting down";
        default:
            return "cancelled";
    }
}

}  // namespace

std::shared_ptr<SessionImpl::Task> SessionImpl::make_task(
    std::uint64_t request_id, std::string method, Metadata metadata,
    std::optional<SteadyClock::time_point> deadline) {
    auto task = std::make_shared<Task>(ContextAccess::make(
        shared_from_this(), peer_, request_id, std::move(method), std::move(metadata), deadline));
    task->request_id = request_id;
    task->started = received_at_;
    requests_.add(*task);
    stats_.in_flight.store(requests_.size(), std::memory_order_relaxed);
    return task;
}

void SessionImpl::start_deadline(const std::shared_ptr<Task>& task) {
    const auto deadline = task->context.deadline();
    if (!deadline)
        return;
    task->timer.emplace(strand_);
    task->timer->expires_at(*deadline);
    task->timer->async_wait([self = shared_from_this(),
                             weak = std::weak_ptr<Task>(task)](boost::system::error_code ec) {
        if (ec)
            return;
        if (const auto t = weak.lock())
            self->cancel_task(*t, Status::deadline_exceeded);
    });
}

// Queues a task; the reader starts the workers once per record (start_workers).
void SessionImpl::schedule(std::shared_ptr<Task> task) {
    ready_.push_back(std::move(task));
}

// After the reader dispatched a record: an idle worker runs what was queued at once, on this
// stack, back to back (one resumption per record, not per request); a worker that takes a task
// while others wait arranges a standby (ensure_worker), so a handler that blocks never holds
// up the queue.
void SessionImpl::start_workers() {
    if (ready_.empty() || worker_wake_pending_ || starting_workers_ != 0)
        return;
    if (!parked_workers_.empty()) {
        resume_parked(parked_workers_, true);
    } else {
        spawn_worker();
    }
}

// Makes sure a worker will look at the queue once the strand is free: one already posted or
// starting, else an idle one resumed by a post (never inline: the caller is a worker, and
// standbys must not nest), else a new one.
void SessionImpl::ensure_worker() {
    if (worker_wake_pending_ || starting_workers_ != 0)
        return;
    if (!parked_workers_.empty()) {
        worker_wake_pending_ = true;
        asio::post(strand_, [self = shared_from_this()] {
            self->worker_wake_pending_ = false;
            if (!self->ready_.empty())
                resume_parked(self->parked_workers_, true);
        });
    } else {
        spawn_worker();
    }
}

void SessionImpl::spawn_worker() {
    auto worker = std::make_shared<Worker>();
    ++starting_workers_;
    // Started by a post, not inline: a standby worker must only run once the strand is free
    // (the handler before it suspended, or every queued task ran), or standbys would nest.
    asio::post(strand_, [self = shared_from_this(), worker] {
        asio::co_spawn(self->strand_, self->worker_loop(worker),
                       asio::bind_cancellation_slot(
                           worker->signal.slot(), [self, worker](std::exception_ptr error) {
                               // worker_loop handles every task's failure; this is a bug.
                               if (error) {
                                   self->config_.logger.error("{}: worker failed: {}",
                                                              self->config_.side, describe(error));
                               }
                           }));
    });
}

// Runs queued tasks one after another. Each handler is its own coroutine awaited here, with this
// worker's cancellation signal as its slot (cancel_task emits it); the state is reset between
// tasks so one task's cancellation never reaches the next. Taking a task while others wait
// arranges a standby worker, which runs once this one suspends: a handler that blocks never
// holds up the queue, and handlers that complete at once run back to back.
asio::awaitable<void> SessionImpl::worker_loop(std::shared_ptr<Worker> worker) {
    --starting_workers_;
    bool emitted = false;  // this worker's signal was emitted since the last reset
    for (;;) {
        if (emitted) {
            co_await asio::this_coro::reset_cancellation_state();
            emitted = false;
        }
        if (ready_.empty()) {
            if (workers_closed_ || parked_workers_.size() >= k_max_idle_workers)
                co_return;
            if (!co_await park(parked_workers_))
                co_return;  // the session ended
            continue;
        }
        std::shared_ptr<Task> task = std::move(ready_.front());
        ready_.pop_front();
        if (!ready_.empty())
            ensure_worker();
        task->worker = worker.get();
        // A fresh cancellation state per handler, as if it had a coroutine of its own (a
        // handler may have changed the filter or throw_if_cancelled of the one before).
        co_await asio::this_coro::reset_cancellation_state();
        co_await asio::this_coro::throw_if_cancelled(true);
        if (task->context.cancelled()) {
            // Cancelled while queued: the handler's first co_await sees it.
            worker->signal.emit(asio::cancellation_type::terminal);
        }
        std::exception_ptr error;
        // More tasks queued behind this one: the writer lets them answer first (see
        // write_loop). Not a ProducerScope: a scope must not span a suspension point.
        const bool more = !ready_.empty();
        if (more)
            ++producers_with_more_;
        try {
            if (task->request_id != 0) {
                co_await serve_request(*task);
            } else {
                co_await serve_notification(*task);
            }
        } catch (...) {
            // Not a std::exception (those are answered in serve_*): recorded by task_finished.
            error = std::current_exception();
        }
        if (more)
            --producers_with_more_;
        task->worker = nullptr;
        // cancel_task emits only after setting the reason, so this tells whether it did.
        emitted = emitted || task->context.cancelled();
        task_finished(task, error);
        flush();
    }
}

void SessionImpl::cancel_task(Task& task, Status reason) {
    if (task.done || task.context.cancelled())
        return;
    ContextAccess::set_cancel_reason(task.context, reason);
    // The handler runs with its worker's signal bound: whatever it awaits now is cancelled
    // (and later awaits throw operation_aborted). A queued task is cancelled when it starts.
    if (task.worker != nullptr)
        task.worker->signal.emit(asio::cancellation_type::terminal);
}

asio::awaitable<void> SessionImpl::serve_request(Task& task) {
    Reply reply;
    try {
        reply = co_await (*task.handler)(task.context, std::move(task.body));
    } catch (const StatusError& e) {
        reply = Reply::error(e.status(), e.what());
    } catch (const std::exception& e) {
        if (task.context.cancelled()) {
            reply = Reply::error(task.context.cancel_reason(),
                                 cancel_message(task.context.cancel_reason()));
        } else {
            config_.logger.debug("{}: handler '{}' threw: {}", config_.side, task.context.method(),
                                 e.what());
            reply = Reply::error(Status::application_error, e.what());
        }
    }
    task.done = true;
    if (task.timer)
        task.timer->cancel();
    // The handler's cancellation must not also cancel sending its answer.
    if (task.context.cancelled())
        co_await asio::this_coro::reset_cancellation_state();
    co_await send_response(task, std::move(reply));
}

asio::awaitable<void> SessionImpl::send_response(Task& task, Reply reply) {
    if (!lifecycle_.sending())
        co_return;  // nobody to answer
    const bool no_compress = reply.no_compress || task.no_compress;
    protocol::Message message{std::in_place_type<protocol::Response>,
                              protocol::Response{task.request_id, reply.status,
                                                 std::move(reply.metadata), std::move(reply.body)}};
    for (bool fallback = false;; fallback = true) {
        const std::size_t size = protocol::encoded_size(message);
        // protocol.md §6.2: the limit counts the envelope, not its frame.
        if (protocol::envelope_size(message) <= send_queue_.limits().encode.max_message_size) {
            if (!try_reserve(size)) {
                Waiter waiter(strand_);
                if (co_await reserve(waiter, size))
                    co_return;  // closing: nobody to answer
            }
            const auto ec = enqueue(message, size, no_compress, false);
            if (!ec) {
                task.responded = true;
                config_.metrics->request_served(task.context.method(),
                                                std::get<protocol::Response>(message).status,
                                                SteadyClock::now() - task.started);
                co_return;
            }
            release(size, 0);
            if (fallback) {
                config_.logger.error("{}: cannot encode an error answer: {}", config_.side,
                                     ec.message());
                co_return;
            }
        }
        // protocol.md §6.3: the answer itself is over a limit.
        config_.logger.warn("{}: answer of '{}' exceeds a message limit", config_.side,
                            task.context.method());
        message = protocol::Response{task.request_id,
                                     Status::too_large,
                                     {},
                                     bytes_of("response exceeds a message size limit")};
    }
}

asio::awaitable<void> SessionImpl::serve_notification(Task& task) {
    try {
        co_await (*task.notification_handler)(task.context, std::move(task.body));
    } catch (const std::exception& e) {
        if (!task.context.cancelled()) {
            config_.logger.warn("{}: notification handler '{}' threw: {}", config_.side,
                                task.context.method(), e.what());
        }
    }
    task.done = true;
}

void SessionImpl::task_finished(const std::shared_ptr<Task>& task, std::exception_ptr error) {
    if (error) {
        config_.logger.error("{}: handler '{}' failed: {}", config_.side, task->context.method(),
                             describe(error));
        if (task->request_id != 0 && !task->responded) {
            answer_now(task->request_id, Status::application_error, "handler failed",
                       task->context.method());
        }
    }
    task->done = true;
    if (task->timer)
        task->timer->cancel();
    requests_.remove(*task);
    stats_.in_flight.store(requests_.size(), std::memory_order_relaxed);
    touch_activity();
    if (requests_.empty())
        tasks_idle_.try_send(boost::system::error_code{});
    check_drained();
}

void SessionImpl::cancel_all_tasks(Status reason) {
    // cancel_task never completes a task inline, so walking the table is safe.
    requests_.for_each([&](RequestTable::Entry& entry) { cancel_task(task_of(entry), reason); });
}

}  // namespace sdmp::detail
