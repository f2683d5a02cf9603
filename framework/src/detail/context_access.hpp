// How the framework makes and updates a handler's Context: its constructor is private, so that
// applications cannot make a Context that belongs to no received request. Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "detail/asio.hpp"
#include "sdmp/framework/context.hpp"

namespace sdmp::detail {

struct ContextAccess {
    static Context make(std::shared_ptr<SessionImpl> session, std::shared_ptr<const PeerInfo> peer,
                        std::uint64_t request_id, std::string method, Metadata metadata,
                        std::optional<SteadyClock::time_point> deadline) {
        return Context(std::move(session), std::move(peer), request_id, std::move(method),
                       std::move(metadata), deadline);
    }
    static void set_cancel_reason(Context& context, Status reason) noexcept {
        context.cancel_reason_ = reason;
    }
};

}  // namespace sdmp::detail
