// The durable part of a node journal (docs/apps.md "journal"): the lines, the resources they
// name, and one sync cursor per peer, in one SQLite file.
//
// Blocking and not thread-safe: use it from one BlockingExecutor. Every change is one
// transaction that is on disk when the call returns. Errors: StoreError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sdmp/crypto/identity.hpp"
#include "sdmp/services/journal_line.hpp"
#include "sdmp/services/sqlite.hpp"

namespace sdmp::services {

class JournalStore {
  public:
    // Opens or creates the journal of node `node`; a new journal gets its first line (the
    // node's fingerprint). Throws StoreError when the file holds the journal of another node.
    JournalStore(const std::filesystem::path& file, const crypto::Fingerprint& node);

    const std::string& first_line() const noexcept { return first_line_; }
    std::string last_line();
    std::uint64_t line_count();  // the first line included

    struct Appended {
        std::string line;
        bool appended = false;  // false: (publisher, id) was already in the journal
    };
    // Appends `publisher`'s resource unless the journal has it already (dedupe by publisher
    // and id). Precondition: id == resource_id_of(data).
    Appended append(const crypto::Fingerprint& publisher, const ResourceId& id, ByteView data);

    bool contains(const crypto::Fingerprint& publisher, const ResourceId& id);
    std::optional<Bytes> resource(const crypto::Fingerprint& publisher, const ResourceId& id);

    // Up to `limit` lines after the line whose text or number is `since` (the first line's
    // text, i.e. the node's fingerprint, means from the start); nullopt when no line matches.
    std::optional<std::vector<std::string>> lines_after(std::string_view since, std::size_t limit);

    // The text of the last line of `peer`'s journal this node has synchronized.
    std::optional<std::string> cursor(const crypto::Fingerprint& peer);
    void set_cursor(const crypto::Fingerprint& peer, std::string_view line);

    // Checks every line number against the previous line (for tests and `fsck`-like use).
    bool verify_chain();

  private:
    Database db_;
    std::string first_line_;
    Statement last_;
    Statement find_;
    Statement insert_line_;
    Statement insert_resource_;
    Statement resource_;
    Statement seq_of_;
    Statement after_;
    Statement cursor_;
    Statement set_cursor_;
};

}  // namespace sdmp::services
