// The test-vector generator behind `sdmp-vectors` and docs/protocol.md §8.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace sdmp::crypto {
class CryptoProvider;
}

namespace sdmp::vectors {

// Runs both suites' handshakes with fixed keys, ephemerals and clocks, seals a few records, and
// returns the vectors as text: comment lines start with '#', values are `name: value`, and a
// long hex value is written as `name:` followed by indented lines of 64 hex characters.
// Deterministic; throws std::runtime_error if a step fails (a bug, not an input error).
std::string generate();
// The same with `provider` doing the handshakes, records and signatures: every provider must
// give the same text. Trust-store fingerprints and journal lines use default_provider().
std::string generate(crypto::CryptoProvider& provider);

// Parses that text into name → value (hex continuation lines joined). Throws
// std::runtime_error on a line it does not understand.
std::map<std::string, std::string> parse(std::string_view text);

// The markers around the vectors in docs/protocol.md.
inline constexpr std::string_view k_begin_marker = "<!-- vectors:begin -->";
inline constexpr std::string_view k_end_marker = "<!-- vectors:end -->";

// Extracts the text inside the fenced block between the markers (without the fence lines).
// Returns false when the markers or the fence are missing.
bool extract_from_doc(std::string_view doc, std::string& out);

// Replaces the block between the markers with a fenced block holding `vectors`.
// Returns false when the markers are missing.
bool replace_in_doc(std::string& doc, std::string_view vectors);

}  // namespace sdmp::vectors
