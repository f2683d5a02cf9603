#include "sdmp/services/journal_service.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <exception>
#include <utility>

#include "journal_peer_link.hpp"

namespace sdmp::services {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using json = nlohmann::json;

// The longest `since` worth looking up: a full line (64 + 1 + 64 + 1 + 64 characters).
constexpr std::size_t k_max_line_size = 194;

Reply json_reply(const json& value) {
    return Reply::ok(value.dump());
}

Reply storage_failure(const Logger& logger, const StoreError& error) {
    // The detail (file name, SQLite's message) stays in the local log.
    logger.error("journal: {}", error.what());
    return Reply::error(Status::application_error, "storage error");
}

}  // namespace

std::shared_ptr<JournalService> JournalService::open(asio::any_io_executor executor,
                                                     const std::filesystem::path& file,
                                                     const crypto::Fingerprint& node,
                                                     std::shared_ptr<SessionSet> sessions,
                                                     JournalOptions options) {
    return std::make_shared<JournalService>(std::move(executor), file, node, std::move(sessions),
                                            std::move(options));
}

JournalService::JournalService(asio::any_io_executor executor, const std::filesystem::path& file,
                               const crypto::Fingerprint& node,
                               std::shared_ptr<SessionSet> sessions, JournalOptions options)
    : executor_(std::move(executor)),
      sessions_(std::move(sessions)),
      options_(std::move(options)),
      first_line_(node.hex()),
      store_(file, node),
      store_executor_(1) {
    if (!sessions_)
        sessions_ = std::make_shared<SessionSet>();
    options_.max_sync_limit = std::max<std::size_t>(options_.max_sync_limit, 1);
    options_.default_sync_limit =
        std::clamp<std::size_t>(options_.default_sync_limit, 1, options_.max_sync_limit);
    options_.max_update_entries = std::max<std::size_t>(options_.max_update_entries, 1);
}

JournalService::~JournalService() {
    // Links hold only a weak reference to the service; make sure none keeps trying.
    for (const auto& link : links_)
        link->stop();
}

void JournalService::add_to(Router& router) {
    auto self = shared_from_this();
    router.add("journal.publish", [self](Context& ctx, Bytes body) {
        return self->handle_publish(ctx, std::move(body));
    });
    router.add("journal.synchronize",
               [self](Context&, Bytes body) { return self->handle_synchronize(std::move(body)); });
    router.add("resource.get",
               [self](Context&, Bytes body) { return self->handle_get(std::move(body)); });
    router.on_notification("journal.update", [self](Context& ctx, Bytes body) {
        return self->handle_update(ctx, std::move(body));
    });
}

void JournalService::add_peer(PeerAddress peer, crypto::Identity identity, crypto::TrustStore trust,
                              ClientOptions client) {
    auto link = std::make_shared<JournalPeerLink>(asio::make_strand(executor_), weak_from_this(),
                                                  sessions_, std::move(peer), std::move(identity),
                                                  std::move(trust), std::move(client));
    {
        std::lock_guard lock(links_mutex_);
        links_.push_back(link);
    }
    link->start();
}

awaitable<void> JournalService::stop() {
    std::vector<std::shared_ptr<JournalPeerLink>> links;
    {
        std::lock_guard lock(links_mutex_);
        links.swap(links_);
    }
    for (const auto& link : links)
        link->stop();
    for (const auto& link : links)
        co_await link->wait_stopped();
}

awaitable<JournalService::Published> JournalService::publish(crypto::Fingerprint publisher,
                                                             Bytes resource) {
    if (resource.size() > options_.max_resource_size) {
        throw StatusError(Status::too_large, fmt::format("resource is larger than {} bytes",
                                                         options_.max_resource_size));
    }
    // Hashing a large resource and the durable append both run off the session's strand.
    auto [id, appended] = co_await store_executor_.run([this, &publisher, &resource] {
        const ResourceId resource_id = resource_id_of(resource);
        return std::make_pair(resource_id, store_.append(publisher, resource_id, resource));
    });
    if (appended.appended) {
        options_.logger.info("journal: appended {}", appended.line);
        announce({appended.line}, std::nullopt);
    }
    co_return Published{to_hex(id), std::move(appended.line), appended.appended};
}

