#include "sdmp/services/kv_service.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace sdmp::services {
namespace {

using json = nlohmann::json;
using boost::asio::awaitable;

Reply json_reply(const json& value) {
    return Reply::ok(value.dump());
}

// The request object, or the error reply to send.
struct Parsed {
    json body;
    std::optional<Reply> error;
};

Parsed parse_object(const Bytes& body) {
    Parsed parsed;
    parsed.body = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (parsed.body.is_discarded())
        parsed.error = Reply::error(Status::invalid_argument, "body is not valid JSON");
    else if (!parsed.body.is_object())
        parsed.error = Reply::error(Status::invalid_argument, "body must be a JSON object");
    return parsed;
}

// Reads an optional string member; an error reply when present but not a string.
std::optional<Reply> optional_string(const json& object, const char* name, std::string& out) {
    const auto it = object.find(name);
    if (it == object.end() || it->is_null())
        return std::nullopt;
    if (!it->is_string())
        return Reply::error(Status::invalid_argument, fmt::format("\"{}\" must be a string", name));
    out = it->get<std::string>();
    return std::nullopt;
}

std::optional<Reply> required_key(const json& object, const KvLimits& limits, std::string& key) {
    const auto it = object.find("key");
    if (it == object.end() || !it->is_string())
        return Reply::error(Status::invalid_argument, "\"key\" must be a string");
    key = it->get<std::string>();
    if (key.empty())
        return Reply::error(Status::invalid_argument, "\"key\" must not be empty");
    if (key.size() > limits.max_key_size)
        return Reply::error(Status::too_large,
                            fmt::format("\"key\" is longer than {} bytes", limits.max_key_size));
    return std::nullopt;
}

}  // namespace

std::shared_ptr<KvService> KvService::open(const std::filesystem::path& file, KvLimits limits,
                                           Logger logger) {
    return std::make_shared<KvService>(file, limits, std::move(logger));
}

KvService::KvService(const std::filesystem::path& file, KvLimits limits, Logger logger)
    : limits_(limits), logger_(std::move(logger)), store_(file), executor_(1) {}

void KvService::add_to(Router& router) {
    auto self = shared_from_this();
    router.add("kv.put", [self](Context&, Bytes body) { return self->put(std::move(body)); });
    router.add("kv.get", [self](Context&, Bytes body) { return self->get(std::move(body)); });
    router.add("kv.delete", [self](Context&, Bytes body) { return self->erase(std::move(body)); });
    router.add("kv.list", [self](Context&, Bytes body) { return self->list(std::move(body)); });
}

Reply KvService::storage_failure(const StoreError& error) const {
    // The detail (file name, SQLite's message) stays in the local log.
    logger_.error("kv: {}", error.what());
    return Reply::error(Status::application_error, "storage error");
}

awaitable<Reply> KvService::put(Bytes body) {
    auto request = parse_object(body);
    if (request.error)
        co_return std::move(*request.error);
    std::string key;
    if (auto error = required_key(request.body, limits_, key))
        co_return std::move(*error);
    const auto value = request.body.find("value");
    if (value == request.body.end())
        co_return Reply::error(Status::invalid_argument, "\"value\" is missing");
    std::string text = value->dump();
    if (text.size() > limits_.max_value_size)
        co_return Reply::error(Status::too_large, fmt::format("\"value\" is larger than {} bytes",
                                                              limits_.max_value_size));
    std::optional<StoreError> failure;
    try {
        // Acknowledged only after the commit is durable (KvStore::put).
        co_await executor_.run([this, &key, &text] { store_.put(key, text); });
    } catch (const StoreError& e) {
        failure.emplace(e);
    }
    if (failure)
        co_return storage_failure(*failure);
    co_return json_reply({{"key", key}});
}

awaitable<Reply> KvService::get(Bytes body) {
    auto request = parse_object(body);
    if (request.error)
        co_return std::move(*request.error);
    std::string key;
    if (auto error = required_key(request.body, limits_, key))
        co_return std::move(*error);
    std::optional<std::string> stored;
    std::optional<StoreError> failure;
    try {
        stored = co_await executor_.run([this, &key] { return store_.get(key); });
    } catch (const StoreError& e) {
        failure.emplace(e);
    }
    if (failure)
        co_return storage_failure(*failure);
    if (!stored)
        co_return Reply::error(Status::not_found, "no such key");
    json value = json::parse(*stored, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded())
        co_return storage_failure(StoreError("kv: stored value for a key is not valid JSON"));
    co_return json_reply({{"key", key}, {"value", std::move(value)}});
}

awaitable<Reply> KvService::erase(Bytes body) {
    auto request = parse_object(body);
    if (request.error)
        co_return std::move(*request.error);
    std::string key;
    if (auto error = required_key(request.body, limits_, key))
        co_return std::move(*error);
    bool existed = false;
    std::optional<StoreError> failure;
    try {
        existed = co_await executor_.run([this, &key] { return store_.erase(key); });
    } catch (const StoreError& e) {
        failure.emplace(e);
    }
    if (failure)
        co_return storage_failure(*failure);
    if (!existed)
        co_return Reply::error(Status::not_found, "no such key");
    co_return json_reply({{"key", key}});
}

awaitable<Reply> KvService::list(Bytes body) {
    auto request = parse_object(body);
    if (request.error)
        co_return std::move(*request.error);
    std::string prefix;
    std::string after;
    if (auto error = optional_string(request.body, "prefix", prefix))
        co_return std::move(*error);
    if (auto error = optional_string(request.body, "after", after))
        co_return std::move(*error);
    std::size_t limit = limits_.max_list;
    if (const auto it = request.body.find("limit"); it != request.body.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<std::int64_t>() < 1)
            co_return Reply::error(Status::invalid_argument,
                                   "\"limit\" must be a positive integer");
        // A larger limit is not an error: the answer says `more` and the caller pages on.
        limit = std::min(limit, static_cast<std::size_t>(it->get<std::int64_t>()));
    }
    if (prefix.size() > limits_.max_key_size || after.size() > limits_.max_key_size)
        co_return Reply::error(Status::too_large, "\"prefix\" or \"after\" is too long");
    KvStore::Page page;
    std::optional<StoreError> failure;
    try {
        page = co_await executor_.run(
            [this, &prefix, &after, limit] { return store_.list(prefix, after, limit); });
    } catch (const StoreError& e) {
        failure.emplace(e);
    }
    if (failure)
        co_return storage_failure(*failure);
    co_return json_reply({{"keys", std::move(page.keys)}, {"more", page.more}});
}

}  // namespace sdmp::services
