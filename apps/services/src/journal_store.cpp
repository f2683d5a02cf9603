#include "sdmp/services/journal_store.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace sdmp::services {
namespace {

Database& init(Database& db) {
    // Line 0 is the node's fingerprint (number and publisher NULL); resources live apart from
    // the lines so that synchronizing never reads resource bytes.
    db.exec(R"sql(
        CREATE TABLE IF NOT EXISTS journal_lines (
            seq INTEGER PRIMARY KEY,
            number TEXT UNIQUE,
            text TEXT NOT NULL UNIQUE,
            publisher TEXT,
            resource TEXT,
            UNIQUE (publisher, resource));
        CREATE TABLE IF NOT EXISTS journal_resources (
            publisher TEXT NOT NULL,
            resource TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (publisher, resource));
        CREATE TABLE IF NOT EXISTS journal_cursors (
            peer TEXT PRIMARY KEY NOT NULL,
            line TEXT NOT NULL);
    )sql");
    return db;
}

std::string first_line_of(Database& db, const crypto::Fingerprint& node) {
    auto select = db.prepare("SELECT text FROM journal_lines WHERE seq = 0");
    if (select.step()) {
        std::string text = select.text(0);
        if (text != node.hex()) {
            throw StoreError(
                fmt::format("{}: this journal belongs to node {}, not to this node's key {}",
                            db.path().string(), text, node.hex()));
        }
        return text;
    }
    db.prepare("INSERT INTO journal_lines (seq, number, text) VALUES (0, NULL, ?1)")
        .bind(1, node.hex())
        .run();
    return node.hex();
}

}  // namespace

JournalStore::JournalStore(const std::filesystem::path& file, const crypto::Fingerprint& node)
    : db_(file),
      first_line_(first_line_of(init(db_), node)),
      last_(db_.prepare("SELECT seq, text FROM journal_lines ORDER BY seq DESC LIMIT 1")),
      find_(db_.prepare("SELECT text FROM journal_lines WHERE publisher = ?1 AND resource = ?2")),
      insert_line_(db_.prepare("INSERT INTO journal_lines (seq, number, text, publisher, resource) "
                               "VALUES (?1, ?2, ?3, ?4, ?5)")),
      insert_resource_(db_.prepare(
          "INSERT INTO journal_resources (publisher, resource, data) VALUES (?1, ?2, ?3)")),
      resource_(
          db_.prepare("SELECT data FROM journal_resources WHERE publisher = ?1 AND resource = ?2")),
      seq_of_(db_.prepare("SELECT seq FROM journal_lines WHERE text = ?1 OR number = ?1")),
      after_(db_.prepare("SELECT text FROM journal_lines WHERE seq > ?1 ORDER BY seq LIMIT ?2")),
      cursor_(db_.prepare("SELECT line FROM journal_cursors WHERE peer = ?1")),
      set_cursor_(db_.prepare("INSERT INTO journal_cursors (peer, line) VALUES (?1, ?2) "
                              "ON CONFLICT (peer) DO UPDATE SET line = excluded.line")) {}

std::string JournalStore::last_line() {
    ResetOnExit reset(last_);
    if (!last_.step())
        db_.fail("journal has no first line");
    return last_.text(1);
}

std::uint64_t JournalStore::line_count() {
    ResetOnExit reset(last_);
    if (!last_.step())
        db_.fail("journal has no first line");
    return static_cast<std::uint64_t>(last_.integer(0)) + 1;
}

JournalStore::Appended JournalStore::append(const crypto::Fingerprint& publisher,
                                            const ResourceId& id, ByteView data) {
    const std::string publisher_hex = publisher.hex();
    const std::string id_hex = to_hex(id);
    // BEGIN IMMEDIATE: the read of the last line and the insert after it are one step.
    Transaction transaction(db_);
    {
        ResetOnExit reset(find_);
        find_.bind(1, publisher_hex).bind(2, id_hex);
        if (find_.step())
            return {find_.text(0), false};
    }
    std::int64_t seq = 0;
    std::string previous;
    {
        ResetOnExit reset(last_);
        if (!last_.step())
            db_.fail("journal has no first line");
        seq = last_.integer(0);
        previous = last_.text(1);
    }
    const JournalEntry entry{line_number_after(previous), publisher, id};
    std::string line = entry.text();
    {
        ResetOnExit reset(insert_line_);
        insert_line_.bind(1, seq + 1)
            .bind(2, entry.number)
            .bind(3, line)
            .bind(4, publisher_hex)
            .bind(5, id_hex);
        insert_line_.run();
    }
    {
        ResetOnExit reset(insert_resource_);
        insert_resource_.bind(1, publisher_hex).bind(2, id_hex).bind_blob(3, data);
        insert_resource_.run();
    }
    transaction.commit();
    return {std::move(line), true};
}

bool JournalStore::contains(const crypto::Fingerprint& publisher, const ResourceId& id) {
    ResetOnExit reset(find_);
    find_.bind(1, publisher.hex()).bind(2, to_hex(id));
    return find_.step();
}

std::optional<Bytes> JournalStore::resource(const crypto::Fingerprint& publisher,
                                            const ResourceId& id) {
    ResetOnExit reset(resource_);
    resource_.bind(1, publisher.hex()).bind(2, to_hex(id));
    if (!resource_.step())
        return std::nullopt;
    return resource_.blob(0);
}

std::optional<std::vector<std::string>> JournalStore::lines_after(std::string_view since,
                                                                  std::size_t limit) {
    std::int64_t seq = 0;
    {
        ResetOnExit reset(seq_of_);
        seq_of_.bind(1, since);
        if (!seq_of_.step())
            return std::nullopt;
        seq = seq_of_.integer(0);
    }
    ResetOnExit reset(after_);
    after_.bind(1, seq).bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 20)));
    std::vector<std::string> lines;
    while (after_.step())
        lines.push_back(after_.text(0));
    return lines;
}

std::optional<std::string> JournalStore::cursor(const crypto::Fingerprint& peer) {
    ResetOnExit reset(cursor_);
    cursor_.bind(1, peer.hex());
    if (!cursor_.step())
        return std::nullopt;
    return cursor_.text(0);
}

void JournalStore::set_cursor(const crypto::Fingerprint& peer, std::string_view line) {
    ResetOnExit reset(set_cursor_);
    set_cursor_.bind(1, peer.hex()).bind(2, line);
    set_cursor_.run();
}

bool JournalStore::verify_chain() {
    auto all = db_.prepare("SELECT seq, text FROM journal_lines ORDER BY seq");
    std::string previous;
    std::int64_t expected = 0;
    while (all.step()) {
        if (all.integer(0) != expected)
            return false;
        std::string text = all.text(1);
        if (expected == 0) {
            if (text != first_line_)
                return false;
        } else {
            const auto entry = JournalEntry::parse(text);
            if (!entry || !follows(*entry, previous))
                return false;
        }
        previous = std::move(text);
        ++expected;
    }
    return expected > 0;
}

}  // namespace sdmp::services
