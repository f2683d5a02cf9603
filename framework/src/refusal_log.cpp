// Rate-limited refusal logging (see detail/refusal_log.hpp).
#include "detail/refusal_log.hpp"

#include <algorithm>

namespace sdmp::detail {

void RefusalLog::refused(std::string_view remote, std::string_view cause, Clock::time_point now) {
    if (!logger_.enabled(LogLevel::info))
        return;
    const std::lock_guard lock(mutex_);
    auto it = causes_.find(cause);
    if (it == causes_.end()) {
        it = causes_.emplace(std::string(cause), Cause{}).first;
        it->second.refilled = now;
        it->second.reported = now;
    }
    Cause& entry = it->second;
    // One token per interval, up to the burst.
    const double elapsed = std::chrono::duration<double>(now - entry.refilled).count();
    const double per_second = 1.0 / std::chrono::duration<double>(k_interval).count();
    entry.tokens = std::min(static_cast<double>(k_burst), entry.tokens + elapsed * per_second);
    entry.refilled = now;
    if (entry.held_back != 0 && now - entry.reported >= k_interval) {
        report(cause, entry);
        entry.reported = now;
    }
    if (entry.tokens < 1.0) {
        if (entry.held_back++ == 0)
            entry.reported = now;
        return;
    }
    entry.tokens -= 1.0;
    logger_.info("server: refused {}: {}", remote, cause);
}

void RefusalLog::flush() {
    const std::lock_guard lock(mutex_);
    for (auto& [cause, entry] : causes_) {
        if (entry.held_back != 0)
            report(cause, entry);
    }
}

void RefusalLog::report(std::string_view cause, Cause& entry) {
    logger_.info("server: {} more connections refused ({}) were not logged", entry.held_back,
                 cause);
    entry.held_back = 0;
}

}  // namespace sdmp::detail
