// Logging: the default sink writes whole lines to stderr (one write each, so lines of
// concurrent sessions do not interleave).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <fmt/format.h>

#include "sdmp/framework/log.hpp"

namespace sdmp {

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::trace:
            return "trace";
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
        case LogLevel::off:
            return "off";
    }
    return "?";
}

namespace {

class StderrSink final : public LogSink {
  public:
    void write(LogLevel level, std::string_view message) override {
        const auto now = std::chrono::system_clock::now();
        const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
        const auto millis =
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
            1000;
        std::tm utc{};
        gmtime_r(&seconds, &utc);
        const std::string line =
            fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {:<5} {}\n", utc.tm_year + 1900,
                        utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis,
                        to_string(level), message);
        const std::lock_guard lock(mutex_);
        std::fwrite(line.data(), 1, line.size(), stderr);
    }

  private:
    std::mutex mutex_;
};

}  // namespace

std::shared_ptr<LogSink> stderr_sink() {
    static const std::shared_ptr<LogSink> sink = std::make_shared<StderrSink>();
    return sink;
}

Logger::Logger() : sink_(stderr_sink()), level_(LogLevel::warn) {}

Logger::Logger(std::shared_ptr<LogSink> sink, LogLevel level)
    : sink_(std::move(sink)), level_(level) {}

Logger Logger::null() {
    return Logger(nullptr, LogLevel::off);
}

}  // namespace sdmp
