// The sessions a node currently has with its peers, whoever opened them: a server adds each
// session it accepts (ServerOptions::on_session), a client adds the sessions it opens. For
// fan-out (notify every connected peer) and for closing the sessions of peers that are no
// longer trusted (abort_if after a trust reload).
//
// Ownership: the set holds Session handles. A client session therefore stays open while it is
// in the set, until it is removed, closed (close(), abort(), abort_if) or ended by the peer;
// a server session's connection belongs to the server either way (see session.hpp). Closed
// sessions are dropped lazily (on add and on every snapshot), so the set holds at most the
// open sessions plus the ones closed since the last call; a session that closes while a
// broadcast is under way is simply left out of the next one.
//
// Thread-safe: the sessions may live on different executors and threads.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "sdmp/framework/session.hpp"

namespace sdmp {

class SessionSet {
  public:
    // Adds an open session (adding one that is already in the set, through any of its
    // handles, does nothing).
    void add(Session session);
    void remove(const Session& session);
    // The sessions that are still open: a snapshot to broadcast over, e.g.
    //   for (const Session& s : set.open_sessions()) co_await s.notify("news", body);
    // (each notify may throw connection_closed if that session ends meanwhile).
    std::vector<Session> open_sessions();
    // Calls `f` on each session open now, outside the set's lock (so `f` may use the set);
    // returns how many. For callbacks that do not suspend; use open_sessions() to co_await.
    std::size_t for_each_open(const std::function<void(const Session&)>& f);
    // Aborts (immediate close) every open session whose peer matches; returns how many.
    std::size_t abort_if(const std::function<bool(const PeerInfo&)>& match);
    std::size_t size();

  private:
    void prune_locked();

    std::mutex mutex_;
    std::vector<Session> sessions_;
};

}  // namespace sdmp
