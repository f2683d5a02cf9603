// A small logging interface. The default sink writes one line per message to stderr.
//
// Never log secrets: fingerprints (public) are fine, keys and session secrets never are. The
// framework only ever passes fingerprints, endpoints, method names, statuses and error texts.
#pragma once

#include <memory>
#include <string_view>
#include <utility>

#include <fmt/core.h>

namespace sdmp {

enum class LogLevel : unsigned char { trace, debug, info, warn, error, off };

std::string_view to_string(LogLevel level) noexcept;

class LogSink {
  public:
    virtual ~LogSink() = default;
    // Called from any thread; implementations must be thread-safe.
    virtual void write(LogLevel level, std::string_view message) = 0;
};

// "2024-01-01T12:00:00.123Z warn  message" on stderr, one write per line.
std::shared_ptr<LogSink> stderr_sink();

// A cheap, copyable handle: a sink plus a minimum level.
class Logger {
  public:
    // stderr at `warn`.
    Logger();
    Logger(std::shared_ptr<LogSink> sink, LogLevel level);

    // A logger that drops everything.
    static Logger null();

    bool enabled(LogLevel level) const noexcept {
        return sink_ != nullptr && level >= level_ && level != LogLevel::off;
    }
    LogLevel level() const noexcept { return level_; }

    template <typename... Args>
    void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) const {
        if (enabled(level))
            sink_->write(level, fmt::format(format, std::forward<Args>(args)...));
    }
    template <typename... Args>
    void debug(fmt::format_string<Args...> format, Args&&... args) const {
        log(LogLevel::debug, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void info(fmt::format_string<Args...> format, Args&&... args) const {
        log(LogLevel::info, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void warn(fmt::format_string<Args...> format, Args&&... args) const {
        log(LogLevel::warn, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void error(fmt::format_string<Args...> format, Args&&... args) const {
        log(LogLevel::error, format, std::forward<Args>(args)...);
    }

  private:
    std::shared_ptr<LogSink> sink_;
    LogLevel level_ = LogLevel::warn;
};

}  // namespace sdmp
