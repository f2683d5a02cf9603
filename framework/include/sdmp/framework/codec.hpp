// Typed calls and notifications: a value is encoded into a body by a codec (body_codec.hpp), and
// a reply's body decoded back. The default codec, JsonCodec, is only declared here: it is
// defined by <sdmp/json.hpp>, so that nlohmann-json is included only by the applications that
// use it.
//
// Statuses: a raw Session::call returns a non-ok status inside its Reply, while the typed calls
// here throw it as StatusError, since a typed caller has no use for an error body in place of
// the value it asked for. Catch StatusError around a typed call (`e.status()`), or use the raw
// call and decode the body yourself when a non-ok status is an expected outcome;
// Reply::ensure_ok() turns a raw call's non-ok status into the same StatusError.
//
// Every function here is a plain function, not a coroutine: it encodes the value before it
// returns, and the awaitable it returns is made by a coroutine that holds only bytes. No frame
// of sdmp's keeps the caller's value, and the awaitable may be made in a statement of its own
// and awaited later. That does not shield a braced aggregate temporary written inside the
// co_await expression itself: GCC 12 destroys it twice in the caller's own frame (see
// "Compilers" in framework/README.md); name the value first.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include "sdmp/framework/body_codec.hpp"
#include "sdmp/framework/context.hpp"
#include "sdmp/framework/reply.hpp"
#include "sdmp/framework/session.hpp"

namespace sdmp {

namespace detail {

// The coroutine half of a typed call: it receives the raw call, never the caller's value.
template <typename Resp, typename Codec>
boost::asio::awaitable<Resp> decode_reply(boost::asio::awaitable<Reply> call) {
    Reply reply = co_await std::move(call);
    reply.ensure_ok();
    std::optional<Resp> decoded;
    try {
        decoded.emplace(Codec::template decode<Resp>(reply.body));
    } catch (const std::exception& e) {
        throw StatusError(Status::invalid_argument,
                          std::string("reply does not decode: ") + e.what());
    }
    co_return std::move(*decoded);
}

}  // namespace detail

// A typed call: encodes `request` at once (an exception of Codec::encode propagates from here),
// then the returned awaitable calls and decodes the reply. A non-ok status is thrown as
// StatusError with the peer's message; a reply that does not decode as
// StatusError(invalid_argument). Transport errors as in Session::call. The default codec needs
// <sdmp/json.hpp>.
template <typename Resp, typename Codec = JsonCodec, typename Req>
requires BodyCodec<Codec, Req> && BodyCodec<Codec, Resp> boost::asio::awaitable<Resp> call_as(
    const Session& session, std::string method, const Req& request, CallOptions options) {
    return detail::decode_reply<Resp, Codec>(
        session.call(std::move(method), Codec::encode(request), std::move(options)));
}

// With default options (an overload, not a defaulted argument: see Session::call).
template <typename Resp, typename Codec = JsonCodec, typename Req>
requires BodyCodec<Codec, Req> && BodyCodec<Codec, Resp> boost::asio::awaitable<Resp> call_as(
    const Session& session, std::string method, const Req& request) {
    return call_as<Resp, Codec>(session, std::move(method), request, CallOptions{});
}

// A typed notification: encodes `value` at once, then the returned awaitable sends it as
// Session::notify does (same completion and exceptions).
template <typename T, typename Codec = JsonCodec>
requires BodyCodec<Codec, T> boost::asio::awaitable<void> notify_as(const Session& session,
                                                                    std::string method,
                                                                    const T& value,
                                                                    CallOptions options) {
    return session.notify(std::move(method), Codec::encode(value), std::move(options));
}

template <typename T, typename Codec = JsonCodec>
requires BodyCodec<Codec, T> boost::asio::awaitable<void> notify_as(const Session& session,
                                                                    std::string method,
                                                                    const T& value) {
    return notify_as<T, Codec>(session, std::move(method), value, CallOptions{});
}

// Context's typed calls (declared in context.hpp), defined here where Session is complete.
template <typename Resp, typename Codec, typename Req>
requires BodyCodec<Codec, Req> && BodyCodec<Codec, Resp> boost::asio::awaitable<Resp>
Context::call_as(const Session& target, std::string method, const Req& request, CallOptions options)
const {
    // Through call(), so the deadline is inherited exactly as for a raw call.
    return detail::decode_reply<Resp, Codec>(
        call(target, std::move(method), Codec::encode(request), std::move(options)));
}

template <typename Resp, typename Codec, typename Req>
requires BodyCodec<Codec, Req> && BodyCodec<Codec, Resp> boost::asio::awaitable<Resp>
Context::call_as(const Session& target, std::string method, const Req& request)
const {
    return call_as<Resp, Codec>(target, std::move(method), request, CallOptions{});
}

}  // namespace sdmp
