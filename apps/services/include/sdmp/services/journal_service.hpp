// The journal service (docs/apps.md "journal"): a node's append-only journal of resources,
// replicated between nodes until every node holds the same set of resources.
//
//   journal.publish      body = resource bytes       -> {"id": ID, "line": LINE}
//   journal.synchronize  {"since": S, "limit": N}   -> {"since": S, "entries": [LINE, ...]}
//   resource.get         {"author": FP, "resource": ID} -> the resource's exact bytes
//   journal.update       (notification) {"entries": [LINE, ...]}: lines just appended
//
// The publisher of a published resource is the calling peer. A node that learns of a
// resource it lacks (a journal.update from any connected peer, or its periodic
// journal.synchronize with each configured peer) fetches it with resource.get from the peer
// that told it, checks its SHA-256, and appends it to its own journal under the original
// publisher; resources are deduplicated by (publisher, id). Every append is announced with
// journal.update to every connected session (SessionSet).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "sdmp/crypto/identity.hpp"
#include "sdmp/crypto/trust_store.hpp"
#include "sdmp/framework/log.hpp"
#include "sdmp/framework/options.hpp"
#include "sdmp/framework/router.hpp"
#include "sdmp/framework/session.hpp"
#include "sdmp/framework/session_set.hpp"
#include "sdmp/services/blocking_executor.hpp"
#include "sdmp/services/journal_line.hpp"
#include "sdmp/services/journal_store.hpp"
#include "sdmp/services/peer_address.hpp"

namespace sdmp::services {

struct JournalOptions {
    std::size_t max_resource_size = std::size_t{4} << 20;  // larger publishes: too_large
    std::size_t max_sync_limit = 1000;                     // entries per journal.synchronize answer
    std::size_t default_sync_limit = 1000;                 // when the request gives no limit
    std::size_t max_update_entries = 256;  // lines per journal.update (more: dropped, sync)
    // Pause between two synchronizations with one configured peer.
    std::chrono::milliseconds sync_interval{10000};
    // Budget of each call this node makes to a peer (journal.synchronize, resource.get).
    std::chrono::milliseconds call_timeout{30000};
    Logger logger = Logger::null();
};

class JournalPeerLink;

// CallOptions with only a timeout set.
inline CallOptions call_options(std::chrono::milliseconds timeout) {
    CallOptions options;
    options.timeout = timeout;
    return options;
}

class JournalService : public std::enable_shared_from_this<JournalService> {
  public:
    // Opens or creates the journal of `node` in `file`. Notifications and peer links run on
    // `executor`; `sessions` is the node's set of connected sessions (journal.update goes to
    // each of them). Throws StoreError naming the file (also when it is another node's journal).
    static std::shared_ptr<JournalService> open(boost::asio::any_io_executor executor,
                                                const std::filesystem::path& file,
                                                const crypto::Fingerprint& node,
                                                std::shared_ptr<SessionSet> sessions,
                                                JournalOptions options = {});

    JournalService(boost::asio::any_io_executor executor, const std::filesystem::path& file,
                   const crypto::Fingerprint& node, std::shared_ptr<SessionSet> sessions,
                   JournalOptions options);
    ~JournalService();

    // Registers the three methods and the journal.update notification handler.
    void add_to(Router& router);

    // Starts synchronizing with `peer` through a reconnecting client. `client.router` must
    // hold this service's handlers (add_to) so the peer can fetch resources from us and
    // announce its own appends on that session too.
    void add_peer(PeerAddress peer, crypto::Identity identity, crypto::TrustStore trust,
                  ClientOptions client);

    // Stops every peer link (closing its session) and completes once all have finished.
    boost::asio::awaitable<void> stop();

    // --- the steps behind the methods (also used by peer links and tests) ---

    struct Published {
        std::string id;    // resource id, hex
        std::string line;  // the journal line naming it
        bool appended = false;
    };
    // Appends `publisher`'s resource (deduplicated) and announces it when new. Throws
    // StatusError(too_large) over the size limit, StoreError on storage failure.
    boost::asio::awaitable<Published> publish(crypto::Fingerprint publisher, Bytes resource);

    // Fetches from `source` (resource.get) the resources of `entries` this node lacks, checks
    // them and appends them, in order; announces what was appended to every session except
    // those of `source`'s peer. Stops at the first entry that cannot be fetched or does not
    // check. Returns how many entries (from the front) are now in this journal.
    boost::asio::awaitable<std::size_t> learn(Session source, std::vector<JournalEntry> entries);

    // The persisted synchronization cursor for `peer` (its fingerprint when none yet).
    boost::asio::awaitable<std::string> cursor(crypto::Fingerprint peer);
    boost::asio::awaitable<void> set_cursor(crypto::Fingerprint peer, std::string line);

    const JournalOptions& options() const noexcept { return options_; }
    const std::string& first_line() const noexcept { return first_line_; }
    const Logger& logger() const noexcept { return options_.logger; }

  private:
    boost::asio::awaitable<Reply> handle_publish(Context& ctx, Bytes body);
    boost::asio::awaitable<Reply> handle_synchronize(Bytes body);
    boost::asio::awaitable<Reply> handle_get(Bytes body);
    boost::asio::awaitable<void> handle_update(Context& ctx, Bytes body);
    void announce(const std::vector<std::string>& lines,
                  const std::optional<crypto::Fingerprint>& except);

    boost::asio::any_io_executor executor_;
    std::shared_ptr<SessionSet> sessions_;
    JournalOptions options_;
    std::string first_line_;
    JournalStore store_;               // touched only on store_executor_
    BlockingExecutor store_executor_;  // declared after the store: joined before it closes

    std::mutex links_mutex_;
    std::vector<std::shared_ptr<JournalPeerLink>> links_;
};

}  // namespace sdmp::services
