// The framework's error category (sdmp/framework/error.hpp).
#include "sdmp/framework/error.hpp"

#include <string>

namespace sdmp {
namespace {

class FrameworkCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "sdmp.framework"; }

    std::string message(int value) const override {
        switch (static_cast<framework_errc>(value)) {
            case framework_errc::refused_by_peer:
                return "connection refused by peer";
            case framework_errc::handshake_timeout:
                return "handshake timed out";
            case framework_errc::connection_closed:
                return "connection closed";
            case framework_errc::session_shutting_down:
                return "session is shutting down";
            case framework_errc::queue_full:
                return "queue full";
            case framework_errc::connection_lost:
                return "the connection was cut (it ended without the peer's end message)";
        }
        return "unknown sdmp framework error " + std::to_string(value);
    }
};

}  // namespace

const std::error_category& framework_category() noexcept {
    static const FrameworkCategory category;
    return category;
}

}  // namespace sdmp
