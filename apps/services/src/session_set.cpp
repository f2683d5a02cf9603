#include "sdmp/services/session_set.hpp"

#include <algorithm>
#include <utility>

namespace sdmp::services {

void SessionSet::prune_locked() {
    std::erase_if(sessions_, [](const Session& s) { return !s.is_open(); });
}

void SessionSet::add(Session session) {
    std::lock_guard lock(mutex_);
    prune_locked();
    // Handles of one session share its PeerInfo: adding the same session twice is a no-op.
    const bool present = std::any_of(sessions_.begin(), sessions_.end(), [&](const Session& s) {
        return &s.peer() == &session.peer();
    });
    if (!present)
        sessions_.push_back(std::move(session));
}

void SessionSet::remove(const Session& session) {
    std::lock_guard lock(mutex_);
    // Session handles of one session share the peer object; compare by it.
    std::erase_if(sessions_, [&](const Session& s) { return &s.peer() == &session.peer(); });
}

std::vector<Session> SessionSet::open_sessions() {
    std::lock_guard lock(mutex_);
    prune_locked();
    return sessions_;
}

std::size_t SessionSet::abort_if(const std::function<bool(const PeerInfo&)>& match) {
    std::vector<Session> doomed;
    {
        std::lock_guard lock(mutex_);
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
    std::lock_guard lock(mutex_);
    prune_locked();
    return sessions_.size();
}

}  // namespace sdmp::services
