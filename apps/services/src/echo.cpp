#include "sdmp/services/echo.hpp"

#include <utility>

namespace sdmp::services {

void add_echo(Router& router) {
    router.add(k_echo_method, [](Context&, Bytes body) -> boost::asio::awaitable<Reply> {
        co_return Reply::ok(std::move(body));
    });
}

}  // namespace sdmp::services
