// The kv service (docs/apps.md "kv"): JSON methods over a durable KvStore.
//
//   kv.put    {"key": K, "value": V}           -> {"key": K}            (after V is on disk)
//   kv.get    {"key": K}                       -> {"key": K, "value": V} | not_found
//   kv.delete {"key": K}                       -> {"key": K}            | not_found
//   kv.list   {"prefix": P, "after": A, "limit": N} -> {"keys": [...], "more": bool}
//
// K is a non-empty string, V any JSON value. A body that is not such JSON is answered with
// invalid_argument; a key or value over the limits with too_large. SQLite runs on the
// service's own thread (BlockingExecutor), never on a session's strand.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>

#include "sdmp/framework/log.hpp"
#include "sdmp/framework/router.hpp"
#include "sdmp/services/blocking_executor.hpp"
#include "sdmp/services/kv_store.hpp"

namespace sdmp::services {

struct KvLimits {
    std::size_t max_key_size = 1024;                    // bytes of the key (UTF-8)
    std::size_t max_value_size = std::size_t{1} << 20;  // bytes of the value as compact JSON
    std::size_t max_list = 1000;  // keys per kv.list answer (and default limit)
};

class KvService : public std::enable_shared_from_this<KvService> {
  public:
    // Opens or creates the store file. Throws StoreError naming the file.
    static std::shared_ptr<KvService> open(const std::filesystem::path& file, KvLimits limits = {},
                                           Logger logger = {});

    // Registers kv.put, kv.get, kv.delete and kv.list. The handlers keep the service alive.
    void add_to(Router& router);

    KvService(const std::filesystem::path& file, KvLimits limits, Logger logger);

  private:
    boost::asio::awaitable<Reply> put(Bytes body);
    boost::asio::awaitable<Reply> get(Bytes body);
    boost::asio::awaitable<Reply> erase(Bytes body);
    boost::asio::awaitable<Reply> list(Bytes body);
    Reply storage_failure(const StoreError& error) const;

    KvLimits limits_;
    Logger logger_;
    KvStore store_;              // touched only on executor_
    BlockingExecutor executor_;  // declared last: joined before the store closes
};

}  // namespace sdmp::services
