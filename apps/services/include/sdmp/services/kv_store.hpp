// The kv service's storage: a SQLite table of byte-string keys and values (docs/apps.md "kv").
//
// Blocking: every call waits for the disk. put() and erase() return only once the change is
// durable (WAL + synchronous=FULL), which is what lets the service acknowledge a write only
// when it would survive kill -9. Not thread-safe: use it from one BlockingExecutor.
// Errors: StoreError (see sqlite.hpp).
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sdmp/services/sqlite.hpp"

namespace sdmp::services {

class KvStore {
  public:
    explicit KvStore(const std::filesystem::path& file);

    void put(std::string_view key, std::string_view value);
    std::optional<std::string> get(std::string_view key);
    // True when the key existed.
    bool erase(std::string_view key);

    struct Page {
        std::vector<std::string> keys;  // in byte order
        bool more = false;              // more keys match after the last one
    };
    // Keys starting with `prefix`, strictly after `after` (empty: from the first), at most
    // `limit` of them.
    Page list(std::string_view prefix, std::string_view after, std::size_t limit);

  private:
    Database db_;
    Statement put_;
    Statement get_;
    Statement erase_;
    Statement list_bounded_;
    Statement list_open_;
};

// The smallest byte string greater than every string starting with `prefix`; nullopt when
// there is none (empty prefix, or only 0xff bytes).
std::optional<std::string> prefix_upper_bound(std::string_view prefix);

}  // namespace sdmp::services
