// sdmp with JSON bodies: typed handlers (Router::add<Request, Response>) and typed calls
// (sdmp::call_as) through JsonCodec, the default codec. Opt-in: <sdmp/sdmp.hpp> does not include
// nlohmann-json, so only the translation units that use JSON bodies pay for parsing it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sdmp/framework/codec.hpp"
#include "sdmp/framework/router.hpp"
#include "sdmp/sdmp.hpp"

namespace sdmp {

// Any type with to_json/from_json (or NLOHMANN_DEFINE_TYPE_*) works.
struct JsonCodec {
    template <typename T>
    static Bytes encode(const T& value) {
        const std::string text = nlohmann::json(value).dump();
        return Bytes(text.begin(), text.end());
    }
    template <typename T>
    static T decode(ByteView bytes) {
        return nlohmann::json::parse(bytes.begin(), bytes.end()).template get<T>();
    }
};

}  // namespace sdmp