awaitable<std::size_t> JournalService::learn(Session source, std::vector<JournalEntry> entries) {
    std::vector<std::string> appended;
    std::size_t done = 0;
    std::exception_ptr failure;
    const auto& peer = source.peer();
    try {
        for (const auto& entry : entries) {
            const bool known = co_await store_executor_.run(
                [this, &entry] { return store_.contains(entry.publisher, entry.resource); });
            if (!known) {
                const json request = {{"author", entry.publisher.hex()},
                                      {"resource", to_hex(entry.resource)}};
                Reply reply = co_await source.call("resource.get", bytes_of(request.dump()),
                                                   call_options(options_.call_timeout));
                if (!reply.is_ok()) {
                    options_.logger.info("journal: cannot fetch {} from {}: {}: {}", entry.text(),
                                         peer.fingerprint.short_hex(), to_string(reply.status),
                                         reply.text());
                    break;
                }
                // The id is the SHA-256 of the exact bytes: anything else is not the resource.
                if (reply.body.size() > options_.max_resource_size ||
                    resource_id_of(reply.body) != entry.resource) {
                    options_.logger.warn("journal: {} sent bytes that are not resource {}",
                                         peer.fingerprint.short_hex(), to_hex(entry.resource));
                    break;
                }
                auto result = co_await store_executor_.run([this, &entry, &reply] {
                    return store_.append(entry.publisher, entry.resource, reply.body);
                });
                if (result.appended) {
                    options_.logger.info("journal: learned {} from {}", result.line,
                                         peer.fingerprint.short_hex());
                    appended.push_back(std::move(result.line));
                }
            }
            ++done;
        }
    } catch (const std::exception&) {
        failure = std::current_exception();
    }
    // Announce what was appended even when a later entry failed.
    announce(appended, peer.fingerprint);
    if (failure)
        std::rethrow_exception(failure);
    co_return done;
}

awaitable<std::string> JournalService::cursor(crypto::Fingerprint peer) {
    auto line = co_await store_executor_.run([this, &peer] { return store_.cursor(peer); });
    co_return line ? std::move(*line) : peer.hex();
}

awaitable<void> JournalService::set_cursor(crypto::Fingerprint peer, std::string line) {
    co_await store_executor_.run([this, &peer, &line] { store_.set_cursor(peer, line); });
}

void JournalService::announce(const std::vector<std::string>& lines,
                              const std::optional<crypto::Fingerprint>& except) {
    if (lines.empty())
        return;
    const auto sessions = sessions_->open_sessions();
    // Receivers read at most max_update_entries lines per notification.
    for (std::size_t first = 0; first < lines.size(); first += options_.max_update_entries) {
        const auto last = std::min(lines.size(), first + options_.max_update_entries);
        const json body = {{"entries", std::vector<std::string>(
                                           lines.begin() + static_cast<std::ptrdiff_t>(first),
                                           lines.begin() + static_cast<std::ptrdiff_t>(last))}};
        const auto bytes = std::make_shared<const Bytes>(bytes_of(body.dump()));
        for (const auto& session : sessions) {
            if (except && session.peer().fingerprint == *except)
                continue;
            // Best effort: a peer that misses an update catches up at its next sync.
            asio::co_spawn(
                executor_,
                [session, bytes]() -> awaitable<void> {
                    co_await session.notify("journal.update", *bytes);
                },
                [logger = options_.logger,
                 who = session.peer().fingerprint.short_hex()](std::exception_ptr error) {
                    if (!error)
                        return;
                    try {
                        std::rethrow_exception(error);
                    } catch (const std::exception& e) {
                        logger.debug("journal: update to {} not sent: {}", who, e.what());
                    }
                });
        }
    }
}

awaitable<Reply> JournalService::handle_publish(Context& ctx, Bytes body) {
    if (body.size() > options_.max_resource_size)
        co_return Reply::error(Status::too_large, fmt::format("resource is larger than {} bytes",
                                                              options_.max_resource_size));
    std::optional<Published> published;
    std::optional<StoreError> failure;
    try {
        published = co_await publish(ctx.peer_fingerprint(), std::move(body));
    } catch (const StoreError& e) {
        failure.emplace(e);
    }
    if (failure)
        co_return storage_failure(options_.logger, *failure);
    co_return json_reply({{"id", published->id}, {"line", published->line}});
}

