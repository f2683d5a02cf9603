// Field rules of the message envelope that encoder and decoder share (protocol.md §6.2 limits):
// a message the encoder refuses is one the decoder would refuse. Internal to protocol/.
#pragma once

#include <cstdint>
#include <system_error>

#include "sdmp/error.hpp"
#include "sdmp/protocol/message.hpp"

namespace sdmp::protocol::detail {

inline std::error_code check_method(std::size_t size, const MessageLimits& limits) noexcept {
    if (size == 0)
        return errc::malformed;
    if (size > limits.max_method_size)
        return errc::limit_exceeded;
    return {};
}

inline std::error_code check_metadata_key(std::size_t size, const MessageLimits& limits) noexcept {
    if (size == 0)
        return errc::malformed;
    if (size > limits.max_metadata_key_size)
        return errc::limit_exceeded;
    return {};
}

inline std::error_code check_metadata(const Metadata& metadata,
                                      const MessageLimits& limits) noexcept {
    if (metadata.size() > limits.max_metadata_entries)
        return errc::limit_exceeded;
    for (const auto& [key, value] : metadata) {
        if (auto ec = check_metadata_key(key.size(), limits))
            return ec;
        if (value.size() > limits.max_metadata_value_size)
            return errc::limit_exceeded;
    }
    return {};
}

// protocol.md §6.2: request ids are at least 1; responses and cancels name one.
inline std::error_code check_id(std::uint64_t id) noexcept {
    return id == 0 ? std::error_code{errc::malformed} : std::error_code{};
}

}  // namespace sdmp::protocol::detail
