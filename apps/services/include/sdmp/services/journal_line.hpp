// Lines of a node journal (docs/apps.md "Journal format").
//
// The first line of a journal is the node's fingerprint. Every later line is
//
//     <line number>@<publisher fingerprint>/<resource id>
//
// where the line number is SHA-256 (lower-case hex) of the previous line's exact text and the
// resource id is SHA-256 (lower-case hex) of the resource's exact bytes. The numbers chain the
// journal: changing or dropping any line breaks every number after it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sdmp/crypto/bytes.hpp"
#include "sdmp/crypto/identity.hpp"

namespace sdmp::services {

// SHA-256 of a resource's bytes.
using ResourceId = crypto::Digest;

ResourceId resource_id_of(ByteView resource);
// The number the line after `previous_line` must carry: SHA-256 hex of its text.
std::string line_number_after(std::string_view previous_line);
// Parses 64 lower- or upper-case hex characters.
std::optional<crypto::Digest> parse_digest(std::string_view hex);

struct JournalEntry {
    std::string number;  // 64 lower-case hex
    crypto::Fingerprint publisher;
    ResourceId resource{};

    std::string text() const;
    // Parses a non-first line; nullopt unless it has exactly the shape above (lower-case hex).
    static std::optional<JournalEntry> parse(std::string_view line);

    friend bool operator==(const JournalEntry&, const JournalEntry&) = default;
};

// True when `line` follows `previous_line` (its number is line_number_after(previous_line)).
bool follows(const JournalEntry& line, std::string_view previous_line);

}  // namespace sdmp::services
