#include "sdmp/framework/session_set.hpp"

#include <algorithm>
#include <utility>

namespace sdmp {

void SessionSet::prune_locked() {
    std::erase_if(sessions_, [](const Session& s) { return !s.is_open(); });
}

void SessionSet::add(Session session) {
    const std::lock_guard lock(mutex_);
    prune_locked();
    if (std::find(sessions_.begin(), sessions_.end(), session) == sessions_.end())
        sessions_.push_back(std::move(session));
}

void SessionSet::remove(const Session& session) {
    // Moved out and dropped after unlocking: the last handle of a client session closes it,
    // which must not run under the set's lock.
    std::vector<Session> removed;
    {
        const std::lock_guard lock(mutex_);
        const auto it = std::find(sessions_.begin(), sessions_.end(), session);
        if (it != sessions_.end()) {
            removed.push_back(std::move(*it));
            sessions_.erase(it);
        }
    }
}

std::vector<Session> SessionSet::open_sessions() {
    const std::lock_guard lock(mutex_);
    prune_locked();
    return sessions_;
}

std::size_t SessionSet::for_each_open(const std::function<void(const Session&)>& f) {
    const std::vector<Session> snapshot = open_sessions();
    for (const Session& s : snapshot)
        f(s);
    return snapshot.size();
}

std::size_t SessionSet::abort_if(const std::function<bool(const PeerInfo&)>& match) {
    std::vector<Session> doomed;
    {
        const std::lock_guard lock(mutex_);
        prune_locked();
        for (const auto& s : sessions_) {
            if (match(s.peer()))
                doomed.push_back(s);
        }
        std::erase_if(sessions_, [&](const Session& s) { return match(s.peer()); });
    }
    // Outside the lock: abort() may run completion handlers inline.
    for (const auto& s : doomed)
        s.abort();
    return doomed.size();
}

std::size_t SessionSet::size() {
    const std::lock_guard lock(mutex_);
    prune_locked();
    return sessions_.size();
}

}  // namespace sdmp
