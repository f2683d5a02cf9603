// Byte containers used across the library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sdmp {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using MutableByteView = std::span<std::uint8_t>;

inline ByteView as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string_view as_string_view(ByteView b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Lower-case hex, the form fingerprints and test vectors are shown in.
std::string to_hex(ByteView bytes);

// Parses hex (either case). Returns false on odd length or a non-hex character.
[[nodiscard]] bool from_hex(std::string_view hex, Bytes& out);

}  // namespace sdmp
