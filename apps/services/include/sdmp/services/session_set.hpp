// The sessions a node currently has with its peers, whoever opened them: a server adds each
// session it accepts (ServerOptions::on_session), a client adds the sessions it opens. Used to
// notify every connected peer (journal.update) and to close the sessions of peers that are no
// longer trusted (trust reload on SIGHUP).
//
// Thread-safe. Closed sessions are dropped lazily (on add and on every snapshot), so the set
// holds at most the open sessions plus the ones closed since the last call.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "sdmp/framework/session.hpp"

namespace sdmp::services {

class SessionSet {
  public:
    // Adds an open session (adding one that is already in the set does nothing).
    void add(Session session);
    void remove(const Session& session);
    // The sessions that are still open.
    std::vector<Session> open_sessions();
    // Aborts (immediate close) every open session whose peer matches; returns how many.
    std::size_t abort_if(const std::function<bool(const PeerInfo&)>& match);
    std::size_t size();

  private:
    void prune_locked();

    std::mutex mutex_;
    std::vector<Session> sessions_;
};

}  // namespace sdmp::services
