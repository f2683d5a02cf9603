// One configured journal peer (`--peer`): a reconnecting client and a loop that synchronizes
// this node's journal with the peer's (journal.synchronize from the persisted cursor, then
// learn what is new), immediately after each connect and then every sync_interval.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>

#include "sdmp/framework/client.hpp"
#include "sdmp/framework/session_set.hpp"
#include "sdmp/services/journal_service.hpp"
#include "sdmp/services/peer_address.hpp"

namespace sdmp::services {

class JournalPeerLink : public std::enable_shared_from_this<JournalPeerLink> {
  public:
    // `strand` must be a strand: the loop, its timer and stop() all run on it.
    JournalPeerLink(boost::asio::any_io_executor strand, std::weak_ptr<JournalService> service,
                    std::shared_ptr<SessionSet> sessions, PeerAddress peer,
                    crypto::Identity identity, crypto::TrustStore trust, ClientOptions client);

    // Spawns the loop on the strand.
    void start();
    // Thread-safe, returns at once: closes the client and wakes the loop, which then ends.
    void stop();
    // Completes once the loop has ended (after stop()).
    boost::asio::awaitable<void> wait_stopped();

    const PeerAddress& peer() const noexcept { return peer_; }

  private:
    boost::asio::awaitable<void> run();
    // One synchronization: pages through the peer's journal from the cursor. Throws
    // system_error on transport failures, StoreError on local storage failures.
    boost::asio::awaitable<void> synchronize(JournalService& service, Session session);

    boost::asio::any_io_executor strand_;
    std::weak_ptr<JournalService> service_;
    std::shared_ptr<SessionSet> sessions_;
    PeerAddress peer_;
    ReconnectingClient client_;
    boost::asio::steady_timer timer_;
    std::atomic<bool> stopping_{false};
    // Closed (on the strand) by stop(): wakes a loop that waits for a connection.
    boost::asio::experimental::channel<void(boost::system::error_code)> stop_requested_;
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> stopped_;
};

}  // namespace sdmp::services
