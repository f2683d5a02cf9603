// A thin RAII layer over the SQLite C API, just what the kv and journal stores need.
//
// Failure contract: every function throws StoreError (message: the database file and SQLite's
// own text) and leaves the database as SQLite leaves it (a failed statement inside a
// Transaction is rolled back by the Transaction's destructor).
//
// Threading: a Database and its Statements are used by one thread at a time (the stores run
// on their own BlockingExecutor).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sdmp/crypto/bytes.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace sdmp::services {

class StoreError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Statement;

class Database {
  public:
    // Opens (creating it if needed) the database file and makes it durable: WAL journal,
    // synchronous=FULL (a commit returns only once it is on disk, so an acknowledged write
    // survives kill -9 and power loss), foreign keys on, a busy timeout.
    explicit Database(const std::filesystem::path& path);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Runs one or more statements that return no rows.
    void exec(std::string_view sql);
    Statement prepare(std::string_view sql);
    const std::filesystem::path& path() const noexcept { return path_; }

    // Rows changed by the last INSERT/UPDATE/DELETE.
    std::int64_t changes() const noexcept;

    [[noreturn]] void fail(std::string_view what) const;
    sqlite3* handle() const noexcept { return db_; }

  private:
    std::filesystem::path path_;
    sqlite3* db_ = nullptr;
};

// A prepared statement. Parameters are numbered from 1, columns from 0 (SQLite's convention).
class Statement {
  public:
    Statement(Database& db, std::string_view sql);
    ~Statement();
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&&) = delete;
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int index, std::string_view text);  // as TEXT
    Statement& bind_blob(int index, ByteView bytes);    // as BLOB
    Statement& bind(int index, std::int64_t value);

    // Steps once: true when a row is available, false when done.
    bool step();
    // Steps to completion (for statements without rows).
    void run();
    // Resets the statement and clears its bindings, ready for the next use.
    void reset() noexcept;

    bool is_null(int column) const;
    std::string text(int column) const;
    Bytes blob(int column) const;
    std::int64_t integer(int column) const;

  private:
    Database* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when leaving the scope, whatever happened (ready for its next use).
class ResetOnExit {
  public:
    explicit ResetOnExit(Statement& statement) noexcept : statement_(statement) {}
    ~ResetOnExit() { statement_.reset(); }
    ResetOnExit(const ResetOnExit&) = delete;
    ResetOnExit& operator=(const ResetOnExit&) = delete;

  private:
    Statement& statement_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back when destroyed without commit() (an exception).
class Transaction {
  public:
    explicit Transaction(Database& db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

  private:
    Database& db_;
    bool done_ = false;
};

}  // namespace sdmp::services
