// What a body codec is, apart from the typed calls that use one (codec.hpp): Context declares
// its typed call with it, and codec.hpp, which defines that call, needs Session and so
// Context first.
#pragma once

#include <concepts>

#include "sdmp/framework/reply.hpp"

namespace sdmp {

// encode must not fail for valid values; decode throws (any std::exception) on bad input.
template <typename C, typename T>
concept BodyCodec = requires(const T& value, ByteView bytes) {
    { C::encode(value) } -> std::same_as<Bytes>;
    { C::template decode<T>(bytes) } -> std::same_as<T>;
};

// JSON through nlohmann-json (any type with to_json/from_json); include <sdmp/json.hpp>.
struct JsonCodec;

}  // namespace sdmp
