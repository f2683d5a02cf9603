#include "sdmp/services/kv_store.hpp"

#include <algorithm>

namespace sdmp::services {
namespace {

// Keys and values are stored as BLOBs so SQLite compares keys bytewise (memcmp) and never
// reinterprets them as text in another encoding.
Database& init(Database& db) {
    db.exec(
        "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) "
        "WITHOUT ROWID");
    return db;
}

}  // namespace

std::optional<std::string> prefix_upper_bound(std::string_view prefix) {
    std::string upper(prefix);
    while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff)
        upper.pop_back();
    if (upper.empty())
        return std::nullopt;
    upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
    return upper;
}

KvStore::KvStore(const std::filesystem::path& file)
    : db_(file),
      put_(init(db_).prepare("INSERT INTO kv (key, value) VALUES (?1, ?2) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value")),
      get_(db_.prepare("SELECT value FROM kv WHERE key = ?1")),
      erase_(db_.prepare("DELETE FROM kv WHERE key = ?1")),
      list_bounded_(db_.prepare(
          "SELECT key FROM kv WHERE key >= ?1 AND key > ?2 AND key < ?3 ORDER BY key LIMIT ?4")),
      list_open_(
          db_.prepare("SELECT key FROM kv WHERE key >= ?1 AND key > ?2 ORDER BY key LIMIT ?3")) {}

void KvStore::put(std::string_view key, std::string_view value) {
    // One statement outside an explicit transaction is its own transaction: when it completes,
    // the commit is on disk (synchronous=FULL).
    ResetOnExit reset(put_);
    put_.bind_blob(1, as_bytes(key)).bind_blob(2, as_bytes(value));
    put_.run();
}

std::optional<std::string> KvStore::get(std::string_view key) {
    ResetOnExit reset(get_);
    get_.bind_blob(1, as_bytes(key));
    if (!get_.step())
        return std::nullopt;
    const Bytes bytes = get_.blob(0);
    return std::string(bytes.begin(), bytes.end());
}

bool KvStore::erase(std::string_view key) {
    ResetOnExit reset(erase_);
    erase_.bind_blob(1, as_bytes(key));
    erase_.run();
    return db_.changes() > 0;
}

KvStore::Page KvStore::list(std::string_view prefix, std::string_view after, std::size_t limit) {
    const auto upper = prefix_upper_bound(prefix);
    Statement& stmt = upper ? list_bounded_ : list_open_;
    ResetOnExit reset(stmt);
    // Ask for one more than the limit to learn whether more keys follow.
    const auto fetch = static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 20) + 1);
    stmt.bind_blob(1, as_bytes(prefix)).bind_blob(2, as_bytes(after));
    if (upper)
        stmt.bind_blob(3, as_bytes(*upper)).bind(4, fetch);
    else
        stmt.bind(3, fetch);
    Page page;
    while (stmt.step()) {
        if (page.keys.size() >= limit) {
            page.more = true;
            break;
        }
        const Bytes key = stmt.blob(0);
        page.keys.emplace_back(key.begin(), key.end());
    }
    return page;
}

}  // namespace sdmp::services
