#include "journal_peer_link.hpp"

#include <nlohmann/json.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <utility>
#include <vector>

namespace sdmp::services {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using json = nlohmann::json;

JournalPeerLink::JournalPeerLink(asio::any_io_executor strand,
                                 std::weak_ptr<JournalService> service,
                                 std::shared_ptr<SessionSet> sessions, PeerAddress peer,
                                 crypto::Identity identity, crypto::TrustStore trust,
                                 ClientOptions client)
    : strand_(strand),
      service_(std::move(service)),
      sessions_(std::move(sessions)),
      peer_(std::move(peer)),
      client_(strand, Target::address(peer_.endpoint, peer_.fingerprint), std::move(identity),
              std::move(trust), std::move(client),
              ReconnectOptions{.max_backoff = std::chrono::seconds(5)}),
      timer_(strand),
      stop_requested_(strand, 1),
      stopped_(strand, 1) {}

void JournalPeerLink::start() {
    auto self = shared_from_this();
    Logger logger;
    if (auto service = service_.lock())
        logger = service->logger();
    asio::co_spawn(strand_, self->run(), [self, logger](std::exception_ptr error) {
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                logger.error("journal: sync with {} stopped: {}", self->peer_.describe(), e.what());
            }
        }
        self->stopped_.close();
    });
}

void JournalPeerLink::stop() {
    stopping_.store(true);
    asio::post(strand_, [self = shared_from_this()] {
        self->stop_requested_.close();
        self->timer_.cancel();
        self->client_.close();
    });
}

asio::awaitable<void> JournalPeerLink::wait_stopped() {
    // The channel is closed when the loop ends; closing is sticky, so this never misses it.
    co_await stopped_.async_receive(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> JournalPeerLink::run() {
    while (!stopping_.load()) {
        auto service = service_.lock();
        if (!service)
            break;
        const auto interval = service->options().sync_interval;
        std::string failure;
        try {
            // Waits for a session, reconnecting with backoff while the peer is unreachable,
            // or for stop() (which would otherwise wait for the client's backoff timer).
            auto next = co_await (client_.session() || stop_requested_.async_receive(
                                                           asio::as_tuple(asio::use_awaitable)));
            if (next.index() == 1)
                break;
            Session session = std::get<0>(std::move(next));
            sessions_->add(session);
            co_await synchronize(*service, session);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (stopping_.load())
            break;
        if (!failure.empty())
            service->logger().info("journal: sync with {}: {}", peer_.describe(), failure);
        service.reset();  // do not keep the service alive while waiting
        timer_.expires_after(interval);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> JournalPeerLink::synchronize(JournalService& service, Session session) {
    const auto& options = service.options();
    const std::string root = peer_.fingerprint.hex();
    std::string cursor = co_await service.cursor(peer_.fingerprint);
    for (;;) {
        const json request = {{"since", cursor}, {"limit", options.max_sync_limit}};
        Reply reply = co_await session.call("journal.synchronize", bytes_of(request.dump()),
                                            call_options(options.call_timeout));
        if (reply.status == Status::not_found && cursor != root) {
            // The peer no longer has the line we stopped at (its journal was recreated):
            // start over from its first line; dedupe makes that cheap.
            service.logger().warn("journal: {} no longer has line {}; resynchronizing",
                                  peer_.describe(), cursor);
            cursor = root;
            co_await service.set_cursor(peer_.fingerprint, cursor);
            continue;
        }
        if (!reply.is_ok()) {
            service.logger().warn("journal: journal.synchronize with {}: {}: {}", peer_.describe(),
                                  to_string(reply.status), reply.text());
            co_return;
        }
        const json answer = json::parse(reply.body.begin(), reply.body.end(), nullptr, false);
        if (!answer.is_object() || !answer.contains("entries") || !answer["entries"].is_array()) {
            service.logger().warn("journal: {} answered journal.synchronize with a malformed body",
                                  peer_.describe());
            co_return;
        }
        const auto& raw = answer["entries"];
        // Check the chain from our cursor: every line number must be the hash of the line
        // before it, starting at the peer's own first line (its fingerprint).
        std::vector<JournalEntry> entries;
        std::string previous = cursor;
        for (const auto& item : raw) {
            const auto entry =
                item.is_string() ? JournalEntry::parse(item.get<std::string>()) : std::nullopt;
            if (!entry || !follows(*entry, previous)) {
                service.logger().warn("journal: {} sent a line that does not continue its chain",
                                      peer_.describe());
                break;
            }
            previous = entry->text();
            entries.push_back(*entry);
        }
        if (entries.empty())
            co_return;
        const bool full_page = entries.size() == raw.size() && raw.size() >= options.max_sync_limit;
        const std::size_t learned = co_await service.learn(session, entries);
        if (learned == 0)
            co_return;
        cursor = entries[learned - 1].text();
        co_await service.set_cursor(peer_.fingerprint, cursor);
        if (learned < entries.size() || !full_page)
            co_return;
    }
}

}  // namespace sdmp::services
