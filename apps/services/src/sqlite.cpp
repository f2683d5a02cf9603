#include "sdmp/services/sqlite.hpp"

#include <sqlite3.h>

#include <fmt/core.h>

#include <utility>

namespace sdmp::services {

Database::Database(const std::filesystem::path& path) : path_(path) {
    const int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw StoreError(fmt::format("{}: cannot open database: {}", path.string(), message));
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
    // WAL keeps readers off the writer's back; synchronous=FULL makes every commit durable
    // before it returns (docs/apps.md "Durability").
    auto mode = prepare("PRAGMA journal_mode=WAL");
    if (!mode.step() || mode.text(0) != "wal")
        throw StoreError(fmt::format("{}: cannot switch to WAL journal mode", path.string()));
    exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
}

Database::~Database() {
    // All statements are finalized by their owners first; close_v2 copes if one is not.
    sqlite3_close_v2(db_);
}

void Database::fail(std::string_view what) const {
    throw StoreError(fmt::format("{}: {}: {}", path_.string(), what, sqlite3_errmsg(db_)));
}

void Database::exec(std::string_view sql) {
    const std::string text(sql);
    char* error = nullptr;
    if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        std::string message = error != nullptr ? error : "unknown error";
        sqlite3_free(error);
        throw StoreError(fmt::format("{}: {}", path_.string(), message));
    }
}

std::int64_t Database::changes() const noexcept {
    return sqlite3_changes64(db_);
}

Statement Database::prepare(std::string_view sql) {
    return Statement(*this, sql);
}

Statement::Statement(Database& db, std::string_view sql) : db_(&db) {
    if (sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt_,
                           nullptr) != SQLITE_OK)
        db.fail("prepare");
}

Statement::~Statement() {
    sqlite3_finalize(stmt_);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::bind(int index, std::string_view text) {
    // SQLITE_TRANSIENT: SQLite copies, so the caller's buffer may go away before step().
    if (sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                            SQLITE_UTF8) != SQLITE_OK)
        db_->fail("bind");
    return *this;
}

Statement& Statement::bind_blob(int index, ByteView bytes) {
    // A zero-length blob must still be a BLOB, not NULL: pass a valid pointer.
    static const std::uint8_t empty = 0;
    const void* data = bytes.empty() ? &empty : bytes.data();
    if (sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_TRANSIENT) != SQLITE_OK)
        db_->fail("bind");
    return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
    if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK)
        db_->fail("bind");
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    db_->fail("step");
}

void Statement::run() {
    while (step()) {
    }
}

void Statement::reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::string Statement::text(int column) const {
    const auto* data = sqlite3_column_text(stmt_, column);
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
    return data != nullptr ? std::string(reinterpret_cast<const char*>(data), size) : std::string();
}

Bytes Statement::blob(int column) const {
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
    return data != nullptr ? Bytes(data, data + size) : Bytes();
}

std::int64_t Statement::integer(int column) const {
    return sqlite3_column_int64(stmt_, column);
}

Transaction::Transaction(Database& db) : db_(db) {
    db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
    if (!done_) {
        // Best effort: if the rollback itself fails, SQLite has already rolled back.
        sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

void Transaction::commit() {
    db_.exec("COMMIT");
    done_ = true;
}

}  // namespace sdmp::services
