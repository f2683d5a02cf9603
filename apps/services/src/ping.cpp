#include "sdmp/services/ping.hpp"

namespace sdmp::services {

void add_ping(Router& router) {
    router.add(k_ping_method,
               [](Context&, Bytes) -> boost::asio::awaitable<Reply> { co_return Reply::ok(); });
}

}  // namespace sdmp::services