awaitable<Reply> JournalService::handle_synchronize(Bytes body) {
    const json request = json::parse(body.begin(), body.end(), nullptr, false);
    if (!request.is_object())
        co_return Reply::error(Status::invalid_argument, "body must be a JSON object");
    const auto since_it = request.find("since");
    if (since_it == request.end() || !since_it->is_string())
        co_return Reply::error(Status::invalid_argument, "\"since\" must be a string");
    std::string since = since_it->get<std::string>();
    if (since.size() > k_max_line_size)
        co_return Reply::error(Status::invalid_argument, "\"since\" is not a journal line");
    std::size_t limit = options_.default_sync_limit;
    if (const auto it = request.find("limit"); it != request.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<std::int64_t>() < 1)
            co_return Reply::error(Status::invalid_argument,
                                   "\"limit\" must be a positive integer");
        // More than the maximum is not an error: the caller pages on from the last line.
        limit =
            std::min(options_.max_sync_limit, static_cast<std::size_t>(it->get<std::int64_t>()));
    }
    std::optional<std::vector<std::string>> lines;
    std::optional<StoreError> failure;
    try {
        lines = co_await store_executor_.run(
            [this, &since, limit] { return store_.lines_after(since, limit); });
    } catch (const StoreError& e) {
        failure.emplace(e);
    }
    if (failure)
        co_return storage_failure(options_.logger, *failure);
    if (!lines)
        co_return Reply::error(Status::not_found, "\"since\" is not a line of this journal");
    co_return json_reply({{"since", std::move(since)}, {"entries", std::move(*lines)}});
}

awaitable<Reply> JournalService::handle_get(Bytes body) {
    const json request = json::parse(body.begin(), body.end(), nullptr, false);
    if (!request.is_object())
        co_return Reply::error(Status::invalid_argument, "body must be a JSON object");
    const auto author_it = request.find("author");
    const auto resource_it = request.find("resource");
    std::optional<crypto::Fingerprint> author;
    std::optional<ResourceId> resource;
    if (author_it != request.end() && author_it->is_string())
        author = crypto::Fingerprint::parse(author_it->get<std::string>());
    if (resource_it != request.end() && resource_it->is_string())
        resource = parse_digest(resource_it->get<std::string>());
    if (!author || !resource)
        co_return Reply::error(Status::invalid_argument,
                               "\"author\" and \"resource\" must be 64 hex characters");
    std::optional<Bytes> data;
    std::optional<StoreError> failure;
    try {
        data = co_await store_executor_.run(
            [this, &author, &resource] { return store_.resource(*author, *resource); });
    } catch (const StoreError& e) {
        failure.emplace(e);
    }
    if (failure)
        co_return storage_failure(options_.logger, *failure);
    if (!data)
        co_return Reply::error(Status::not_found, "no such resource");
    co_return Reply::ok(std::move(*data));
}

awaitable<void> JournalService::handle_update(Context& ctx, Bytes body) {
    const json update = json::parse(body.begin(), body.end(), nullptr, false);
    if (!update.is_object() || !update.contains("entries") || !update["entries"].is_array()) {
        options_.logger.debug("journal: malformed journal.update from {}",
                              ctx.peer_fingerprint().short_hex());
        co_return;
    }
    std::vector<JournalEntry> entries;
    for (const auto& item : update["entries"]) {
        if (entries.size() == options_.max_update_entries)
            break;  // the rest arrives with the next sync
        auto entry = item.is_string() ? JournalEntry::parse(item.get<std::string>()) : std::nullopt;
        if (!entry) {
            options_.logger.debug("journal: malformed line in journal.update from {}",
                                  ctx.peer_fingerprint().short_hex());
            co_return;
        }
        entries.push_back(std::move(*entry));
    }
    std::string failure;
    try {
        co_await learn(ctx.session(), std::move(entries));
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (!failure.empty())
        options_.logger.info("journal: update from {} not applied: {}",
                             ctx.peer_fingerprint().short_hex(), failure);
}

}  // namespace sdmp::services
