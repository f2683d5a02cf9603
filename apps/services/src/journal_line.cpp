#include "sdmp/services/journal_line.hpp"

#include <algorithm>

#include "sdmp/crypto/crypto_provider.hpp"

namespace sdmp::services {
namespace {

constexpr std::size_t k_hex_size = 64;

bool is_lower_hex(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

ResourceId resource_id_of(ByteView resource) {
    return crypto::default_provider().sha256(resource);
}

std::string line_number_after(std::string_view previous_line) {
    return to_hex(crypto::default_provider().sha256(as_bytes(previous_line)));
}

std::optional<crypto::Digest> parse_digest(std::string_view hex) {
    Bytes bytes;
    if (hex.size() != k_hex_size || !from_hex(hex, bytes) ||
        bytes.size() != crypto::Digest{}.size())
        return std::nullopt;
    crypto::Digest digest{};
    std::copy(bytes.begin(), bytes.end(), digest.begin());
    return digest;
}

std::string JournalEntry::text() const {
    std::string line;
    line.reserve(3 * k_hex_size + 2);
    line += number;
    line += '@';
    line += publisher.hex();
    line += '/';
    line += to_hex(resource);
    return line;
}

std::optional<JournalEntry> JournalEntry::parse(std::string_view line) {
    // Exactly 64 + 1 + 64 + 1 + 64 characters; only the canonical lower-case form is a line,
    // so a line has one text and its number is well defined.
    if (line.size() != 3 * k_hex_size + 2 || line[k_hex_size] != '@' ||
        line[2 * k_hex_size + 1] != '/')
        return std::nullopt;
    const auto number = line.substr(0, k_hex_size);
    const auto publisher = line.substr(k_hex_size + 1, k_hex_size);
    const auto resource = line.substr(2 * k_hex_size + 2);
    if (!is_lower_hex(number) || !is_lower_hex(publisher) || !is_lower_hex(resource))
        return std::nullopt;
    auto fingerprint = crypto::Fingerprint::parse(publisher);
    auto digest = parse_digest(resource);
    if (!fingerprint || !digest)
        return std::nullopt;
    return JournalEntry{std::string(number), *fingerprint, *digest};
}

bool follows(const JournalEntry& line, std::string_view previous_line) {
    return line.number == line_number_after(previous_line);
}

}  // namespace sdmp::services
