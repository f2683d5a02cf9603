// Internal helpers shared by identity.cpp and trust_store.cpp: strict file reading, atomic
// writing, and the public identity line grammar (protocol.md §7). Not installed.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "sdmp/crypto/identity.hpp"
#include "sdmp/error.hpp"

namespace sdmp::crypto::detail {

inline constexpr std::string_view k_private_prefix = "sdmp-private-v1";
inline constexpr std::string_view k_public_prefix = "sdmp-public-v1";
inline constexpr std::size_t k_max_name_size = 64;
// Names of this many hex digits or more (and nothing else) are refused (protocol.md §7.2).
inline constexpr std::size_t k_min_hex_name_size = 16;
inline constexpr std::size_t k_max_address_size = 262;  // 255-byte host + ":" + port, or [v6]:port

// A std::string that is wiped when it dies; holds the text of private key files.
class WipedString {
  public:
    WipedString() = default;
    WipedString(const WipedString&) = delete;
    WipedString& operator=(const WipedString&) = delete;
    ~WipedString();
    std::string& str() noexcept { return text_; }
    const std::string& str() const noexcept { return text_; }

  private:
    std::string text_;
};

// The path as the user gave it, for messages.
std::string display(const std::filesystem::path& path);

FileError make_file_error(errc code, const std::filesystem::path& path, std::string_view problem);

// Reads a whole regular file of at most `max_size` bytes. With `private_key`, refuses a file
// that has any group/other permission bit (checked on the open descriptor, so the check and
// the read see the same file).
FileError read_file(const std::filesystem::path& path, std::size_t max_size, bool private_key,
                    std::string& out);

// Writes `content` to `path` atomically: a temporary file in the same directory, created with
// `mode` from the start, fsync, rename over `path`, fsync of the directory.
FileError write_file_atomic(const std::filesystem::path& path, std::string_view content,
                            mode_t mode);

// One line of a text file, with its 1-based number. Lines are split on '\n'; a trailing '\r'
// is dropped.
struct Line {
    std::size_t number;
    std::string_view text;
};
std::vector<Line> split_lines(std::string_view content);
// True for a blank line or a '#' comment line (leading spaces/tabs allowed).
bool is_ignorable(std::string_view line);
bool starts_with_token(std::string_view line, std::string_view token);

// protocol.md §7.2: an empty string when `name` is a valid NAME, otherwise why not (a phrase
// for messages). A name of 16 or more characters that are all hex digits is refused: it could
// be read as a fingerprint or a fingerprint prefix, and a lookup by text must not be redirected.
std::string name_problem(std::string_view name);
bool valid_name(std::string_view name);
bool valid_address(std::string_view address);

struct PublicLine {
    PublicIdentity identity;
    std::string name;
    std::string address;
};
// Parses "sdmp-public-v1 <128 hex>[ name=NAME][ address=HOST:PORT]" and refuses keys that
// PublicIdentity::key_problem refuses (protocol.md §1). Returns an empty string on success,
// otherwise a description of the problem (never quoting long input).
std::string parse_public_line(std::string_view line, PublicLine& out);
// A public identity file (protocol.md §7.2): '#' comments and blank lines allowed, exactly one
// identity line.
FileError parse_public_file(const std::filesystem::path& path, std::string_view content,
                            PublicLine& out);
std::string line_problem(std::size_t line, std::string_view problem);

std::string format_public_line(const PublicIdentity& identity, std::string_view name,
                               std::string_view address);

}  // namespace sdmp::crypto::detail
