#include "runtime.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

namespace sdmp::bench {

double process_cpu_seconds() {
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) != 0) {
        return 0.0;
    }
    const auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

Runtime::Runtime()
    : server_work_(server_ctx_.get_executor()),
      client_work_(client_ctx_.get_executor()),
      server_thread_([this] { server_ctx_.run(); }),
      client_thread_([this] { client_ctx_.run(); }) {}

Runtime::~Runtime() {
    server_work_.reset();
    client_work_.reset();
    // Anything still queued belongs to a failed trial; stop rather than wait for it.
    server_ctx_.stop();
    client_ctx_.stop();
    server_thread_.join();
    client_thread_.join();
}

Watchdog::Watchdog() : thread_([this] { run(); }) {}

Watchdog::~Watchdog() {
    {
        const std::lock_guard lock(mutex_);
        quit_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

void Watchdog::arm(std::chrono::steady_clock::duration limit, std::string what) {
    {
        const std::lock_guard lock(mutex_);
        armed_ = true;
        deadline_ = std::chrono::steady_clock::now() + limit;
        what_ = std::move(what);
    }
    changed_.notify_all();
}

void Watchdog::disarm() {
    {
        const std::lock_guard lock(mutex_);
        armed_ = false;
    }
    changed_.notify_all();
}

void Watchdog::run() {
    std::unique_lock lock(mutex_);
    while (!quit_) {
        if (!armed_) {
            changed_.wait(lock);
            continue;
        }
        const auto deadline = deadline_;
        if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && armed_ &&
            deadline_ == deadline) {
            std::fprintf(stderr, "sdmp-bench: %s did not finish in time; giving up\n",
                         what_.c_str());
            std::_Exit(3);
        }
    }
}

}  // namespace sdmp::bench
