// The handler registry: one call per method, taking a coroutine lambda (protocol.md §6).
//
//   router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> boost::asio::awaitable<sdmp::Reply>
//   {
//       co_return sdmp::Reply::ok(std::move(body));
//   });
//   router.add<AddRequest, AddResponse>("add", [](sdmp::Context&, AddRequest r)  // <sdmp/json.hpp>
//       -> boost::asio::awaitable<AddResponse> { co_return AddResponse{r.a + r.b}; });
//   router.on_notification<Event>("event", [](sdmp::Context&, Event e)
//       -> boost::asio::awaitable<void> { co_return; });
//
// A handler runs on its session's strand with a cancellation slot bound (Context). It may throw:
// StatusError answers with its status, any other exception with application_error (message =
// what()); the session stays up either way. The router (and so the lambdas and their captures)
// must outlive every session using it: servers and clients keep a shared_ptr to it.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "sdmp/framework/codec.hpp"
#include "sdmp/framework/context.hpp"
#include "sdmp/framework/reply.hpp"

namespace sdmp {

using Handler = std::function<boost::asio::awaitable<Reply>(Context&, Bytes)>;
using NotificationHandler = std::function<boost::asio::awaitable<void>(Context&, Bytes)>;

namespace detail {
template <typename R, typename F, typename... Args>
constexpr bool invocable_returning() {
    if constexpr (std::is_invocable_v<F&, Args...>) {
        return std::is_same_v<std::invoke_result_t<F&, Args...>, R>;
    } else {
        return false;
    }
}
}  // namespace detail

class Router {
  public:
    // Registers a raw handler: (Context&, Bytes) -> awaitable<Reply>. Throws
    // std::invalid_argument for an empty or over-long method name (protocol.md §6.2: 1..255
    // bytes) or a method that is already registered.
    template <typename F>
    Router& add(std::string method, F handler) {
        static_assert(
            detail::invocable_returning<boost::asio::awaitable<Reply>, F, Context&, Bytes>(),
            "sdmp::Router::add(method, handler): the handler must be a coroutine callable "
            "as (sdmp::Context&, sdmp::Bytes) returning boost::asio::awaitable<sdmp::Reply>. "
            "For typed bodies use add<Request, Response>(method, handler) with a handler "
            "(sdmp::Context&, Request) -> boost::asio::awaitable<Response>.");
        return add_handler(std::move(method), Handler(std::move(handler)));
    }

    // Registers a typed handler: (Context&, Req) -> awaitable<Resp>, bodies through Codec.
    // A body that does not decode is answered with invalid_argument. The default codec,
    // JsonCodec, needs <sdmp/json.hpp>.
    template <typename Req, typename Resp, typename Codec = JsonCodec, typename F>
    Router& add(std::string method, F handler) {
        static_assert(BodyCodec<Codec, Req> && BodyCodec<Codec, Resp>,
                      "sdmp::Router::add<Req, Resp, Codec>: Codec must encode and decode Req and "
                      "Resp (for JsonCodec, the default: include <sdmp/json.hpp> and define "
                      "to_json/from_json or NLOHMANN_DEFINE_TYPE_*)");
        static_assert(
            detail::invocable_returning<boost::asio::awaitable<Resp>, F, Context&, Req>(),
            "sdmp::Router::add<Req, Resp>(method, handler): the handler must be a coroutine "
            "callable as (sdmp::Context&, Req) returning boost::asio::awaitable<Resp>.");
        return add_handler(std::move(method),
                           Handler([h = std::move(handler)](
                                       Context& ctx, Bytes body) -> boost::asio::awaitable<Reply> {
                               std::optional<Req> request;
                               try {
                                   request.emplace(Codec::template decode<Req>(body));
                               } catch (const std::exception& e) {
                                   co_return Reply::error(
                                       Status::invalid_argument,
                                       std::string("request does not decode: ") + e.what());
                               }
                               Resp response = co_await h(ctx, std::move(*request));
                               co_return Reply::ok(Codec::encode(response));
                           }));
    }

    // Registers a notification handler: (Context&, Bytes) -> awaitable<void>.
    template <typename F>
    Router& on_notification(std::string method, F handler) {
        static_assert(
            detail::invocable_returning<boost::asio::awaitable<void>, F, Context&, Bytes>(),
            "sdmp::Router::on_notification(method, handler): the handler must be a "
            "coroutine callable as (sdmp::Context&, sdmp::Bytes) returning "
            "boost::asio::awaitable<void>.");
        return add_notification_handler(std::move(method), NotificationHandler(std::move(handler)));
    }

    // Registers a typed notification handler: (Context&, T) -> awaitable<void>, the body
    // through Codec. A body that does not decode is dropped: there is no one to answer, so the
    // handler is not run and the session logs it as it logs a handler that threw. The default
    // codec, JsonCodec, needs <sdmp/json.hpp>.
    template <typename T, typename Codec = JsonCodec, typename F>
    Router& on_notification(std::string method, F handler) {
        static_assert(BodyCodec<Codec, T>,
                      "sdmp::Router::on_notification<T, Codec>: Codec must encode and decode T "
                      "(for JsonCodec, the default: include <sdmp/json.hpp> and define "
                      "to_json/from_json or NLOHMANN_DEFINE_TYPE_*)");
        static_assert(
            detail::invocable_returning<boost::asio::awaitable<void>, F, Context&, T>(),
            "sdmp::Router::on_notification<T>(method, handler): the handler must be a "
            "coroutine callable as (sdmp::Context&, T) returning boost::asio::awaitable<void>.");
        return add_notification_handler(
            std::move(method),
            NotificationHandler(
                [h = std::move(handler)](Context& ctx, Bytes body) -> boost::asio::awaitable<void> {
                    std::optional<T> value;
                    try {
                        value.emplace(Codec::template decode<T>(body));
                    } catch (const std::exception& e) {
                        throw StatusError(Status::invalid_argument,
                                          std::string("notification does not decode: ") + e.what());
                    }
                    co_await h(ctx, std::move(*value));
                }));
    }

    const Handler* find(std::string_view method) const noexcept;
    const NotificationHandler* find_notification(std::string_view method) const noexcept;
    std::vector<std::string> methods() const;  // request methods, sorted

  private:
    Router& add_handler(std::string method, Handler handler);
    Router& add_notification_handler(std::string method, NotificationHandler handler);

    std::map<std::string, Handler, std::less<>> handlers_;
    std::map<std::string, NotificationHandler, std::less<>> notification_handlers_;
};

}  // namespace sdmp
