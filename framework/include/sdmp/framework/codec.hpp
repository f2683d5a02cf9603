// Body codecs for typed handlers and typed calls. A codec turns a value into body bytes and
// back. The default codec, JsonCodec, is only declared here: it is defined by <sdmp/json.hpp>,
// so that nlohmann-json is included only by the applications that use it.
#pragma once

#include <concepts>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include "sdmp/framework/reply.hpp"
#include "sdmp/framework/session.hpp"

namespace sdmp {

// encode must not fail for valid values; decode throws (any std::exception) on bad input.
template <typename C, typename T>
concept BodyCodec = requires(const T& value, ByteView bytes) {
    { C::encode(value) } -> std::same_as<Bytes>;
    { C::template decode<T>(bytes) } -> std::same_as<T>;
};

// JSON through nlohmann-json (any type with to_json/from_json); include <sdmp/json.hpp>.
struct JsonCodec;

// A typed call: encodes `request`, calls, and decodes the reply. A non-ok status is thrown as
// StatusError (typed callers usually have no use for an error body); a reply that does not
// decode is thrown as StatusError(invalid_argument). Transport errors as in Session::call.
// The default codec needs <sdmp/json.hpp>.
template <typename Resp, typename Codec = JsonCodec, typename Req>
requires BodyCodec<Codec, Req> && BodyCodec<Codec, Resp> boost::asio::awaitable<Resp> call_as(
    Session session, std::string method, Req request, CallOptions options) {
    Reply reply =
        co_await session.call(std::move(method), Codec::encode(request), std::move(options));
    if (!reply.is_ok())
        throw StatusError(reply.status, std::string(reply.text()));
    std::optional<Resp> decoded;
    try {
        decoded.emplace(Codec::template decode<Resp>(reply.body));
    } catch (const std::exception& e) {
        throw StatusError(Status::invalid_argument,
                          std::string("reply does not decode: ") + e.what());
    }
    co_return std::move(*decoded);
}

// With default options (an overload, not a defaulted argument: see Session::call).
template <typename Resp, typename Codec = JsonCodec, typename Req>
requires BodyCodec<Codec, Req> && BodyCodec<Codec, Resp> boost::asio::awaitable<Resp> call_as(
    Session session, std::string method, Req request) {
    return call_as<Resp, Codec>(std::move(session), std::move(method), std::move(request),
                                CallOptions{});
}

}  // namespace sdmp
