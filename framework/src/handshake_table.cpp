// Handshakes in progress and their deadlines (see detail/handshake_table.hpp).
#include "detail/handshake_table.hpp"

#include <sys/ioctl.h>

#include "sdmp/protocol/wire.hpp"

namespace sdmp::detail {

HandshakeWatch::HandshakeWatch(Executor executor, int native_socket)
    : executor_(executor),
      native_socket_(native_socket),
      timer_(executor),
      deadline_(SteadyClock::time_point::max()) {}

asio::awaitable<void> HandshakeWatch::expire() {
    // A later deadline just re-arms the timer when the earlier one fires; an earlier one (or
    // evict()) cancels the wait, and the loop sees that the time has come.
    while (deadline_ > SteadyClock::now()) {
        timer_.expires_at(deadline_);
        co_await timer_.async_wait(use_tuple);
    }
}

void HandshakeWatch::set_deadline(SteadyClock::time_point deadline) {
    if (evicted_)
        return;  // an eviction that came before the exchange set its first deadline stands
    const bool earlier = deadline < deadline_;
    deadline_ = deadline;
    if (earlier)
        timer_.cancel();
}

void HandshakeWatch::evict() {
    evicted_ = true;
    deadline_ = SteadyClock::time_point::min();
    timer_.cancel();
}

bool HandshakeWatch::is_message_complete() const noexcept {
    if (message_complete_.load(std::memory_order_relaxed))
        return true;
    // Not read yet, but all there. Read by another thread than the connection's; the
    // descriptor is only asked, never used, and one that closed meanwhile answers an error.
    int unread = 0;
    return native_socket_ >= 0 && ::ioctl(native_socket_, FIONREAD, &unread) == 0 &&
           unread >= static_cast<int>(protocol::k_connection_message_size);
}

HandshakeTable::Admission HandshakeTable::enter_locked(const std::shared_ptr<HandshakeWatch>& watch,
                                                       std::shared_ptr<HandshakeWatch>& victim,
                                                       SteadyClock::time_point now,
                                                       SteadyClock::time_point& retry_at) {
    if (closed_ || capacity_ == 0)
        return Admission::full;
    if (entries_.size() >= capacity_) {
        const auto oldest = std::find_if(entries_.begin(), entries_.end(),
                                         [](const auto& w) { return !w->is_message_complete(); });
        if (oldest == entries_.end())
            return Admission::full;
        if (now - (*oldest)->entered_ < eviction_age_) {
            retry_at = (*oldest)->entered_ + eviction_age_;
            return Admission::full;
        }
        victim = std::move(*oldest);
        victim->in_table_ = false;
        entries_.erase(oldest);
    }
    watch->position_ = entries_.insert(entries_.end(), watch);
    watch->in_table_ = true;
    watch->entered_ = now;
    return victim ? Admission::admitted_by_eviction : Admission::admitted;
}

asio::awaitable<HandshakeTable::Admission> HandshakeTable::enter(
    const std::shared_ptr<HandshakeWatch>& watch, SteadyClock::time_point until) {
    for (;;) {
        std::shared_ptr<HandshakeWatch> victim;
        std::shared_ptr<Waiter> waiter;
        Admission verdict;
        SteadyClock::time_point wake_at = until;
        {
            const std::lock_guard lock(mutex_);
            const SteadyClock::time_point now = SteadyClock::now();
            verdict = enter_locked(watch, victim, now, wake_at);
            // Registered under the same lock as the verdict: a leave() after it wakes us.
            if (verdict == Admission::full && capacity_ > 0 && !closed_ && now < until) {
                waiter = std::make_shared<Waiter>(watch->executor());
                waiters_.push_back(waiter);
            }
        }
        if (victim) {
            const Executor& executor = victim->executor();
            asio::post(executor, [victim = std::move(victim)] { victim->evict(); });
        }
        if (!waiter)
            co_return verdict;
        waiter->timer.expires_at(std::min(until, wake_at));
        co_await waiter->timer.async_wait(use_tuple);
        if (!waiter->woken) {
            // Our own time: out of the line, unless a leave() took us out meanwhile (then its
            // wake-up belongs to the next in line). Then try again: a handshake may have grown
            // old enough to evict, and past `until` the next try answers `full`.
            const std::lock_guard lock(mutex_);
            const auto it = std::find(waiters_.begin(), waiters_.end(), waiter);
            if (it != waiters_.end()) {
                waiters_.erase(it);
            } else {
                wake_one_locked();
            }
        }
    }
}

void HandshakeTable::wake_one_locked() {
    if (waiters_.empty())
        return;
    std::shared_ptr<Waiter> waiter = std::move(waiters_.front());
    waiters_.pop_front();
    const auto executor = waiter->timer.get_executor();
    asio::post(executor, [waiter = std::move(waiter)] {
        waiter->woken = true;
        waiter->timer.cancel();
    });
}

void HandshakeTable::evict_all() {
    std::list<std::shared_ptr<HandshakeWatch>> all;
    {
        const std::lock_guard lock(mutex_);
        closed_ = true;
        all.swap(entries_);
        for (const auto& watch : all)
            watch->in_table_ = false;
        while (!waiters_.empty())
            wake_one_locked();
    }
    for (auto& watch : all) {
        const Executor& executor = watch->executor();
        asio::post(executor, [watch = std::move(watch)] { watch->evict(); });
    }
}

void HandshakeTable::leave(HandshakeWatch& watch) {
    const std::lock_guard lock(mutex_);
    if (!watch.in_table_)
        return;
    watch.in_table_ = false;
    entries_.erase(watch.position_);
    wake_one_locked();
}

std::size_t HandshakeTable::size() const {
    const std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace sdmp::detail
