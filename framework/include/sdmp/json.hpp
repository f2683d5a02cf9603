// sdmp with JSON bodies: typed handlers (Router::add<Request, Response>,
// Router::on_notification<T>) and typed calls (sdmp::call_as, sdmp::notify_as,
// Context::call_as) through JsonCodec, the default codec. Opt-in: <sdmp/sdmp.hpp> does not include
// nlohmann-json, so only the translation units that use JSON bodies pay for parsing it.
#pragma once

#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "sdmp/framework/codec.hpp"
#include "sdmp/framework/router.hpp"
#include "sdmp/sdmp.hpp"

namespace sdmp {

// What nlohmann-json needs of a type: to_json(nlohmann::json&, const T&) to encode it and
// from_json(const nlohmann::json&, T&) to decode it, found by argument-dependent lookup (or
// written by NLOHMANN_DEFINE_TYPE_*, or an nlohmann::adl_serializer<T> specialization).
template <typename T>
concept JsonEncodable = requires(const T& value) {
    nlohmann::json(value);
};
template <typename T>
concept JsonDecodable = requires(const nlohmann::json& json) {
    json.template get<T>();
};
template <typename T>
concept JsonConvertible = JsonEncodable<T> && JsonDecodable<T>;

struct JsonCodec {
    template <typename T>
    static Bytes encode(const T& value) {
        // Checked here rather than in the signature, so that a missing to_json is reported by
        // this one line instead of a page of nlohmann-json's overload candidates.
        static_assert(JsonEncodable<T>,
                      "sdmp::JsonCodec: this type has no to_json(nlohmann::json&, const T&); "
                      "define to_json/from_json next to the type, or use "
                      "NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(T, members...)");
        if constexpr (JsonEncodable<T>) {
            const std::string text = nlohmann::json(value).dump();
            return Bytes(text.begin(), text.end());
        } else {
            std::terminate();  // not compiled: the static_assert above has failed
        }
    }
    template <typename T>
    static T decode(ByteView bytes) {
        static_assert(JsonDecodable<T>,
                      "sdmp::JsonCodec: this type has no from_json(const nlohmann::json&, T&); "
                      "define to_json/from_json next to the type, or use "
                      "NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(T, members...)");
        if constexpr (JsonDecodable<T>) {
            return nlohmann::json::parse(bytes.begin(), bytes.end()).template get<T>();
        } else {
            std::terminate();
        }
    }
};

}  // namespace sdmp
