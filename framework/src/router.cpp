// Router: the handler registry (no Asio here beyond the handler type).
#include <stdexcept>

#include "sdmp/framework/router.hpp"

namespace sdmp {

namespace {
void check_method(const std::string& method) {
    // protocol.md §6.2: a method is 1..255 bytes.
    if (method.empty() || method.size() > 255) {
        throw std::invalid_argument("sdmp::Router: a method name must be 1..255 bytes");
    }
}
}  // namespace

Router& Router::add_handler(std::string method, Handler handler) {
    check_method(method);
    if (!handler)
        throw std::invalid_argument("sdmp::Router: empty handler for '" + method + "'");
    if (handlers_.contains(method)) {
        throw std::invalid_argument("sdmp::Router: '" + method + "' is already registered");
    }
    handlers_.emplace(std::move(method), std::move(handler));
    return *this;
}

Router& Router::add_notification_handler(std::string method, NotificationHandler handler) {
    check_method(method);
    if (!handler)
        throw std::invalid_argument("sdmp::Router: empty handler for '" + method + "'");
    if (notification_handlers_.contains(method)) {
        throw std::invalid_argument("sdmp::Router: notification '" + method +
                                    "' is already registered");
    }
    notification_handlers_.emplace(std::move(method), std::move(handler));
    return *this;
}

const Handler* Router::find(std::string_view method) const noexcept {
    const auto it = handlers_.find(method);
    return it == handlers_.end() ? nullptr : &it->second;
}

const NotificationHandler* Router::find_notification(std::string_view method) const noexcept {
    const auto it = notification_handlers_.find(method);
    return it == notification_handlers_.end() ? nullptr : &it->second;
}

std::vector<std::string> Router::methods() const {
    std::vector<std::string> out;
    out.reserve(handlers_.size());
    for (const auto& [name, handler] : handlers_)
        out.push_back(name);
    return out;
}

}  // namespace sdmp
