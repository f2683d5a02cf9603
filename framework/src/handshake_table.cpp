// Handshakes in progress and their deadlines (see detail/handshake_table.hpp).
#include "detail/handshake_table.hpp"

namespace sdmp::detail {

HandshakeWatch::HandshakeWatch(Executor executor)
    : executor_(executor), timer_(executor), deadline_(SteadyClock::time_point::max()) {}

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

HandshakeTable::Admission HandshakeTable::enter(const std::shared_ptr<HandshakeWatch>& watch) {
    std::shared_ptr<HandshakeWatch> victim;
    {
        const std::lock_guard lock(mutex_);
        if (entries_.size() >= capacity_) {
            const auto oldest = std::find_if(entries_.begin(), entries_.end(), [](const auto& w) {
                return !w->is_message_complete();
            });
            if (capacity_ == 0 || oldest == entries_.end())
                return Admission::full;
            victim = std::move(*oldest);
            victim->in_table_ = false;
            entries_.erase(oldest);
        }
        watch->position_ = entries_.insert(entries_.end(), watch);
        watch->in_table_ = true;
    }
    if (!victim)
        return Admission::admitted;
    const Executor& executor = victim->executor();
    asio::post(executor, [victim = std::move(victim)] { victim->evict(); });
    return Admission::admitted_by_eviction;
}

void HandshakeTable::evict_all() {
    std::list<std::shared_ptr<HandshakeWatch>> all;
    {
        const std::lock_guard lock(mutex_);
        all.swap(entries_);
        for (const auto& watch : all)
            watch->in_table_ = false;
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
}

std::size_t HandshakeTable::size() const {
    const std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace sdmp::detail
