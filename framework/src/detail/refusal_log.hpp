// Log lines for refused connections, rate-limited per cause (docs/security.md, "Logs under a
// flood"): junk sent at line rate must not grow the log at line rate. Each cause may log a
// burst of lines, then one line per `interval`; what is held back is counted and reported in
// one "not logged" line per cause at most once per `interval`, and by flush().
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "sdmp/framework/log.hpp"

namespace sdmp::detail {

class RefusalLog {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t k_burst = 20;
    static constexpr std::chrono::seconds k_interval{10};

    explicit RefusalLog(Logger logger) : logger_(std::move(logger)) {}

    // "server: refused <remote>: <cause>", or counted when the cause is over its allowance.
    // Causes come from a small fixed set (admission limits and HandshakeError names).
    void refused(std::string_view remote, std::string_view cause, Clock::time_point now);
    void refused(std::string_view remote, std::string_view cause) {
        refused(remote, cause, Clock::now());
    }
    // Reports every count held back (server shutdown).
    void flush();

  private:
    struct Cause {
        double tokens = static_cast<double>(k_burst);
        Clock::time_point refilled{};
        std::uint64_t held_back = 0;
        Clock::time_point reported{};  // when held_back was last reported
    };
    void report(std::string_view cause, Cause& entry);

    Logger logger_;
    std::mutex mutex_;
    std::map<std::string, Cause, std::less<>> causes_;
};

}  // namespace sdmp::detail
